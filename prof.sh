cmake -S runtime -B /tmp/kvc-rt -G Ninja -DCMAKE_BUILD_TYPE=Release > /dev/null && cmake --build /tmp/kvc-rt > /dev/null
python3 - <<'PY'
import json, torch
from transformers import LlamaConfig, LlamaForCausalLM
config = LlamaConfig(**json.load(open("bench/model/tinyllama.json")))
torch.manual_seed(0)
LlamaForCausalLM(config).to(torch.bfloat16).save_pretrained("/tmp/tl", safe_serialization=True)
PY
python3 -c "import random; random.seed(1); print(' '.join(str(random.randrange(32000)) for _ in range(512)))" > /tmp/p.txt
timeout 400 /usr/local/cuda/bin/ncu --clock-control none --cache-control none --metrics gpu__time_duration.sum --csv /tmp/kvc-rt/bin/kvc-run build/artifacts/tinyllama-cuda-bf16 --weights /tmp/tl --prompts /tmp/p.txt --max-new-tokens 3 --no-graph --quiet > /tmp/ncu.csv 2>/dev/null
python3 - <<'PY'
import csv, collections
rows = [r for r in csv.reader(open("/tmp/ncu.csv")) if len(r) > 10]
hdr = rows[0]; rows = rows[1:]
ki = hdr.index("Kernel Name"); vi = hdr.index("Metric Value"); ui = hdr.index("Metric Unit")
print("unit", rows[0][ui], rows[0][vi])
scale = {"nsecond": 1e-3, "ns": 1e-3, "usecond": 1, "us": 1, "msecond": 1e3, "ms": 1e3}
ks = [(r[ki][:50], float(r[vi].replace(",", "")) * scale[r[ui]]) for r in rows]
idx = [i for i, (k, v) in enumerate(ks) if k.startswith("kvc_argmax")]
step = ks[idx[-2] + 1: idx[-1] + 1]
tot = collections.defaultdict(lambda: [0, 0.0])
for k, v in step:
    tot[k][0] += 1; tot[k][1] += v
print("decode step: %d kernels, %.1f us of kernel time" % (len(step), sum(v for _, v in step)))
for k, (n, v) in sorted(tot.items(), key=lambda x: -x[1][1])[:22]:
    print("%8.1f us %4d x %6.2f us  %s" % (v, n, v / n, k))
PY
