# Tests that a Hugging Face checkpoint written by save_pretrained passes the
# runtime's check against kvc-compile's manifest for the same config, and
# that a checkpoint of another shape fails it, naming the weights. Needs
# transformers (the GPU machine has it), not a GPU.
#
# REQUIRES: cuda
# (The manifest is kept next to the config: the GPU machine has no
# kvc-compile; test/Tools/kvc-compile.mlir keeps it equal to what kvc-compile
# writes.)
# RUN: %python %s --runtime %kvc_rt --config %S/../../Tools/Inputs/tiny-llama.json --manifest %S/../../Tools/Inputs/tiny-llama.manifest.json --out %t.dir
import argparse
import ctypes
import json
import os
import sys

from transformers import LlamaConfig, LlamaForCausalLM


def check(lib, manifest, weights):
    problems = ctypes.c_char_p()
    status = lib.kvc_rt_check_weights(manifest.encode(), weights.encode(), ctypes.byref(problems))
    return status, problems.value.decode()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runtime", required=True)
    parser.add_argument("--config", required=True)
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    lib = ctypes.CDLL(args.runtime)
    lib.kvc_rt_check_weights.argtypes = [ctypes.c_char_p, ctypes.c_char_p,
                                         ctypes.POINTER(ctypes.c_char_p)]
    config = json.load(open(args.config))
    good = os.path.join(args.out, "good")
    LlamaForCausalLM(LlamaConfig(**config)).float().save_pretrained(good, safe_serialization=True)
    status, problems = check(lib, args.manifest, good)
    failures = 0
    if status:
        failures += 1
        print("FAIL the matching checkpoint was refused:\n" + problems)
    config["vocab_size"] = 300
    bad = os.path.join(args.out, "bad")
    LlamaForCausalLM(LlamaConfig(**config)).float().save_pretrained(bad, safe_serialization=True)
    status, problems = check(lib, args.manifest, bad)
    print(problems)
    if not status or "model.embed_tokens.weight' has shape [300, 64], the model expects [256, 64]" \
            not in problems:
        failures += 1
        print("FAIL the wrong vocabulary was not reported")
    status, problems = check(lib, args.manifest, os.path.join(args.out, "absent"))
    if not status:
        failures += 1
        print("FAIL a missing checkpoint was accepted")
    print("failures %d" % failures)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
