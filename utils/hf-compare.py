"""Compares kvc's Llama model with Hugging Face's on the CPU (development
machine): reads utils/hf-reference.py's output, builds the model with
kvc-compile, appends a driver that holds the same weights, and runs it through
kvc-incrementalize and the CPU pipeline: logits at the prompt's last position
(full-sequence @model) and greedy tokens (@model_prefill + @model_decode).

  python3 utils/hf-compare.py test/Tools/Inputs/tiny-llama.json REF_DIR

Exits 0 when every greedy token matches and the logits agree within 1e-4.
test/Tools/hf-compare.mlir runs it on a reference kept in the repository.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("config")
    parser.add_argument("ref")
    parser.add_argument("--build", default="build")
    parser.add_argument("--runner", default=shutil.which("mlir-runner") or
                        "/usr/lib/llvm-22/bin/mlir-runner")
    parser.add_argument("--runner-utils", default="/usr/lib/llvm-22/lib/libmlir_runner_utils.so")
    parser.add_argument("--c-runner-utils",
                        default="/usr/lib/llvm-22/lib/libmlir_c_runner_utils.so")
    args = parser.parse_args()
    ref = json.load(open(os.path.join(args.ref, "reference.json")))
    weights = open(os.path.join(args.ref, "weights.bin"), "rb").read()
    model = subprocess.run([os.path.join(args.build, "bin", "kvc-compile"), args.config,
                            "--emit=mlir", "--stage=model"], check=True, capture_output=True, text=True).stdout
    body = model.strip().split("\n")
    start = next(i for i, l in enumerate(body) if l.startswith("module"))
    assert body[-1] == "}"
    model = "\n".join(body[:start] + body[start + 1:-1])
    sig = re.search(r"func.func @model\((.*?)\) -> (tensor<[^>]*>)", model, re.S)
    # Each weight with its checkpoint names: a packed one (q, k, v in one)
    # lists its parts, which follow each other in weights.bin.
    args_ = re.findall(r"(tensor<[^>]*>) \{([^}]*kvc.weight[^}]*)\}", sig.group(1))
    types, expanded = [], []
    for t, attrs in args_:
        parts = re.search(r"kvc.parts = \[([^\]]*)\]", attrs)
        names = re.findall(r"\"([^\"]+)\"", parts.group(1)) if parts else \
            [re.search(r"kvc.weight = \"([^\"]+)\"", attrs).group(1)]
        types.append((t, names))
        expanded += names
    assert expanded == ref["weights"], "weight order differs"
    vocab = int(re.search(r"x(\d+)xf32>", sig.group(2)).group(1))
    caches = re.findall(r"kvc.attention .* : (tensor<[^>]*>), (tensor<[^>]*>)", model)
    kv = re.match(r"tensor<\?x(\d+)x\?x(\d+)xf32>", caches[0][1])
    cache = "!kvc.cache<?x%sx?x%sxf32>" % (kv.group(1), kv.group(2))
    wtypes = ", ".join(t for t, _ in types)
    lines, offset, names = [], 0, []
    for i, (t, _) in enumerate(types):
        dims = [int(x) for x in re.findall(r"\d+", t.split("xf32")[0])]
        n = 1
        for x in dims:
            n *= x
        chunk = weights[offset:offset + 4 * n]
        offset += 4 * n
        lines.append('  %%w%d = arith.constant dense<"0x%s"> : %s' % (i, chunk.hex().upper(), t))
        names.append("%%w%d" % i)
    assert offset == len(weights), "weights.bin has %d bytes, the model %d" % (len(weights), offset)
    w = ", ".join(names)
    prompt, steps = ref["prompt"], len(ref["generated"])
    p = len(prompt)
    cap = p + steps
    logits = ", ".join("%.9e" % x for x in ref["last_logits"])
    hf_tokens = ", ".join(str(t) for t in ref["generated"])
    driver = f'''
func.func private @model_prefill(tensor<?x?xi32>, {wtypes}, tensor<?xi32>, index)
    -> (tensor<?x1x{vocab}xf32>{", " + cache}{", " + cache})
func.func private @model_decode(tensor<?x?xi32>, {wtypes}, tensor<?xi32>{", " + cache}{", " + cache})
    -> tensor<?x?x{vocab}xf32>

func.func private @argmax(%logits: tensor<{vocab}xf32>) -> i32 {{
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %n = arith.constant {vocab} : index
  %first = tensor.extract %logits[%c0] : tensor<{vocab}xf32>
  %best:2 = scf.for %v = %c1 to %n step %c1 iter_args(%bv = %first, %bi = %c0) -> (f32, index) {{
    %x = tensor.extract %logits[%v] : tensor<{vocab}xf32>
    %gt = arith.cmpf ogt, %x, %bv : f32
    %nv = arith.select %gt, %x, %bv : f32
    %ni = arith.select %gt, %v, %bi : index
    scf.yield %nv, %ni : f32, index
  }}
  %r = arith.index_cast %best#1 : index to i32
  return %r : i32
}}

func.func @main() {{
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
{chr(10).join(lines)}
  %prompt = arith.constant dense<[{prompt}]> : tensor<1x{p}xi32>
  %positions = arith.constant dense<[{list(range(p))}]> : tensor<1x{p}xi32>
  %promptd = tensor.cast %prompt : tensor<1x{p}xi32> to tensor<?x?xi32>
  %positionsd = tensor.cast %positions : tensor<1x{p}xi32> to tensor<?x?xi32>
  %all = func.call @model(%promptd, %positionsd, {w})
      : (tensor<?x?xi32>, tensor<?x?xi32>, {wtypes}) -> tensor<?x?x{vocab}xf32>
  %last = arith.constant {p - 1} : index
  %row = tensor.extract_slice %all[0, {p - 1}, 0] [1, 1, {vocab}] [1, 1, 1] : tensor<?x?x{vocab}xf32> to tensor<{vocab}xf32>
  %hf = arith.constant dense<[{logits}]> : tensor<{vocab}xf32>
  %n = arith.constant {vocab} : index
  %zero = arith.constant 0.0 : f32
  %diff = scf.for %i = %c0 to %n step %c1 iter_args(%d = %zero) -> f32 {{
    %a = tensor.extract %row[%i] : tensor<{vocab}xf32>
    %b = tensor.extract %hf[%i] : tensor<{vocab}xf32>
    %s = arith.subf %a, %b : f32
    %ab = math.absf %s : f32
    %m = arith.maximumf %d, %ab : f32
    scf.yield %m : f32
  }}
  vector.print str "max |kvc - HF| of the last prompt logits: "
  vector.print %diff : f32

  %len = arith.constant dense<[{p}]> : tensor<1xi32>
  %lend = tensor.cast %len : tensor<1xi32> to tensor<?xi32>
  %cap = arith.constant {cap} : index
  %pre:3 = func.call @model_prefill(%promptd, {w}, %lend, %cap)
      : (tensor<?x?xi32>, {wtypes}, tensor<?xi32>, index) -> (tensor<?x1x{vocab}xf32>, {cache}, {cache})
  %hft = arith.constant dense<[{hf_tokens}]> : tensor<{steps}xi32>
  %steps = arith.constant {steps} : index
  %zi = arith.constant 0 : i32
  %one = arith.constant 1 : i32
  %r0 = tensor.extract_slice %pre#0[0, 0, 0] [1, 1, {vocab}] [1, 1, 1] : tensor<?x1x{vocab}xf32> to tensor<{vocab}xf32>
  %t0 = func.call @argmax(%r0) : (tensor<{vocab}xf32>) -> i32
  %gen:2 = scf.for %i = %c0 to %steps step %c1 iter_args(%tok = %t0, %mis = %zi) -> (i32, i32) {{
    %want = tensor.extract %hft[%i] : tensor<{steps}xi32>
    %ne = arith.cmpi ne, %tok, %want : i32
    %inc = arith.select %ne, %one, %zi : i32
    %mis2 = arith.addi %mis, %inc : i32
    vector.print %tok : i32
    %p0 = arith.constant {p} : index
    %posi = arith.addi %p0, %i : index
    %pos32 = arith.index_cast %posi : index to i32
    %posv = tensor.from_elements %pos32 : tensor<1xi32>
    %posd = tensor.cast %posv : tensor<1xi32> to tensor<?xi32>
    %tokv = tensor.from_elements %tok : tensor<1x1xi32>
    %tokd = tensor.cast %tokv : tensor<1x1xi32> to tensor<?x?xi32>
    %out = func.call @model_decode(%tokd, {w}, %posd, %pre#1, %pre#2)
        : (tensor<?x?xi32>, {wtypes}, tensor<?xi32>, {cache}, {cache}) -> tensor<?x?x{vocab}xf32>
    %r = tensor.extract_slice %out[0, 0, 0] [1, 1, {vocab}] [1, 1, 1] : tensor<?x?x{vocab}xf32> to tensor<{vocab}xf32>
    %next = func.call @argmax(%r) : (tensor<{vocab}xf32>) -> i32
    scf.yield %next, %mis2 : i32, i32
  }}
  vector.print str "greedy tokens differing from HF: "
  vector.print %gen#1 : i32
  return
}}
'''
    source = model + "\n" + driver
    opt = subprocess.run([os.path.join(args.build, "bin", "kvc-opt"), "--kvc-incrementalize",
                          "--kvc-cpu-pipeline"], input=source, capture_output=True, text=True)
    if opt.returncode:
        sys.exit(opt.stderr[-3000:])
    run = subprocess.run([args.runner, "-e", "main", "-entry-point-result=void",
                          "-shared-libs=%s,%s" % (args.runner_utils, args.c_runner_utils)],
                         input=opt.stdout, capture_output=True, text=True)
    out = run.stdout.strip().split("\n")
    tokens = [int(x) for x in out if re.fullmatch(r"-?\d+", x.strip())][:steps]
    print("\n".join(l for l in out if not re.fullmatch(r"-?\d+", l.strip())))
    print("kvc tokens:", tokens[:16], "...")
    print("HF  tokens:", ref["generated"][:16], "...")
    if run.returncode:
        sys.exit(run.stderr[-2000:])
    diff = float(re.search(r"last prompt logits: (\S+)", run.stdout).group(1))
    ok = tokens == ref["generated"] and diff < 1e-4
    print("%s: %d of %d greedy tokens as HF, logits within %.1e" %
          ("PASS" if ok else "FAIL", sum(a == b for a, b in zip(tokens, ref["generated"])),
           steps, diff))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
