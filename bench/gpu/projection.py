# The projections of a decode step on the H100: kvc (kvc_gemv at one row,
# cuBLASLt otherwise) against torch.nn.functional.linear (cuBLAS) in
# the same run, at TinyLlama's shapes, bf16 in, f32 or bf16 out as the
# compiled model has them. Each timing is a CUDA graph of 16 calls over
# weight copies that overflow L2; the floor is the weight bytes over the
# measured copy bandwidth. Alone, without the kernels of a decode step
# around it: kvc's kernels also read weights before those finish, which
# this does not measure (bench/model/decode.py does).
#
#   python3 bench/gpu/projection.py --runtime build-rt/lib/libkvc_rt.so \
#       --kernels build/kernels/kvc_kernels.cubin
import argparse
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "runtime", "python"))
import kvc_rt  # noqa: E402
from decode_attention import start, time_us  # noqa: E402

# (name, n, k, output dtype) of TinyLlama's decode step.
SHAPES = [("qkv", 2560, 2048, torch.bfloat16), ("o", 2048, 2048, torch.float32),
          ("gate_up", 11264, 2048, torch.bfloat16), ("down", 2048, 5632, torch.float32),
          ("lm_head", 32000, 2048, torch.float32)]
CODES = {torch.bfloat16: kvc_rt.BF16, torch.float32: kvc_rt.F32}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", default="1,16")
    args, rt, bw = start(parser, 100)
    print("%-8s %4s %8s %8s %8s %6s %8s %6s %9s %9s" %
          ("shape", "m", "W MB", "floor us", "kvc us", "%copy", "torch us", "%copy",
           "torch/kvc", "kvc err"))
    for m in [int(r) for r in args.rows.split(",")]:
        for name, n, k, out_dtype in SHAPES:
            w_bytes = n * k * 2
            nsets = max(2, min(16, math.ceil(200e6 / w_bytes)))
            sets = []
            for _ in range(nsets):
                sets.append(dict(
                    x=torch.randn(m, k, device="cuda").to(torch.bfloat16),
                    w=(torch.randn(n, k, device="cuda") / k ** 0.5).to(torch.bfloat16),
                    out=torch.empty(m, n, device="cuda", dtype=out_dtype)))

            def kvc(s):
                rt.set_stream(torch.cuda.current_stream().cuda_stream)
                rt.matmul(s["x"], s["w"], s["out"], kvc_rt.BF16, CODES[out_dtype])

            def torch_linear(s):
                return F.linear(s["x"], s["w"])

            s = sets[0]
            kvc(s)
            rt.synchronize()
            ref = s["x"].double() @ s["w"].double().T
            err = ((s["out"].double() - ref).abs().max() / ref.abs().max()).item()
            t_kvc = time_us(kvc, sets, args.reps)
            t_torch = time_us(torch_linear, sets, args.reps)
            rt.set_stream(0)
            floor = w_bytes / bw * 1e6
            print("%-8s %4d %8.1f %8.2f %8.2f %5.0f%% %8.2f %5.0f%% %8.2fx %9.1e" %
                  (name, m, w_bytes / 1e6, floor, t_kvc, 100 * floor / t_kvc, t_torch,
                   100 * floor / t_torch, t_torch / t_kvc, err))
            del sets


if __name__ == "__main__":
    main()
