"""The random Hugging Face Llama that kvc is checked against (GPU machine:
torch and transformers): LlamaForCausalLM from a config.json, f32, a fixed
seed, and wider weights than the default initialization so that greedy
decoding varies from step to step."""
import json

import torch
from transformers import LlamaConfig, LlamaForCausalLM


def random_llama(config_path, seed):
    with open(config_path) as f:
        config = LlamaConfig(**json.load(f))
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).float().eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1 + 0.1 * torch.randn_like(p))
            else:
                p.copy_(torch.randn_like(p) / p.shape[-1] ** 0.5)
    return config, model
