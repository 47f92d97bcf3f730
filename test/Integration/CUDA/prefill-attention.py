# Tests kvc's tensor-core causal prefill attention against a float32
# reference (torch): batch 1 and 3, sequences 1, 17, 64, 255 and 1000 (not
# multiples of the 64-row tile too), 32 query heads on 32, 8 and 1 kv heads,
# head dim 64 and 128, f16 and bf16. Outputs are poisoned with NaN before
# every run. A head's output must not depend on other heads' rows (NaN
# there).
#
# REQUIRES: cuda
# RUN: %python %s --runtime %kvc_rt --kernels %kvc_kernels
import argparse
import itertools
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "runtime", "python"))
import kvc_rt  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runtime", required=True)
    parser.add_argument("--kernels", required=True)
    parser.add_argument("--quick", action="store_true", help="a small subset (for compute-sanitizer)")
    parser.add_argument("--seed", type=int, default=int.from_bytes(os.urandom(4), "little"))
    args = parser.parse_args()
    print("seed", args.seed)
    gen = torch.Generator(device="cuda")
    gen.manual_seed(args.seed)
    rt = kvc_rt.Runtime(args.runtime, args.kernels)
    failures, worst, cases = 0, {}, 0
    types = {"f16": (torch.float16, kvc_rt.F16, 2e-3), "bf16": (torch.bfloat16, kvc_rt.BF16, 1e-2)}
    grid = list(itertools.product([1, 3], [1, 17, 64, 255, 1000], [32, 8, 1], [64, 128],
                                  ["f16", "bf16"]))
    if args.quick:
        grid = [(1, 17, 8, 128, "bf16"), (3, 130, 1, 64, "f16")]
    for batch, seq, kv, d, name in grid:
        dtype, code, tol = types[name]
        cases += 1
        q = torch.randn(batch, 32, seq, d, dtype=dtype, device="cuda", generator=gen)
        k = torch.randn(batch, kv, seq, d, dtype=dtype, device="cuda", generator=gen)
        v = torch.randn_like(k)
        out = torch.full_like(q, float("nan"))
        scale = 1 / math.sqrt(d)
        rt.prefill_attention(q, k, v, out, code, scale)
        rt.synchronize()
        ref = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), is_causal=True,
                                             enable_gqa=True)
        err = ((out.float() - ref).norm() / ref.norm()).item()
        worst[name] = max(worst.get(name, 0.0), err)
        if not err <= tol:
            failures += 1
            print("FAIL B%d S%d 32/%d D%d %s: relative error %.3g" % (batch, seq, kv, d, name, err))
    # Heads do not read each other: every head but the first of a batch of
    # two holds NaN, and the first head's sequence ends inside a tile.
    for d, name in [(128, "bf16"), (64, "f16")]:
        dtype, code, tol = types[name]
        q = torch.randn(2, 8, 100, d, dtype=dtype, device="cuda", generator=gen)
        k = torch.randn(2, 2, 100, d, dtype=dtype, device="cuda", generator=gen)
        v = torch.randn_like(k)
        for x in (q, k, v):
            first = x[0, 0].clone()
            x.fill_(float("nan"))
            x[0, 0] = first
        out = torch.full_like(q, float("nan"))
        rt.prefill_attention(q, k, v, out, code, 1 / math.sqrt(d))
        rt.synchronize()
        ref = F.scaled_dot_product_attention(q[:1, :1].float(), k[:1, :1].float(),
                                             v[:1, :1].float(), is_causal=True)
        err = ((out[:1, :1].float() - ref).norm() / ref.norm()).item()
        cases += 1
        if not err <= tol:
            failures += 1
            print("FAIL head isolation D%d %s: relative error %.3g" % (d, name, err))
    # The entry point compiled code calls (convert-kvc-to-gpu), once.
    rt.lib.kvc_rt_make_current(rt.device)
    q = torch.randn(2, 8, 100, 64, dtype=torch.bfloat16, device="cuda", generator=gen)
    k = torch.randn(2, 2, 100, 64, dtype=torch.bfloat16, device="cuda", generator=gen)
    v = torch.randn_like(k)
    out = torch.full_like(q, float("nan"))
    rt.lib.kvc_rt_op_prefill_attention(q.data_ptr(), k.data_ptr(), v.data_ptr(), out.data_ptr(),
                                       2, 8, 2, 100, 64, kvc_rt.BF16, 0.125)
    rt.synchronize()
    ref = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), is_causal=True,
                                         enable_gqa=True)
    err = ((out.float() - ref).norm() / ref.norm()).item()
    cases += 1
    if rt.error() or not err <= 1e-2:
        failures += 1
        print("FAIL kvc_rt_op_prefill_attention: %s relative error %.3g" % (rt.error(), err))
    rt.close()
    print("cases %d, failures %d, worst relative error %s" %
          (cases, failures, ", ".join("%s %.2e" % kv for kv in sorted(worst.items()))))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
