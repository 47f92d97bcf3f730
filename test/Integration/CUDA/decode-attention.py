# Tests kvc's GPU cache append and decode attention against a float32
# reference (torch) on the grid of issue 5: batch 1, 3, 8, 32; cache lengths
# 1, 17, 255, 4096, 32768 (ragged: each sequence a random length up to it);
# 32 query heads on 32, 8, 4 and 1 kv heads; head dim 64 and 128; bf16 and
# f16; outputs heads first and, as compiled models take them, heads last.
# Outputs are poisoned with NaN before every run, and so are the cache rows
# past each sequence's end. Then plans the planners rarely make, forced
# (kvc_rt_set_decode_plan), and forced plans the runtime must refuse.
#
# REQUIRES: cuda
# RUN: %python %s --runtime %kvc_rt --kernels %kvc_kernels
import argparse
import itertools
import math
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "runtime", "python"))
import kvc_rt  # noqa: E402

DTYPES = {"bf16": (torch.bfloat16, kvc_rt.BF16, 1e-2), "f16": (torch.float16, kvc_rt.F16, 2e-3),
          "f32": (torch.float32, kvc_rt.F32, 1e-5)}


def reference(query, keys, values, positions, lengths_after, scale):
    """float32 attention of each new row over the rows it may see."""
    batch, q_heads, rows, d = query.shape
    kv_heads = keys.shape[1]
    group = q_heads // kv_heads
    out = torch.zeros(query.shape, dtype=torch.float32, device=query.device)
    for b in range(batch):
        n = int(lengths_after[b])
        k = keys[b, :, :n].float()
        v = values[b, :, :n].float()
        q = query[b].float().view(kv_heads, group, rows, d)
        s = torch.einsum("hgtd,hld->hgtl", q, k) * scale
        t = torch.arange(rows, device=query.device).view(1, 1, rows, 1)
        j = torch.arange(n, device=query.device).view(1, 1, 1, n)
        seen = j < torch.clamp(int(positions[b]) + t + 1, max=n)
        s = s.masked_fill(~seen, float("-inf"))
        p = torch.softmax(s, dim=-1)
        p = torch.nan_to_num(p, nan=0.0)
        out[b] = torch.einsum("hgtl,hld->hgtd", p, v).reshape(q_heads, rows, d)
    return out


def run_case(rt, gen, batch, length, q_heads, kv_heads, d, dtype_name, rows=1,
             heads_last=False):
    dtype, code, tol = DTYPES[dtype_name]
    dev = "cuda"
    capacity = length
    keys = torch.randn(batch, kv_heads, capacity, d, dtype=dtype, device=dev, generator=gen)
    values = torch.randn(batch, kv_heads, capacity, d, dtype=dtype, device=dev, generator=gen)
    # Ragged: sequence b holds lengths[b] rows; the new rows go right after.
    before = torch.randint(0, capacity - rows + 1, (batch,), generator=gen, device=dev)
    before[0] = capacity - rows
    lengths = before.to(torch.int32).clone()
    positions = before.to(torch.int32).clone()
    # Rows past each sequence's end hold NaN (a cache's memory is never
    # cleared): no kernel may let them reach an output.
    for b in range(batch):
        keys[b, :, int(before[b]) + rows:] = float("nan")
        values[b, :, int(before[b]) + rows:] = float("nan")
    new_k = torch.randn(batch, kv_heads, rows, d, dtype=dtype, device=dev, generator=gen)
    new_v = torch.randn(batch, kv_heads, rows, d, dtype=dtype, device=dev, generator=gen)
    query = torch.randn(batch, q_heads, rows, d, dtype=dtype, device=dev, generator=gen)
    shape = (batch, rows, q_heads, d) if heads_last else (batch, q_heads, rows, d)
    out = torch.full(shape, float("nan"), dtype=dtype, device=dev)
    scale = 1.0 / math.sqrt(d)
    cache = rt.wrap_cache(keys, values, lengths, code)
    try:
        rt.append(cache, new_k, new_v, positions, rows)
        rt.decode_attention(cache, query, positions, out, capacity, scale, heads_last)
        rt.synchronize()
    finally:
        rt.destroy_cache(cache)
    problems = []
    after = positions.long() + rows
    if not torch.equal(lengths.long(), after):
        problems.append("lengths %s, expected %s" % (lengths.tolist()[:4], after.tolist()[:4]))
    for b in range(batch):
        p = int(positions[b])
        if not (torch.equal(keys[b, :, p:p + rows], new_k[b]) and
                torch.equal(values[b, :, p:p + rows], new_v[b])):
            problems.append("appended rows of sequence %d differ" % b)
            break
    ref = reference(query, keys, values, positions, after, scale)
    got = (out.transpose(1, 2) if heads_last else out).float()
    if torch.isnan(got).any():
        problems.append("NaN in the output (unwritten or bad arithmetic)")
    err = ((got - ref).norm() / ref.norm().clamp_min(1e-30)).item()
    if not err <= tol:
        problems.append("relative error %.3g over %.0e" % (err, tol))
    return err, problems


def run_compiled_entry_points(rt, gen):
    """The kvc_rt_op_* calls that compiled code makes, on an owned cache:
    a 5-row prefill append, a truncation to ragged lengths, a decode of 2 rows,
    and the lengths read back."""
    lib = rt.lib
    dev = "cuda"
    batch, kv_heads, q_heads, d, cap = 2, 2, 8, 64, 64
    lib.kvc_rt_make_current(rt.device)
    cache = lib.kvc_rt_op_cache_new(batch, kv_heads, cap, d, kvc_rt.F16)
    problems = []
    if not cache or lib.kvc_rt_op_cache_batch(cache) != batch:
        return ["kvc_rt_op_cache_new: " + rt.error()]
    k = torch.randn(batch, kv_heads, 5, d, dtype=torch.float16, device=dev, generator=gen)
    v = torch.randn_like(k)
    zeros = torch.zeros(batch, dtype=torch.int32, device=dev)
    lib.kvc_rt_op_append(cache, k.data_ptr(), v.data_ptr(), zeros.data_ptr(), 5, 0.0)
    lengths = torch.tensor([5, 3], dtype=torch.int32, device=dev)
    lib.kvc_rt_op_truncate(cache, lengths.data_ptr())
    k2 = torch.randn(batch, kv_heads, 2, d, dtype=torch.float16, device=dev, generator=gen)
    v2 = torch.randn_like(k2)
    q = torch.randn(batch, q_heads, 2, d, dtype=torch.float16, device=dev, generator=gen)
    # Heads last, as compiled models take it: [batch, rows, q_heads, d].
    out = torch.full((batch, 2, q_heads, d), float("nan"), dtype=torch.float16, device=dev)
    lib.kvc_rt_op_append(cache, k2.data_ptr(), v2.data_ptr(), lengths.data_ptr(), 2, 0.0)
    lib.kvc_rt_op_decode_attention(cache, q.data_ptr(), q_heads, 2, lengths.data_ptr(),
                                   out.data_ptr(), 1 / math.sqrt(d), 1)
    got_lengths = torch.zeros(batch, dtype=torch.int32, device=dev)
    lib.kvc_rt_op_lengths(cache, got_lengths.data_ptr())
    rt.synchronize()
    if rt.error():
        problems.append(rt.error())
    if got_lengths.tolist() != [7, 5]:
        problems.append("lengths %s, expected [7, 5]" % got_lengths.tolist())
    # The cache as the reference sees it: prefill rows, then the new rows.
    keys = torch.zeros(batch, kv_heads, 7, d, dtype=torch.float16, device=dev)
    values = torch.zeros_like(keys)
    for b, n in enumerate([5, 3]):
        keys[b, :, :n], values[b, :, :n] = k[b, :, :n], v[b, :, :n]
        keys[b, :, n:n + 2], values[b, :, n:n + 2] = k2[b], v2[b]
    ref = reference(q, keys, values, lengths, lengths.long() + 2, 1 / math.sqrt(d))
    err = ((out.transpose(1, 2).float() - ref).norm() / ref.norm()).item()
    if not err <= 2e-3:
        problems.append("relative error %.3g" % err)
    lib.kvc_rt_op_cache_free(cache)
    return problems


def run_rotary_append(rt, gen):
    """kvc.cache.append {rotary_theta}: the stored keys are the new keys
    rotated to their positions (rotate-half), the values as given."""
    problems = []
    for d, name in [(64, "f16"), (128, "bf16"), (128, "f32")]:
        dtype, code, tol = DTYPES[name]
        batch, kv, rows, cap, theta = 3, 8, 2, 40, 10000.0
        keys = torch.zeros(batch, kv, cap, d, dtype=dtype, device="cuda")
        values = torch.zeros_like(keys)
        lengths = torch.tensor([0, 5, 30], dtype=torch.int32, device="cuda")
        positions = lengths.clone()
        k = torch.randn(batch, kv, rows, d, dtype=dtype, device="cuda", generator=gen)
        v = torch.randn_like(k)
        cache = rt.wrap_cache(keys, values, lengths, code)
        rt.append_rotary(cache, k, v, positions, rows, theta)
        rt.synchronize()
        rt.destroy_cache(cache)
        half = d // 2
        freq = theta ** (-2 * torch.arange(half, device="cuda", dtype=torch.float64) / d)
        for b in range(batch):
            p = int(positions[b])
            pos = torch.arange(p, p + rows, device="cuda", dtype=torch.float64).view(rows, 1)
            angle = pos * freq
            c, s = torch.cos(angle), torch.sin(angle)
            x = k[b].double()
            ref = torch.cat([x[..., :half] * c - x[..., half:] * s,
                             x[..., half:] * c + x[..., :half] * s], dim=-1)
            got = keys[b, :, p:p + rows].double()
            err = ((got - ref).norm() / ref.norm()).item()
            if not err <= tol:
                problems.append("%s D%d sequence %d: rotated keys off by %.3g" % (name, d, b, err))
            if not torch.equal(values[b, :, p:p + rows], v[b]):
                problems.append("%s D%d sequence %d: values changed" % (name, d, b))
    return problems


# Forced plans: each a grid case and the plan it runs under.
FORCED = [
    ((1, 4096, 32, 8, 128, "bf16", 1), "kernel=mma,splits=8,cluster=8"),
    ((3, 255, 32, 1, 64, "f16", 1), "kernel=cuda"),
    ((2, 4096, 32, 4, 64, "bf16", 2), "kernel=mma,splits=7,cluster=1"),
    ((1, 32768, 32, 8, 128, "f16", 1, True), "splits=3,cluster=8"),
    ((8, 17, 32, 32, 128, "bf16", 1), "kernel=mma"),
    ((3, 300, 32, 8, 64, "bf16", 1), "kernel=cuda,splits=1"),
]
QUICK_FORCED = FORCED[:2]


def run_refusals(rt, gen):
    """Plans the runtime refuses, each with its reason; the plan before stays."""
    problems = []
    for text, reason in [("cluster=9", "1 to 8"), ("kernel=cuda,cluster=2", "clusters"),
                         ("splits=0", "1 to"), ("kernels=mma", "unknown key")]:
        try:
            rt.set_decode_plan(text)
            problems.append("%r accepted" % text)
        except kvc_rt.Error as e:
            if reason not in str(e):
                problems.append("%r refused with %r" % (text, str(e)))
    # The tensor-core kernel takes no f32 caches: a decode that asks fails.
    rt.set_decode_plan("kernel=mma")
    try:
        run_case(rt, gen, 1, 17, 32, 8, 64, "f32")
        problems.append("kernel=mma ran on an f32 cache")
    except kvc_rt.Error as e:
        if "f32" not in str(e):
            problems.append("kernel=mma on f32 refused with %r" % str(e))
    # What a forced plan launches, described without running it (batch, kv
    # heads, q heads, rows, head dim, type, cache rows).
    for plan, shape, expected in [
            ("kernel=mma,splits=8,cluster=8", (1, 8, 32, 1, 128, kvc_rt.BF16, 4096),
             "kernel=kvc_decode_mma_d128_g4_bf16 splits=8 split_len=512 cluster=8 "
             "grid=8x8x1 combine=none"),
            ("kernel=cuda,splits=3", (2, 4, 32, 1, 64, kvc_rt.F16, 1000),
             "kernel=kvc_decode_split_d64_g8_f16 splits=3 split_len=384 cluster=1 "
             "grid=3x8x2 combine=64x1x1")]:
        rt.set_decode_plan(plan)
        described = rt.describe_decode(*shape)
        if described != expected:
            problems.append("%s described %r, expected %r" % (plan, described, expected))
    rt.set_decode_plan("")
    try:
        rt.describe_decode(1, 0, 32, 1, 128, kvc_rt.BF16, 4096)
        problems.append("a decode over 0 kv heads described")
    except kvc_rt.Error as e:
        if "positive" not in str(e):
            problems.append("0 kv heads refused with %r" % str(e))
    # Compiled code's kvc_rt_op_* calls stop at a pending error: clear it.
    rt.lib.kvc_rt_clear_error(rt.device)
    return problems


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
    if args.quick:
        grid = [(b, l, 32, kv, d, t, 1) for b, l, kv, d, t in
                [(1, 17, 8, 128, "bf16"), (3, 255, 1, 64, "f16"), (2, 300, 4, 128, "bf16")]]
        grid += [(3, 100, 32, 8, 128, "bf16", 3), (2, 300, 32, 4, 64, "bf16", 2, True),
                 (40, 100, 32, 4, 64, "bf16", 1, True)]
    else:
        grid = [(b, l, 32, kv, d, t, 1) for b, l, kv, d, t in itertools.product(
            [1, 3, 8, 32], [1, 17, 255, 4096, 32768], [32, 8, 4, 1], [64, 128], ["bf16", "f16"])]
        # Several new rows per sequence (causal among them), and f32 caches.
        grid += [(3, 255, 32, 8, 128, "bf16", 4), (2, 4096, 32, 1, 64, "f16", 2),
                 (8, 17, 32, 4, 128, "bf16", 3)]
        grid += [(3, 255, 32, kv, d, "f32", 1) for kv in (8, 1) for d in (64, 128)]
        # Groups of 6 (blocks of 3 query heads on CUDA cores, tensor cores
        # for 16-bit caches).
        grid += [(3, 255, 24, 4, 128, "f32", 1), (2, 300, 24, 4, 64, "f32", 2),
                 (3, 255, 24, 4, 128, "bf16", 1)]
        # Tensor-core blocks enough for every SM: one split, no combine.
        grid += [(40, 255, 32, 4, 64, "bf16", 1), (36, 300, 32, 4, 128, "f16", 2, True)]
        # Head dim 32: fewer output pieces than threads in a block.
        grid += [(3, 255, 32, 4, 32, "bf16", 1), (40, 100, 32, 4, 32, "f16", 1, True),
                 (3, 255, 32, 8, 32, "bf16", 1)]
        # Heads-last output (what compiled models ask for).
        grid += [(1, 640, 32, 4, 64, "bf16", 1, True), (3, 255, 32, 8, 128, "f16", 4, True),
                 (8, 17, 32, 1, 64, "f32", 2, True)]
    cases = [(case, "") for case in grid] + (QUICK_FORCED if args.quick else FORCED)
    failures = 0
    worst = {}
    for (batch, length, qh, kvh, d, t, rows, *last), plan in cases:
        if batch * kvh * length * d * 2 * 2 > 40e9:
            continue
        heads_last = bool(last and last[0])
        rt.set_decode_plan(plan)
        err, problems = run_case(rt, gen, batch, length, qh, kvh, d, t, rows, heads_last)
        worst[t] = max(worst.get(t, 0.0), err)
        if problems:
            failures += 1
            print("FAIL B%d L%d %d/%d D%d %s T%d%s%s: %s" % (
                batch, length, qh, kvh, d, t, rows, " heads last" if heads_last else "",
                " plan " + plan if plan else "", "; ".join(problems)))
    rt.set_decode_plan("")
    problems = run_refusals(rt, gen)
    if problems:
        failures += 1
        print("FAIL forced-plan refusals: " + "; ".join(problems))
    problems = run_rotary_append(rt, gen)
    if problems:
        failures += 1
        print("FAIL rotary append: " + "; ".join(problems))
    problems = run_compiled_entry_points(rt, gen)
    if problems:
        failures += 1
        print("FAIL compiled-code entry points: " + "; ".join(problems))
    rt.close()
    print("cases %d, failures %d, worst relative error %s" %
          (len(cases), failures, ", ".join("%s %.2e" % kv for kv in sorted(worst.items()))))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
