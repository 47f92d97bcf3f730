// Tests kvc-compile on a 2-layer Llama config: the full-sequence model with
// Hugging Face weight names and layouts, its incremental form, that the
// model's work counts and lowers to the CPU, and the errors on bad configs.
//
// RUN: kvc-compile %S/Inputs/tiny-llama.json --emit=mlir --stage=model | FileCheck %s --check-prefix=MODEL
// RUN: kvc-compile %S/Inputs/tiny-llama.json --emit=mlir | FileCheck %s --check-prefix=INC
// RUN: kvc-compile %S/Inputs/tiny-llama.json --emit=mlir --stage=model | kvc-opt --kvc-count-flops -o /dev/null | FileCheck %s --check-prefix=FLOPS
// RUN: kvc-compile %S/Inputs/tiny-llama.json --emit=mlir | kvc-opt --kvc-cpu-pipeline -o /dev/null
// RUN: kvc-compile %S/Inputs/tiny-llama.json --emit=manifest | FileCheck %s --check-prefix=MANIFEST
// RUN: kvc-compile %S/Inputs/tiny-llama.json --emit=manifest -o %t.manifest.json
// RUN: diff %t.manifest.json %S/Inputs/tiny-llama.manifest.json
// RUN: not kvc-compile %S/Inputs/tiny-llama.json --emit=cubin 2>&1 | FileCheck %s --check-prefix=EMIT
// RUN: kvc-compile --help | FileCheck %s --check-prefix=HELP
//
// RUN: echo '{"hidden_size": 64, "num_hidden_layers": 1, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 32, "intermediate_size": 96, "vocab_size": 50, "tie_word_embeddings": true}' > %t.tied.json
// RUN: kvc-compile %t.tied.json --emit=mlir --stage=model | FileCheck %s --check-prefix=TIED
//
// RUN: echo '{"hidden_size": 64}' > %t.missing.json
// RUN: not kvc-compile %t.missing.json 2>&1 | FileCheck %s --check-prefix=MISSING
// RUN: echo '{"model_type": "gpt2"}' > %t.type.json
// RUN: not kvc-compile %t.type.json 2>&1 | FileCheck %s --check-prefix=TYPE
// RUN: echo '{"hidden_size": 64, "num_hidden_layers": 1, "num_attention_heads": 4, "num_key_value_heads": 3, "intermediate_size": 8, "vocab_size": 8}' > %t.groups.json
// RUN: not kvc-compile %t.groups.json 2>&1 | FileCheck %s --check-prefix=GROUPS
// RUN: echo '{"hidden_size": -64}' > %t.negative.json
// RUN: not kvc-compile %t.negative.json 2>&1 | FileCheck %s --check-prefix=NEGATIVE
// RUN: echo '{"rope_scaling": {"type": "linear", "factor": 2.0}}' > %t.scaling.json
// RUN: not kvc-compile %t.scaling.json 2>&1 | FileCheck %s --check-prefix=SCALING
// RUN: echo '{"hidden_size": 64,' > %t.truncated.json
// RUN: not kvc-compile %t.truncated.json 2>&1 | FileCheck %s --check-prefix=JSON
// RUN: not kvc-compile %t.nonexistent.json 2>&1 | FileCheck %s --check-prefix=NOFILE
// RUN: not kvc-compile %S/Inputs/tiny-llama.json --stage=gpu 2>&1 | FileCheck %s --check-prefix=STAGE

// MODEL-LABEL: func.func @model(
// MODEL-SAME: %{{.+}}: tensor<?x?xi32> {kvc.rows}, %{{.+}}: tensor<?x?xi32> {kvc.positions}
// MODEL-SAME: tensor<256x64xf32> {kvc.weight = "model.embed_tokens.weight"}
// MODEL-SAME: tensor<64xf32> {kvc.weight = "model.layers.0.input_layernorm.weight"}
// MODEL-SAME: tensor<96x64xf32> {kvc.part_rows = array<i64: 64, 16, 16>, kvc.parts = ["model.layers.0.self_attn.q_proj.weight", "model.layers.0.self_attn.k_proj.weight", "model.layers.0.self_attn.v_proj.weight"], kvc.weight = "model.layers.0.self_attn.qkv_proj.weight"}
// MODEL-SAME: tensor<64x64xf32> {kvc.weight = "model.layers.0.self_attn.o_proj.weight"}
// MODEL-SAME: tensor<256x64xf32> {kvc.part_rows = array<i64: 128, 128>, kvc.parts = ["model.layers.0.mlp.gate_proj.weight", "model.layers.0.mlp.up_proj.weight"], kvc.weight = "model.layers.0.mlp.gate_up_proj.weight"}
// MODEL-SAME: tensor<64x128xf32> {kvc.weight = "model.layers.1.mlp.down_proj.weight"}
// MODEL-SAME: tensor<64xf32> {kvc.weight = "model.norm.weight"}
// MODEL-SAME: tensor<256x64xf32> {kvc.weight = "lm_head.weight"}) -> tensor<?x?x256xf32>
// MODEL-COUNT-2: kvc.attention {{.+}} {causal} : tensor<?x4x?x16xf32>, tensor<?x1x?x16xf32>
// MODEL-NOT: kvc.attention

// INC-LABEL: func.func @model_prefill(
// INC-SAME: {kvc.weight = "lm_head.weight"}, %{{.+}}: tensor<?xi32>, %{{.+}}: index)
// INC-SAME: -> (tensor<?x1x256xf32>, !kvc.cache<?x1x?x16xf32>, !kvc.cache<?x1x?x16xf32>)
// INC-LABEL: func.func @model_decode(
// INC-SAME: %{{.+}}: tensor<?xi32>, %{{.+}}: !kvc.cache<?x1x?x16xf32>, %{{.+}}: !kvc.cache<?x1x?x16xf32>) -> tensor<?x?x256xf32>
// INC-COUNT-2: kvc.decode_attention

// MANIFEST: "entry_points": [
// MANIFEST-NEXT: "model_prefill",
// MANIFEST-NEXT: "model_decode"
// MANIFEST: "weights": [
// MANIFEST: "dtype": "F32",
// MANIFEST-NEXT: "name": "model.embed_tokens.weight",
// MANIFEST-NEXT: "shape": [
// MANIFEST-NEXT: 256,
// MANIFEST-NEXT: 64
// MANIFEST: "name": "model.layers.0.self_attn.qkv_proj.weight",
// MANIFEST-NEXT: "parts": [
// MANIFEST-NEXT: {
// MANIFEST-NEXT: "name": "model.layers.0.self_attn.q_proj.weight",
// MANIFEST-NEXT: "shape": [
// MANIFEST-NEXT: 64,
// MANIFEST-NEXT: 64
// MANIFEST: "name": "model.layers.0.self_attn.v_proj.weight",
// MANIFEST-NEXT: "shape": [
// MANIFEST-NEXT: 16,
// MANIFEST-NEXT: 64
// MANIFEST: "shape": [
// MANIFEST-NEXT: 96,
// MANIFEST-NEXT: 64
// MANIFEST: "name": "model.layers.1.mlp.down_proj.weight",
// MANIFEST-NEXT: "shape": [
// MANIFEST-NEXT: 64,
// MANIFEST-NEXT: 128
// MANIFEST: "name": "lm_head.weight",
// EMIT: kvc-compile: error: --emit=cubin is not available (artifact, mlir, manifest)

// Help lists kvc-compile's own options, not LLVM's.
// HELP: kvc-compile options:
// HELP-DAG: --dtype=
// HELP-DAG: --emit=
// HELP-DAG: --stage=
// HELP-DAG: --target=
// HELP-NOT: amdgpu

// TIED-LABEL: func.func @model(
// TIED-SAME: %[[EMBED:[^:]+]]: tensor<50x64xf32> {kvc.weight = "model.embed_tokens.weight"}
// TIED-SAME: tensor<256x64xf32> {kvc.part_rows = array<i64: 128, 64, 64>, kvc.parts = ["model.layers.0.self_attn.q_proj.weight", "model.layers.0.self_attn.k_proj.weight", "model.layers.0.self_attn.v_proj.weight"], kvc.weight = "model.layers.0.self_attn.qkv_proj.weight"}
// TIED-SAME: tensor<64x128xf32> {kvc.weight = "model.layers.0.self_attn.o_proj.weight"}
// TIED-NOT: lm_head
// TIED: kvc.attention {{.+}} : tensor<?x4x?x32xf32>, tensor<?x2x?x32xf32>
// TIED: %[[LOGITS:.+]] = linalg.generic {{.+}} ins(%{{.+}}, %[[EMBED]] : tensor<?x?x64xf32>, tensor<50x64xf32>)
// TIED: return %[[LOGITS]] : tensor<?x?x50xf32>

// FLOPS: @model: {{[0-9]+}} FLOPs per row, 512 per (row, attended key), 0 per call

// MISSING: kvc-compile: error: {{.+}}missing.json: config.json: missing key 'num_hidden_layers'
// TYPE: config.json: model_type 'gpt2' is not supported (kvc compiles llama)
// GROUPS: config.json: num_attention_heads 4 is not a multiple of num_key_value_heads 3
// NEGATIVE: config.json: 'hidden_size' must be a positive integer, found -64
// SCALING: config.json: rope_scaling is not supported yet
// JSON: config.json: not valid JSON:
// NOFILE: kvc-compile: error: cannot read {{.+}}nonexistent.json:
// STAGE: kvc-compile: error: --stage must be model, incremental or lowered, found 'gpu'
