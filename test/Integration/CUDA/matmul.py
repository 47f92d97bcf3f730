# Tests the runtime's projections (row-major x times w transposed, as
# compiled models call them: kvc_gemv for one row of f16/bf16, kvc_gemm16
# for 2 to 16 rows with k up to 2048 where its blocks fit in one wave,
# cuBLASLt otherwise) and greedy argmax (kvc_argmax)
# against torch: rows 1 to 64, TinyLlama's shapes and odd ones (k a
# multiple of 8 but not of 64, n not a multiple of 8; k of 5 64-wide chunks,
# fewer than kvc_gemm16's 8 warps, n not a multiple of its 16 rows),
# bf16/f16 to f32 and to themselves, f32; argmax on
# f32 and bf16 logits with a tie. Outputs are poisoned before every run.
#
# REQUIRES: cuda
# RUN: %python %s --runtime %kvc_rt --kernels %kvc_kernels
import argparse
import itertools
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "runtime", "python"))
import kvc_rt  # noqa: E402

TYPES = {"bf16": (torch.bfloat16, kvc_rt.BF16), "f16": (torch.float16, kvc_rt.F16),
         "f32": (torch.float32, kvc_rt.F32)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runtime", required=True)
    parser.add_argument("--kernels", required=True)
    args = parser.parse_args()
    rt = kvc_rt.Runtime(args.runtime, args.kernels)
    gen = torch.Generator(device="cuda").manual_seed(0)
    failures, cases = 0, 0
    shapes = [(2048, 2048), (2560, 2048), (256, 2048), (11264, 2048), (2048, 5632), (100, 24),
              (200, 320), (32000, 2048)]
    combos = [("bf16", "f32"), ("bf16", "bf16"), ("f16", "f32"), ("f16", "f16"), ("f32", "f32")]
    for m, (n, k), (tin, tout) in itertools.product([1, 3, 4, 7, 16, 17, 64], shapes, combos):
        dtype, code = TYPES[tin]
        out_dtype, out_code = TYPES[tout]
        x = torch.randn(m, k, device="cuda", generator=gen).to(dtype)
        w = (torch.randn(n, k, device="cuda", generator=gen) / k ** 0.5).to(dtype)
        out = torch.full((m, n), float("nan"), device="cuda", dtype=out_dtype)
        rt.matmul(x, w, out, code, out_code)
        rt.synchronize()
        ref = x.double() @ w.double().T
        err = ((out.double() - ref).abs().max() / ref.abs().max()).item()
        tol = 1e-2 if tout in ("bf16", "f16") else 1e-5 if tin == "f32" else 1e-4
        cases += 1
        if not err <= tol:
            failures += 1
            print("FAIL m=%d n=%d k=%d %s->%s: error %.3g" % (m, n, k, tin, tout, err))
    for rows, vocab, tin in itertools.product([1, 5, 64], [32000, 77], ["f32", "bf16"]):
        dtype, code = TYPES[tin]
        logits = torch.randn(rows, vocab, device="cuda", generator=gen).to(dtype)
        logits[:, vocab // 3] = logits.max() + 1  # a clear winner
        logits[0, vocab // 2] = logits[0, vocab // 3]  # a tie in row 0: the first wins
        out = torch.full((rows,), -1, device="cuda", dtype=torch.int32)
        rt.argmax(logits, out, code)
        rt.synchronize()
        cases += 1
        if not torch.equal(out.long(), logits.float().argmax(dim=1)):
            failures += 1
            print("FAIL argmax rows=%d vocab=%d %s" % (rows, vocab, tin))
    print("%d of %d cases passed" % (cases - failures, cases))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
