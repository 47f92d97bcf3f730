# Decode attention on the H100: kvc against PyTorch SDPA (flash and cuDNN
# back ends) in the same run. Hq=32, Hkv=8, D=128, bf16, one new row per
# sequence, at the five shapes unless --shapes names others
# (B:L[:Hkv[:D]], Hq stays 32). Prints time, bandwidth and ratios, and the
# floor: the bytes of keys and values over the measured copy bandwidth.
#
#   python3 bench/gpu/decode_attention.py --runtime build-rt/lib/libkvc_rt.so \
#       --kernels build/kernels/kvc_kernels.cubin [--shapes 8:1024 2:8192:32]
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

SHAPES = ["1:4096", "1:32768", "8:16384", "32:4096", "64:2048"]
HQ, HKV, D = 32, 8, 128


def parse_shape(text):
    """B:L[:Hkv[:D]] as (batch, length, kv heads, head dim)."""
    try:
        fields = [int(f) for f in text.split(":")]
    except ValueError:
        fields = []
    shape = tuple(fields + [HKV, D][len(fields) - 2:]) if 2 <= len(fields) <= 4 else ()
    if not shape or min(shape) < 1 or HQ % shape[2]:
        raise argparse.ArgumentTypeError(
            "shape %r: expected B:L[:Hkv[:D]], positive, Hkv dividing %d" % (text, HQ))
    return shape


def shape_name(batch, length, hkv, d):
    """B8 L16384, with Hkv and D where they are not the defaults."""
    name = "B%d L%d" % (batch, length)
    if (hkv, d) != (HKV, D):
        name += " %d/%d D%d" % (HQ, hkv, d)
    return name


def time_us(fn, sets, reps):
    """Median of `reps` timings (CUDA events) of one call, rotating over input
    sets; each timing replays a CUDA graph of 16 calls, so host launch costs
    stay out, as they do in a decode step captured in a graph."""
    calls = 16
    for s in sets:
        fn(s)
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for i in range(calls):
            fn(sets[i % len(sets)])
    graph.replay()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        graph.replay()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) * 1e3 / calls)
    return statistics.median(times)


def reference(q, k, v):
    """float64 attention of one query row per head over all cache rows."""
    b, hq, _, d = q.shape
    g = hq // k.shape[1]
    qd = q.double().view(b, k.shape[1], g, d)
    s = torch.einsum("bhgd,bhld->bhgl", qd, k.double()) / math.sqrt(d)
    return torch.einsum("bhgl,bhld->bhgd", torch.softmax(s, -1), v.double()).reshape(q.shape)


def copy_bandwidth():
    """Device-to-device copy of 1 GiB, bytes read plus written per second
    (eager: launch costs vanish next to 0.7 ms)."""
    a = torch.empty(1 << 30, dtype=torch.uint8, device="cuda")
    b = torch.empty_like(a)
    for _ in range(3):
        b.copy_(a)
    times = []
    for _ in range(20):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        b.copy_(a)
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) * 1e-3)
    return 2 * a.numel() / statistics.median(times)


def make_sets(rt, batch, length, hkv, d):
    """Enough input sets (queries, bf16 caches wrapped for kvc, outputs) of
    one shape to overflow the 50 MB L2 when a graph rotates over them."""
    kv_bytes = 2 * batch * hkv * length * d * 2
    sets = []
    for _ in range(max(2, min(8, math.ceil(200e6 / kv_bytes)))):
        k = torch.randn(batch, hkv, length, d, dtype=torch.bfloat16, device="cuda")
        v = torch.randn_like(k)
        q = torch.randn(batch, HQ, 1, d, dtype=torch.bfloat16, device="cuda")
        lengths = torch.full((batch,), length, dtype=torch.int32, device="cuda")
        cache = rt.wrap_cache(k, v, lengths, kvc_rt.BF16)
        # The cache only points at k, v and lengths: keep them alive.
        sets.append(dict(k=k, v=v, q=q, lengths=lengths, positions=lengths - 1,
                         out=torch.empty_like(q), cache=cache))
    return sets


def free_sets(rt, sets):
    rt.set_stream(0)
    for s in sets:
        rt.destroy_cache(s["cache"])
    sets.clear()
    torch.cuda.empty_cache()


def kvc_call(rt, length, d):
    """kvc's decode of one input set, on torch's current stream."""
    scale = 1.0 / math.sqrt(d)

    def run(s):
        rt.set_stream(torch.cuda.current_stream().cuda_stream)
        rt.decode_attention(s["cache"], s["q"], s["positions"], s["out"], length, scale)
    return run


def sdpa(backend):
    """PyTorch SDPA with one back end, on one input set."""
    def run(s):
        with sdpa_kernel([backend]):
            return F.scaled_dot_product_attention(s["q"], s["k"], s["v"], enable_gqa=True)
    return run


def kvc_error(rt, kvc, s):
    """Relative error of kvc's output (poisoned first) against float64."""
    s["out"].fill_(float("nan"))
    kvc(s)
    rt.synchronize()
    ref = reference(s["q"], s["k"], s["v"])
    return ((s["out"].double() - ref).norm() / ref.norm()).item()


def start(parser, reps):
    """Parses the GPU benchmarks' common options (--runtime, --kernels,
    --reps) with `parser`'s own, opens the runtime, measures the copy
    bandwidth and prints the device line: (args, runtime, bandwidth)."""
    parser.add_argument("--runtime", required=True)
    parser.add_argument("--kernels", required=True)
    parser.add_argument("--reps", type=int, default=reps)
    args = parser.parse_args()
    rt = kvc_rt.Runtime(args.runtime, args.kernels)
    bw = copy_bandwidth()
    print("device %s, copy bandwidth %.0f GB/s, torch %s" %
          (torch.cuda.get_device_name(), bw / 1e9, torch.__version__))
    return args, rt, bw


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--shapes", nargs="+", type=parse_shape,
                        default=[parse_shape(t) for t in SHAPES])
    args, rt, bw = start(parser, 200)
    header = ("shape", "KV MB", "floor us", "kvc us", "kvc GB/s", "%copy", "cuDNN us", "flash us",
              "cuDNN/kvc", "flash/kvc", "kvc err", "cuDNN err")
    print("%-18s %7s %8s %8s %8s %6s %9s %9s %9s %9s %9s %9s" % header)
    for batch, length, hkv, d in args.shapes:
        kv_bytes = 2 * batch * hkv * length * d * 2
        sets = make_sets(rt, batch, length, hkv, d)
        kvc = kvc_call(rt, length, d)

        # Correctness first: kvc and cuDNN against a float64 reference.
        s = sets[0]
        err = kvc_error(rt, kvc, s)
        ref = reference(s["q"], s["k"], s["v"])
        cudnn_out = sdpa(SDPBackend.CUDNN_ATTENTION)(s)
        cudnn_err = ((cudnn_out.double() - ref).norm() / ref.norm()).item()
        t_kvc = time_us(kvc, sets, args.reps)
        t_cudnn = time_us(sdpa(SDPBackend.CUDNN_ATTENTION), sets, args.reps)
        t_flash = time_us(sdpa(SDPBackend.FLASH_ATTENTION), sets, args.reps)
        floor = kv_bytes / bw * 1e6
        achieved = kv_bytes / (t_kvc * 1e-6)
        line = (shape_name(batch, length, hkv, d), kv_bytes / 1e6, floor, t_kvc, achieved / 1e9,
                100 * achieved / bw, t_cudnn, t_flash, t_cudnn / t_kvc, t_flash / t_kvc, err,
                cudnn_err)
        print("%-18s %7.1f %8.1f %8.1f %8.0f %5.0f%% %9.1f %9.1f %8.2fx %8.2fx %9.1e %9.1e" % line)
        free_sets(rt, sets)
    rt.close()


if __name__ == "__main__":
    main()
