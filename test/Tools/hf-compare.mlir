// Tests that kvc-compile's Llama computes what Hugging Face's does: a random
// LlamaForCausalLM from Inputs/tiny-llama.json (2 layers, GQA 4:1, untied
// head, f32), its weights, last-prompt logits and 64 greedy tokens written by
// utils/hf-reference.py (transformers, on the GPU machine) into
// Inputs/hf-tiny-llama; kvc runs the full-sequence model and prefill +
// decode on the CPU.
//
// RUN: %python %S/../../utils/hf-compare.py %S/Inputs/tiny-llama.json %S/Inputs/hf-tiny-llama \
// RUN:   --build %kvc_obj_root --runner-utils %mlir_runner_utils --c-runner-utils %mlir_c_runner_utils \
// RUN:   | FileCheck %s

// CHECK: greedy tokens differing from HF: 0
// CHECK: PASS: 64 of 64 greedy tokens as HF
