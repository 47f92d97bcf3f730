//===- Llama.h - Llama-family models in full-sequence form ------*- C++ -*-===//
//
// Reads a Hugging Face config.json and writes the model the way it is
// trained (every position from the whole prefix) as func/linalg/kvc IR, ready
// for kvc-incrementalize.
//
//===----------------------------------------------------------------------===//
#ifndef KVC_MODELS_LLAMA_H
#define KVC_MODELS_LLAMA_H

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <string>

namespace mlir::kvc {

/// The architecture parameters kvc uses, named as in config.json.
struct LlamaConfig {
  int64_t hiddenSize = 0, numLayers = 0, numHeads = 0, numKvHeads = 0,
          headDim = 0, intermediateSize = 0, vocabSize = 0;
  double rmsNormEps = 1e-6, ropeTheta = 10000.0;
  bool tieWordEmbeddings = false;
  /// The element type of weights and activations, from torch_dtype: "f32"
  /// (float32, the default) or "bf16" (bfloat16).
  std::string dtype = "f32";
};

/// Parses config.json. Errors name the key and what was wrong with it:
/// missing, not a positive integer, an architecture other than Llama, rope
/// scaling (not supported yet), heads not a multiple of kv heads, a
/// torch_dtype other than float32 and bfloat16.
llvm::Expected<LlamaConfig> parseLlamaConfig(llvm::StringRef json);

/// The model as MLIR text: `func.func @model(%tokens: tensor<?x?xi32>
/// {kvc.rows}, %positions: tensor<?x?xi32> {kvc.positions}, <weights>) ->
/// tensor<?x?xVOCABxf32>` (logits), each weight argument carrying its
/// safetensors name as `kvc.weight` and laid out as Hugging Face stores it
/// (projections [out, in]). In `config.dtype`, rounding where Hugging Face
/// rounds (projections, norms, rotary and SiLU products in bf16) while
/// reductions and projections accumulate in f32.
std::string buildLlamaModel(const LlamaConfig &config);

} // namespace mlir::kvc

#endif // KVC_MODELS_LLAMA_H
