"""Checks kvc-run against Hugging Face transformers on the GPU machine.

Builds a randomly initialized LlamaForCausalLM from a config.json (fixed
seed, wide weights so that greedy decoding varies), saves it with
save_pretrained (safetensors) in --dtype, runs kvc-run on an artifact that
kvc-compile built from the same config, at batch 1 and at a ragged batch of
4 prompts, and compares with Hugging Face on the same weights:
  tokens  kvc's greedy tokens against HF generate (do_sample=False), prompt
          by prompt;
  logits  kvc's logits at every step against HF's forward pass over the
          prompt and kvc's own tokens (so a late token flip in bf16 does not
          spoil the comparison), as max |diff| / max |HF logit|.
kvc-run is run twice per case: with --logits, which reads each step's
tokens before the next step, and without, where greedy steps run one ahead
of reading their tokens; both must give the same tokens.
In f32 every token must match and the logits agree within 1e-3. In bf16 the
tolerance is HF's own rounding: kvc's error must be at most twice the error
of HF's bf16 logits against HF's f32 logits on the same tokens.

  python3 utils/hf-generate-check.py CONFIG ARTIFACT --kvc-run build/bin/kvc-run \
      --dtype f32 --steps 64
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
from transformers import LlamaForCausalLM

from hf_model import random_llama


def run_kvc(args, weights, prompts, logits_path=None):
    """kvc-run's tokens per sequence. With logits_path it also writes every
    step's logits there, and reads each step's tokens before the next step;
    without, greedy steps run one ahead of reading their tokens."""
    cmd = [args.kvc_run, args.artifact, "--weights", weights, "--max-new-tokens",
           str(args.steps), "--quiet"]
    if logits_path:
        cmd += ["--logits", logits_path]
    if args.runtime:
        cmd += ["--runtime", args.runtime]
    for p in prompts:
        cmd += ["--prompt", ",".join(map(str, p))]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode:
        sys.exit("kvc-run failed:\n" + out.stdout + out.stderr)
    tokens = []
    for line in out.stdout.splitlines():
        if line.startswith("sequence "):
            tokens.append([int(t) for t in line.split("|")[1].split()])
        elif line.startswith(("prefill", "decode")):
            print("  kvc-run " + line)
    return tokens


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("config")
    parser.add_argument("artifact")
    parser.add_argument("--kvc-run", default="build/bin/kvc-run")
    parser.add_argument("--runtime", default="")
    parser.add_argument("--dtype", choices=["f32", "bf16"], default="f32")
    parser.add_argument("--steps", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    config, model = random_llama(args.config, args.seed)
    dtype = torch.float32 if args.dtype == "f32" else torch.bfloat16
    device = "cuda"
    reference = model.to(device)  # f32, for the bf16 tolerance
    tested = LlamaForCausalLM(config).to(dtype).to(device).eval()
    tested.load_state_dict(reference.state_dict())
    work = tempfile.mkdtemp()
    tested.save_pretrained(os.path.join(work, "model"), safe_serialization=True)
    vocab = config.vocab_size
    rng = np.random.default_rng(1)
    cases = {
        "batch 1": [[5, 17, 42, 9, 3, 101, 77]],
        "ragged batch of 4": [rng.integers(0, vocab, n).tolist() for n in (3, 12, 7, 5)],
    }
    ok = True
    for name, prompts in cases.items():
        logits_path = os.path.join(work, "logits.bin")
        tokens = run_kvc(args, os.path.join(work, "model"), prompts, logits_path)
        kvc = np.fromfile(logits_path, dtype=np.float32).reshape(args.steps, len(prompts), vocab)
        # The same greedy run with steps queued ahead of their tokens' reads.
        if run_kvc(args, os.path.join(work, "model"), prompts) != tokens:
            print("  %s: tokens of the pipelined run differ from the stepwise run" % name)
            ok = False
        mismatched, err, hf_err = 0, 0.0, 0.0
        for b, prompt in enumerate(prompts):
            ids = torch.tensor([prompt], device=device)
            with torch.no_grad():
                gen = tested.generate(ids, max_new_tokens=args.steps, do_sample=False,
                                      attention_mask=torch.ones_like(ids))
            hf_tokens = gen[0, len(prompt):].tolist()
            diff = [i for i, (a, c) in enumerate(zip(tokens[b], hf_tokens)) if a != c]
            mismatched += len(diff)
            if diff:
                print("  %s, sequence %d: first differing token at step %d" % (name, b, diff[0]))
            seq = torch.tensor([prompt + tokens[b][:-1]], device=device)
            with torch.no_grad():
                hf = tested(seq).logits[0, len(prompt) - 1:].float().cpu().numpy()
                f32 = reference(seq).logits[0, len(prompt) - 1:].float().cpu().numpy()
            scale = np.abs(hf).max()
            err = max(err, np.abs(kvc[:, b] - hf).max() / scale)
            hf_err = max(hf_err, np.abs(hf - f32).max() / scale)
            if not np.isfinite(kvc[:, b]).all():
                print("  %s, sequence %d: non-finite logits" % (name, b))
                ok = False
        tol = 1e-3 if args.dtype == "f32" else 2 * hf_err
        passed = err <= tol and (args.dtype == "bf16" or mismatched == 0)
        ok = ok and passed
        print("%s %s: greedy tokens differing from HF: %d of %d; logits max |diff| / max "
              "|logit| = %.2e (tolerance %.2e; HF %s vs f32: %.2e): %s"
              % (args.dtype, name, mismatched, args.steps * len(prompts), err, tol,
                 args.dtype, hf_err, "PASS" if passed else "FAIL"))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
