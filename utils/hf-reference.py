"""Hugging Face reference for kvc's Llama model builder (runs on the GPU
machine, which has torch and transformers).

Builds a randomly initialized LlamaForCausalLM from a config.json (f32, fixed
seed), and writes to OUT_DIR:
  weights.bin  every weight as little-endian f32, in the order of the
               arguments of kvc-compile's @model (embed, per layer: input norm,
               q, k, v, o, post-attention norm, gate, up, down; final norm;
               lm_head unless tied)
  reference.json  the prompt, HF's logits at its last position and HF's greedy
               continuation (generate, do_sample=False)

  python3 utils/hf-reference.py test/Tools/Inputs/tiny-llama.json OUT_DIR --steps 64
"""
import argparse
import json
import os

import torch

from hf_model import random_llama


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("config")
    parser.add_argument("out")
    parser.add_argument("--steps", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    config, model = random_llama(args.config, args.seed)
    sd = model.state_dict()
    names = ["model.embed_tokens.weight"]
    for l in range(config.num_hidden_layers):
        p = "model.layers.%d." % l
        names += [p + "input_layernorm.weight", p + "self_attn.q_proj.weight",
                  p + "self_attn.k_proj.weight", p + "self_attn.v_proj.weight",
                  p + "self_attn.o_proj.weight", p + "post_attention_layernorm.weight",
                  p + "mlp.gate_proj.weight", p + "mlp.up_proj.weight",
                  p + "mlp.down_proj.weight"]
    names.append("model.norm.weight")
    if not config.tie_word_embeddings:
        names.append("lm_head.weight")
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "weights.bin"), "wb") as f:
        for n in names:
            f.write(sd[n].detach().float().contiguous().numpy().tobytes())
    prompt = [5, 17, 42, 9, 3, 101, 77]
    ids = torch.tensor([prompt])
    with torch.no_grad():
        logits = model(ids).logits[0, -1].tolist()
        out = model.generate(ids, max_new_tokens=args.steps, do_sample=False,
                             attention_mask=torch.ones_like(ids))
    ref = {"prompt": prompt, "last_logits": logits,
           "generated": out[0, len(prompt):].tolist(), "weights": names}
    with open(os.path.join(args.out, "reference.json"), "w") as f:
        json.dump(ref, f)
    print("weights %d, generated %s" % (len(names), ref["generated"][:16]))


if __name__ == "__main__":
    main()
