# Forced decode plans against the runtime's own, for work on the decode
# planners (runtime/include/kvc/rt/Plan.h): for each shape (B:L[:Hkv[:D]],
# Hq 32, bf16, as in decode_attention.py) the time of cuDNN, of kvc's plan,
# and of kvc under each forced plan (kvc_rt_set_decode_plan: any of
# kernel=mma|cuda, splits=N, cluster=C, joined by commas), all in one run.
# Each time comes with what ran (kvc_rt_describe_decode: the kernel's kind,
# splits x rows, the cluster, "+c" where a combine kernel ran). A plan whose
# output is off by more than 1e-2 (relative, against float64) is marked
# ERR; one the runtime refuses prints its reason.
#
#   python3 bench/gpu/decode_plans.py --runtime build-rt/lib/libkvc_rt.so \
#       --kernels build/kernels/kvc_kernels.cubin --shapes 1:16384:1 1:4096 \
#       --plans kernel=cuda splits=32,cluster=1 splits=8,cluster=8
import argparse

from torch.nn.attention import SDPBackend

import decode_attention as da
import kvc_rt


def short(description):
    """kvc_rt_describe_decode's text as "mma 32x128 cl1+c"."""
    items = dict(item.split("=", 1) for item in description.split())
    kind = items["kernel"].split("_")[2]  # split, split1 or mma
    return "%s %sx%s cl%s%s" % (kind, items["splits"], items["split_len"], items["cluster"],
                                "" if items["combine"] == "none" else "+c")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--shapes", nargs="+", type=da.parse_shape, required=True)
    parser.add_argument("--plans", nargs="+", required=True,
                        help="forced plans, e.g. kernel=mma,splits=16,cluster=1")
    args, rt, _ = da.start(parser, 100)
    for batch, length, hkv, d in args.shapes:
        sets = da.make_sets(rt, batch, length, hkv, d)
        kvc = da.kvc_call(rt, length, d)
        cells = ["cuDNN %.1f" % da.time_us(da.sdpa(SDPBackend.CUDNN_ATTENTION), sets, args.reps)]
        for plan in [""] + args.plans:
            try:
                rt.set_decode_plan(plan)
                ran = short(rt.describe_decode(batch, hkv, da.HQ, 1, d, kvc_rt.BF16, length))
                err = da.kvc_error(rt, kvc, sets[0])
                cell = "%.1f [%s]" % (da.time_us(kvc, sets, args.reps), ran)
                if not err < 1e-2:
                    cell += " ERR %.1e" % err
            except kvc_rt.Error as e:
                cell = "refused (%s)" % e
            cells.append("%s %s" % (plan or "plan", cell))
        rt.set_decode_plan("")
        print("%-20s %s" % (da.shape_name(batch, length, hkv, d), " | ".join(cells)), flush=True)
        da.free_sets(rt, sets)
    rt.close()


if __name__ == "__main__":
    main()
