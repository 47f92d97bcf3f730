# Causal prefill attention on the H100: kvc's tensor-core kernel against
# PyTorch SDPA (cuDNN and flash back ends) in the same run. Hq=32, Hkv=8,
# D=128, bf16 (--dtype f16 for f16). FLOPs counted as
# 4 * B * Hq * D * S^2 / 2 (causal). Prints TFLOP/s and ratios.
#
#   python3 bench/gpu/prefill_attention.py --runtime ... --kernels ...
import argparse
import math
import os
import statistics
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "runtime", "python"))
import kvc_rt  # noqa: E402

SHAPES = [(1, 4096), (4, 4096), (1, 16384)]
HQ, HKV, D = 32, 8, 128


def time_us(fn, reps=30):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) * 1e3)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runtime", required=True)
    parser.add_argument("--kernels", required=True)
    parser.add_argument("--dtype", choices=["bf16", "f16"], default="bf16")
    args = parser.parse_args()
    dtype, code = {"bf16": (torch.bfloat16, kvc_rt.BF16),
                   "f16": (torch.float16, kvc_rt.F16)}[args.dtype]
    rt = kvc_rt.Runtime(args.runtime, args.kernels)
    a = torch.randn(8192, 8192, dtype=dtype, device="cuda")
    t_mm = time_us(lambda: a @ a, 20)
    mm_rate = 2 * 8192 ** 3 / (t_mm * 1e-6)
    print("device %s, %s matmul %.0f TFLOP/s (8192^3), torch %s" %
          (torch.cuda.get_device_name(), args.dtype, mm_rate / 1e12, torch.__version__))
    print("%-12s %9s %9s %9s %9s %9s %9s %9s %9s" % ("shape", "kvc us", "kvc TF/s", "cuDNN us",
                                                    "flash us", "cuDNN TF", "kvc/cuDNN",
                                                    "kvc/flash", "kvc err"))
    for batch, seq in SHAPES:
        q = torch.randn(batch, HQ, seq, D, dtype=dtype, device="cuda")
        k = torch.randn(batch, HKV, seq, D, dtype=dtype, device="cuda")
        v = torch.randn_like(k)
        out = torch.empty_like(q)
        scale = 1 / math.sqrt(D)
        flops = 4 * batch * HQ * D * seq * seq / 2

        def kvc():
            rt.prefill_attention(q, k, v, out, code, scale)

        def sdpa(backend):
            def run():
                with sdpa_kernel([backend]):
                    return F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
            return run

        kvc()
        rt.synchronize()
        ref = sdpa(SDPBackend.CUDNN_ATTENTION)()
        err = ((out.float() - ref.float()).norm() / ref.float().norm()).item()
        t_kvc = time_us(kvc)
        t_cudnn = time_us(sdpa(SDPBackend.CUDNN_ATTENTION))
        t_flash = time_us(sdpa(SDPBackend.FLASH_ATTENTION))
        print("%-12s %9.0f %9.0f %9.0f %9.0f %9.0f %8.2fx %8.2fx %9.1e" % (
            "B%d L%d" % (batch, seq), t_kvc, flops / t_kvc / 1e6, t_cudnn, t_flash,
            flops / t_cudnn / 1e6, t_cudnn / t_kvc, t_flash / t_kvc, err))
    rt.close()


if __name__ == "__main__":
    main()
