"""Whole-model generation on the GPU: kvc against PyTorch, one run.

A randomly initialized LlamaForCausalLM of the TinyLlama shape (bench/model/
tinyllama.json: hidden 2048, 22 layers, 32 heads, 4 kv heads, intermediate
5632, vocab 32000), bf16, prompt of --prompt tokens, --new new tokens, greedy,
at each batch size:
  kvc          kvc-run on the artifact kvc-compile built (decode steps
               replayed from a CUDA graph, tokens chosen on the device;
               prefill timed after an untimed one, --warmup)
  torch graph  Hugging Face's model with a StaticCache, one decode step
               (forward + argmax) captured in a CUDA graph and replayed
  HF generate  model.generate (batch 1 only: it is slow)
Prints decode ms per step, the ratios, and the weight-bandwidth floor (bytes
of weights read per step over the measured copy bandwidth).

  python3 bench/model/decode.py ARTIFACT --kvc-run /tmp/kvc-rt/bin/kvc-run
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import torch
from transformers import LlamaConfig, LlamaForCausalLM


def copy_bandwidth():
    n = 1 << 29  # 512 MiB, well past L2
    a = torch.empty(n, dtype=torch.uint8, device="cuda")
    b = torch.empty_like(a)
    for _ in range(3):
        b.copy_(a)
    start, end = torch.cuda.Event(True), torch.cuda.Event(True)
    times = []
    for _ in range(20):
        start.record()
        b.copy_(a)
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    times.sort()
    return 2 * n / (times[len(times) // 2] * 1e-3)


def run_kvc(args, weights, prompts, steps):
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        for p in prompts:
            f.write(" ".join(map(str, p)) + "\n")
    cmd = [args.kvc_run, args.artifact, "--weights", weights, "--prompts", f.name,
           "--max-new-tokens", str(steps), "--warmup", "--quiet"]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode:
        sys.exit("kvc-run failed:\n" + out.stdout + out.stderr)
    decode = float(re.search(r"decode: ([0-9.]+) ms/step", out.stdout).group(1))
    prefill = float(re.search(r"prefill: ([0-9.]+) ms", out.stdout).group(1))
    tokens = [[int(t) for t in l.split("|")[1].split()]
              for l in out.stdout.splitlines() if l.startswith("sequence ")]
    return decode, prefill, tokens


def make_static_cache(config, batch, length):
    from transformers import StaticCache
    for kwargs in (dict(config=config, max_batch_size=batch, max_cache_len=length,
                        device="cuda", dtype=torch.bfloat16),
                   dict(config=config, batch_size=batch, max_cache_len=length,
                        device="cuda", dtype=torch.bfloat16),
                   dict(config=config, max_cache_len=length)):
        try:
            return StaticCache(**kwargs)
        except TypeError:
            continue
    raise RuntimeError("no StaticCache constructor fits this transformers")


def run_torch_graph(model, config, prompts, steps):
    batch, plen = len(prompts), len(prompts[0])
    cache = make_static_cache(config, batch, plen + steps)
    ids = torch.tensor(prompts, device="cuda")
    with torch.no_grad():
        out = model(input_ids=ids, past_key_values=cache, use_cache=True,
                    cache_position=torch.arange(plen, device="cuda"))
        token = out.logits[:, -1].argmax(-1, keepdim=True)
        position = torch.tensor([plen], device="cuda")
        generated = [token.clone()]

        def step():
            logits = model(input_ids=token, past_key_values=cache, use_cache=True,
                           cache_position=position).logits
            token.copy_(logits[:, -1].argmax(-1, keepdim=True))

        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            step()  # warm-up, eager, position plen
            position += 1
            generated.append(token.clone())
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            step()
        times = []
        for _ in range(steps - 2):
            start = time.perf_counter()
            graph.replay()
            torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
            generated.append(token.clone())
            position += 1
    times.sort()
    tokens = torch.cat(generated, dim=1).tolist()
    return 1e3 * times[len(times) // 2], tokens


def run_hf_generate(model, prompt, steps):
    ids = torch.tensor([prompt], device="cuda")
    mask = torch.ones_like(ids)
    with torch.no_grad():
        model.generate(ids, attention_mask=mask, max_new_tokens=2, do_sample=False)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        model.generate(ids, attention_mask=mask, max_new_tokens=1, do_sample=False)
        torch.cuda.synchronize()
        t1 = time.perf_counter()
        model.generate(ids, attention_mask=mask, max_new_tokens=steps, do_sample=False,
                       min_new_tokens=steps)
        torch.cuda.synchronize()
        t2 = time.perf_counter()
    return 1e3 * ((t2 - t1) - (t1 - t0)) / (steps - 1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("artifact")
    parser.add_argument("--kvc-run", default="build/bin/kvc-run")
    parser.add_argument("--config", default="bench/model/tinyllama.json")
    parser.add_argument("--prompt", type=int, default=512)
    parser.add_argument("--new", type=int, default=128)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16, 64])
    args = parser.parse_args()
    with open(args.config) as f:
        config = LlamaConfig(**json.load(f))
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).to(torch.bfloat16).cuda().eval()
    weights = "/tmp/kvc-bench-tinyllama"
    model.save_pretrained(weights, safe_serialization=True)
    params = sum(p.numel() for n, p in model.named_parameters() if "embed_tokens" not in n)
    bandwidth = copy_bandwidth()
    floor = 2 * params / bandwidth * 1e3
    print("device %s, copy bandwidth %.2f TB/s; weights read per step %.2f GB; floor %.3f ms"
          % (torch.cuda.get_device_name(), bandwidth / 1e12, 2 * params / 1e9, floor))
    g = torch.Generator().manual_seed(1)
    print("| B | kvc ms/step | torch graph ms/step | HF generate ms/step | torch/kvc | "
          "floor/kvc | kvc prefill ms (warm) | tokens as torch |")
    print("|---|---|---|---|---|---|---|---|")
    for batch in args.batches:
        prompts = torch.randint(0, config.vocab_size, (batch, args.prompt), generator=g).tolist()
        kvc, prefill, kvc_tokens = run_kvc(args, weights, prompts, args.new)
        graph, torch_tokens = run_torch_graph(model, config, prompts, args.new)
        same = sum(a == b for x, y in zip(kvc_tokens, torch_tokens) for a, b in zip(x[:16], y[:16]))
        hf = run_hf_generate(model, prompts[0], args.new) if batch == 1 else float("nan")
        print("| %d | %.3f | %.3f | %.2f | %.2fx | %.2f | %.1f | %d/%d of the first 16 |"
              % (batch, kvc, graph, hf, graph / kvc, floor / kvc, prefill, same, 16 * batch),
              flush=True)


if __name__ == "__main__":
    main()
