"""Saves a randomly initialized bf16 LlamaForCausalLM of a config.json as
safetensors (seed 0), for kvc-run runs that need real-sized weights.

  python3 bench/model/save-random.py CONFIG OUTDIR
"""
import json
import sys

import torch
from transformers import LlamaConfig, LlamaForCausalLM

if len(sys.argv) != 3:
    sys.exit(__doc__)
with open(sys.argv[1]) as f:
    config = LlamaConfig(**json.load(f))
torch.manual_seed(0)
LlamaForCausalLM(config).to(torch.bfloat16).save_pretrained(sys.argv[2], safe_serialization=True)
