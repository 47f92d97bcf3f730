//===- Llama.cpp - Llama-family models in full-sequence form ---------------===//
//
// The model is written as text, one linalg op per step of the Hugging Face
// implementation (LlamaForCausalLM), with static weight shapes and dynamic
// batch and sequence. kvc-incrementalize then makes it incremental.
//
//===----------------------------------------------------------------------===//
#include "kvc/Models/Llama.h"

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/Twine.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>

using namespace mlir::kvc;
using llvm::Twine;

static llvm::Error configError(const Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                 "config.json: " + message);
}

llvm::Expected<LlamaConfig> mlir::kvc::parseLlamaConfig(llvm::StringRef json) {
  llvm::Expected<llvm::json::Value> parsed = llvm::json::parse(json);
  if (!parsed)
    return configError("not valid JSON: " + llvm::toString(parsed.takeError()));
  const llvm::json::Object *root = parsed->getAsObject();
  if (!root)
    return configError("the top level must be an object");
  if (std::optional<llvm::StringRef> type = root->getString("model_type"))
    if (*type != "llama")
      return configError("model_type '" + *type +
                         "' is not supported (kvc compiles llama)");
  if (const llvm::json::Array *archs = root->getArray("architectures"))
    for (const llvm::json::Value &arch : *archs)
      if (arch.getAsString() != llvm::StringRef("LlamaForCausalLM"))
        return configError("architecture " +
                           llvm::formatv("{0}", arch).str() +
                           " is not supported (kvc compiles LlamaForCausalLM)");
  if (const llvm::json::Value *scaling = root->get("rope_scaling"))
    if (scaling->kind() != llvm::json::Value::Null)
      return configError("rope_scaling is not supported yet");

  LlamaConfig config;
  llvm::Error error = llvm::Error::success();
  auto integer = [&](llvm::StringRef key, int64_t &out, bool required) {
    if (error)
      return;
    const llvm::json::Value *value = root->get(key);
    if (!value) {
      if (required)
        error = configError("missing key '" + key + "'");
      return;
    }
    std::optional<int64_t> v = value->getAsInteger();
    if (!v || *v <= 0) {
      error = configError("'" + key + "' must be a positive integer, found " +
                          llvm::formatv("{0}", *value).str());
      return;
    }
    out = *v;
  };
  integer("hidden_size", config.hiddenSize, true);
  integer("num_hidden_layers", config.numLayers, true);
  integer("num_attention_heads", config.numHeads, true);
  integer("intermediate_size", config.intermediateSize, true);
  integer("vocab_size", config.vocabSize, true);
  config.numKvHeads = config.numHeads;
  integer("num_key_value_heads", config.numKvHeads, false);
  if (!error && config.hiddenSize % config.numHeads == 0)
    config.headDim = config.hiddenSize / config.numHeads;
  integer("head_dim", config.headDim, false);
  if (error)
    return std::move(error);
  for (auto [key, out] : {std::pair<llvm::StringRef, double *>{
                              "rms_norm_eps", &config.rmsNormEps},
                          {"rope_theta", &config.ropeTheta}}) {
    if (const llvm::json::Value *value = root->get(key)) {
      std::optional<double> v = value->getAsNumber();
      if (!v || !(*v > 0))
        return configError("'" + key + "' must be a positive number, found " +
                           llvm::formatv("{0}", *value).str());
      *out = *v;
    }
  }
  if (std::optional<llvm::StringRef> dtype = root->getString("torch_dtype")) {
    if (*dtype == "float32")
      config.dtype = "f32";
    else if (*dtype == "bfloat16")
      config.dtype = "bf16";
    else
      return configError("torch_dtype '" + *dtype +
                         "' is not supported (float32, bfloat16)");
  }
  if (const llvm::json::Value *tied = root->get("tie_word_embeddings")) {
    std::optional<bool> v = tied->getAsBoolean();
    if (!v)
      return configError("'tie_word_embeddings' must be true or false");
    config.tieWordEmbeddings = *v;
  }
  if (config.headDim == 0)
    return configError("hidden_size " + Twine(config.hiddenSize) +
                       " is not a multiple of num_attention_heads " +
                       Twine(config.numHeads) + " and there is no head_dim");
  if (config.numHeads % config.numKvHeads)
    return configError("num_attention_heads " + Twine(config.numHeads) +
                       " is not a multiple of num_key_value_heads " +
                       Twine(config.numKvHeads));
  if (config.headDim % 2)
    return configError("head_dim " + Twine(config.headDim) +
                       " must be even for rotary embeddings");
  return config;
}

namespace {

using Str = const std::string &;

/// Writes the model body; every value is named after what it is.
class ModelWriter {
public:
  explicit ModelWriter(const LlamaConfig &c) : c(c) {}

  std::string build();

private:
  /// Activations and weights are of the model's dtype (E); reductions and
  /// projections accumulate in f32.
  std::string t3(int64_t inner, Str type = "") {
    return "tensor<?x?x" + std::to_string(inner) + "x" +
           (type.empty() ? E : type) + ">";
  }
  std::string t4(int64_t heads, bool headsFirst) {
    std::string h = std::to_string(heads), d = std::to_string(c.headDim);
    return headsFirst ? "tensor<?x" + h + "x?x" + d + "x" + E + ">"
                      : "tensor<?x?x" + h + "x" + d + "x" + E + ">";
  }
  std::string w2(int64_t rows, int64_t cols) {
    return "tensor<" + std::to_string(rows) + "x" + std::to_string(cols) +
           "x" + E + ">";
  }
  bool narrow() const { return E != "f32"; }
  /// In a body: `value` (an E) as f32, named `name` if that takes an op.
  std::string widen(Str name, Str value) {
    if (!narrow())
      return value;
    line("  " + name + " = arith.extf " + value + " : " + E + " to f32");
    return name;
  }
  /// In a body: f32 `value` rounded to E and back (as Hugging Face rounds
  /// between ops), named `name` if that takes ops.
  std::string round(Str name, Str value) {
    return widen(name, store(name + "_r", value));
  }
  /// In a body: f32 `value` as E, for yield.
  std::string store(Str name, Str value) {
    if (!narrow())
      return value;
    line("  " + name + " = arith.truncf " + value + " : f32 to " + E);
    return name;
  }
  void line(const Twine &text) { os << "  " << text << "\n"; }
  std::string rmsnorm(Str x, Str w, Str name);
  std::string linear(Str x, int64_t in, Str w, int64_t out, Str name);
  /// Features [offset, offset + size) of `x` ([b, s, width]).
  std::string slice(Str x, int64_t width, int64_t offset, int64_t size,
                    Str name);
  std::string rotary(Str x, int64_t heads, Str name);
  std::string block(Str x, int64_t layer);

  const LlamaConfig &c;
  const std::string E = c.dtype;
  std::string text;
  llvm::raw_string_ostream os{text};
};

std::string ModelWriter::rmsnorm(Str x, Str w, Str name) {
  std::string h = std::to_string(c.hiddenSize), n = "%" + name;
  line(n + "_e = tensor.empty(%b, %s) : tensor<?x?xf32>");
  line(n + "_z = linalg.fill ins(%zero : f32) outs(" + n +
       "_e : tensor<?x?xf32>) -> tensor<?x?xf32>");
  line(n + "_ss = linalg.generic {indexing_maps = [#r3, #r2], iterator_types "
       "= [\"parallel\", \"parallel\", \"reduction\"]} ins(" + x + " : " +
       t3(c.hiddenSize) + ") outs(" + n + "_z : tensor<?x?xf32>) {");
  line("^bb0(%v: " + E + ", %acc: f32):");
  std::string v = widen("%vf", "%v");
  line("  %sq = arith.mulf " + v + ", " + v + " : f32");
  line("  %sum = arith.addf %acc, %sq : f32");
  line("  linalg.yield %sum : f32");
  line("} -> tensor<?x?xf32>");
  line(n + "_o = tensor.empty(%b, %s) : " + t3(c.hiddenSize));
  line(n + " = linalg.generic {indexing_maps = [#r3, #r2, #h1, #r3], "
       "iterator_types = [\"parallel\", \"parallel\", \"parallel\"]} ins(" +
       x + ", " + n + "_ss, " + w + " : " + t3(c.hiddenSize) +
       ", tensor<?x?xf32>, tensor<" + h + "x" + E + ">) outs(" + n + "_o : " +
       t3(c.hiddenSize) + ") {");
  line("^bb0(%v: " + E + ", %ss: f32, %g: " + E + ", %unused: " + E + "):");
  line("  %mean = arith.divf %ss, %hidden : f32");
  line("  %m = arith.addf %mean, %eps : f32");
  line("  %inv = math.rsqrt %m : f32");
  v = widen("%vf", "%v");
  line("  %xn = arith.mulf " + v + ", %inv : f32");
  std::string xn = round("%xr", "%xn");
  line("  %y = arith.mulf " + xn + ", " + widen("%gf", "%g") + " : f32");
  line("  linalg.yield " + store("%yb", "%y") + " : " + E);
  line("} -> " + t3(c.hiddenSize));
  return n;
}

std::string ModelWriter::linear(Str x, int64_t in, Str w, int64_t out,
                                Str name) {
  std::string n = "%" + name, acc = narrow() ? n + "_acc" : n;
  line(n + "_e = tensor.empty(%b, %s) : " + t3(out, "f32"));
  line(n + "_z = linalg.fill ins(%zero : f32) outs(" + n + "_e : " +
       t3(out, "f32") + ") -> " + t3(out, "f32"));
  line(acc + " = linalg.generic {indexing_maps = [#xk, #wnk, #xn], "
       "iterator_types = [\"parallel\", \"parallel\", \"parallel\", "
       "\"reduction\"]} ins(" + x + ", " + w + " : " + t3(in) + ", " +
       w2(out, in) + ") outs(" + n + "_z : " + t3(out, "f32") + ") {");
  line("^bb0(%a: " + E + ", %wv: " + E + ", %acc: f32):");
  line("  %p = arith.mulf " + widen("%af", "%a") + ", " + widen("%wf", "%wv") +
       " : f32");
  line("  %sum = arith.addf %acc, %p : f32");
  line("  linalg.yield %sum : f32");
  line("} -> " + t3(out, "f32"));
  if (!narrow())
    return n;
  // Hugging Face's projections round their f32 sums to the model's type.
  line(n + "_t = tensor.empty(%b, %s) : " + t3(out));
  line(n + " = linalg.generic {indexing_maps = [#r3, #r3], iterator_types = "
       "[\"parallel\", \"parallel\", \"parallel\"]} ins(" + acc + " : " +
       t3(out, "f32") + ") outs(" + n + "_t : " + t3(out) + ") {");
  line("^bb0(%v: f32, %unused: " + E + "):");
  line("  linalg.yield " + store("%vb", "%v") + " : " + E);
  line("} -> " + t3(out));
  return n;
}

std::string ModelWriter::slice(Str x, int64_t width, int64_t offset,
                               int64_t size, Str name) {
  line("%" + name + " = tensor.extract_slice " + x + "[0, 0, " +
       std::to_string(offset) + "] [%b, %s, " + std::to_string(size) +
       "] [1, 1, 1] : " + t3(width) + " to " + t3(size));
  return "%" + name;
}

/// x * cos(p f) + rotate_half(x) * sin(p f), f = theta^(-2j/D), j = d mod
/// D/2, rotate_half(x) = concat(-x[D/2:], x[:D/2]); in heads-first layout
/// ([b, heads, s, D], what attention takes). The head dim is split in halves
/// [2, D/2] so that the other half is a second read of x at 1 - i: no
/// concatenated copy.
std::string ModelWriter::rotary(Str x, int64_t heads, Str name) {
  std::string n = "%" + name, h = std::to_string(heads),
              half = std::to_string(c.headDim / 2);
  std::string t5 = "tensor<?x?x" + h + "x2x" + half + "x" + E + ">",
              o5 = "tensor<?x" + h + "x?x2x" + half + "x" + E + ">";
  line(n + "_x = tensor.expand_shape " + x +
       " [[0], [1], [2], [3, 4]] output_shape [%b, %s, " + h + ", 2, " + half +
       "] : " + t4(heads, false) + " into " + t5);
  line(n + "_e = tensor.empty(%b, %s) : " + o5);
  line(n + "_y = linalg.generic {indexing_maps = [#x5, #x5r, #p5, #o5], "
       "iterator_types = [\"parallel\", \"parallel\", \"parallel\", "
       "\"parallel\", \"parallel\"]} ins(" + n + "_x, " + n +
       "_x, %positions : " + t5 + ", " + t5 + ", tensor<?x?xi32>) outs(" + n +
       "_e : " + o5 + ") {");
  line("^bb0(%v: " + E + ", %vr: " + E + ", %p: i32, %unused: " + E + "):");
  line("  %i = linalg.index 3 : index");
  line("  %j = linalg.index 4 : index");
  line("  %jj = arith.index_cast %j : index to i32");
  line("  %fj = arith.sitofp %jj : i32 to f32");
  line("  %lf = arith.mulf %fj, %rope : f32");
  line("  %freq = math.exp %lf : f32");
  line("  %fp = arith.sitofp %p : i32 to f32");
  line("  %angle = arith.mulf %fp, %freq : f32");
  line("  %cos = math.cos %angle : f32");
  line("  %sin = math.sin %angle : f32");
  std::string cosine = round("%cr", "%cos"), sine = round("%sr", "%sin");
  line("  %a0 = arith.mulf " + widen("%vf", "%v") + ", " + cosine + " : f32");
  line("  %r0 = arith.mulf " + widen("%vrf", "%vr") + ", " + sine + " : f32");
  std::string a = round("%a", "%a0"), r = round("%r", "%r0");
  line("  %first = arith.cmpi eq, %i, %c0 : index");
  line("  %plus = arith.addf " + a + ", " + r + " : f32");
  line("  %minus = arith.subf " + a + ", " + r + " : f32");
  line("  %y = arith.select %first, %minus, %plus : f32");
  line("  linalg.yield " + store("%yb", "%y") + " : " + E);
  line("} -> " + o5);
  line(n + " = tensor.collapse_shape " + n + "_y [[0], [1], [2], [3, 4]] : " +
       o5 + " into " + t4(heads, true));
  return n;
}

std::string ModelWriter::block(Str x, int64_t layer) {
  std::string l = "l" + std::to_string(layer), p = "%" + l + "_";
  int64_t q = c.numHeads * c.headDim, kv = c.numKvHeads * c.headDim;
  std::string xn = rmsnorm(x, p + "input_layernorm", l + "_norm");
  // One projection for q, k and v (their weights packed row after row).
  std::string qkv = linear(xn, c.hiddenSize, p + "qkv_proj", q + 2 * kv,
                           l + "_qkv");
  std::string qp = slice(qkv, q + 2 * kv, 0, q, l + "_q");
  std::string kp = slice(qkv, q + 2 * kv, q, kv, l + "_k");
  std::string vp = slice(qkv, q + 2 * kv, q + kv, kv, l + "_v");
  auto split = [&](Str v, int64_t heads, Str name) {
    line("%" + name + " = tensor.expand_shape " + v +
         " [[0], [1], [2, 3]] output_shape [%b, %s, " + std::to_string(heads) +
         ", " + std::to_string(c.headDim) + "] : " +
         t3(heads * c.headDim) + " into " + t4(heads, false));
    return "%" + name;
  };
  auto transpose = [&](Str v, int64_t heads, bool toHeadsFirst, Str name) {
    line("%" + name + "_e = tensor.empty(%b, %s) : " +
         t4(heads, toHeadsFirst));
    line("%" + name + " = linalg.transpose ins(" + v + " : " +
         t4(heads, !toHeadsFirst) + ") outs(%" + name + "_e : " +
         t4(heads, toHeadsFirst) + ") permutation = [0, 2, 1, 3]");
    return "%" + name;
  };
  std::string qt = rotary(split(qp, c.numHeads, l + "_q4"), c.numHeads,
                          l + "_qr");
  std::string kt = rotary(split(kp, c.numKvHeads, l + "_k4"), c.numKvHeads,
                          l + "_kr");
  std::string v4 = split(vp, c.numKvHeads, l + "_v4");
  std::string vt = transpose(v4, c.numKvHeads, true, l + "_vt");
  line(p + "att = kvc.attention " + qt + ", " + kt + ", " + vt +
       " {causal} : " + t4(c.numHeads, true) + ", " + t4(c.numKvHeads, true));
  std::string ot = transpose(p + "att", c.numHeads, false, l + "_ot");
  line(p + "o = tensor.collapse_shape " + ot + " [[0], [1], [2, 3]] : " +
       t4(c.numHeads, false) + " into " + t3(q));
  std::string proj = linear(p + "o", q, p + "o_proj", c.hiddenSize, l + "_proj");
  line(p + "h = arith.addf " + x + ", " + proj + " : " + t3(c.hiddenSize));
  std::string hn = rmsnorm(p + "h", p + "post_attention_layernorm",
                           l + "_mlpnorm");
  int64_t i = c.intermediateSize;
  std::string gateUp = linear(hn, c.hiddenSize, p + "gate_up_proj", 2 * i,
                              l + "_gate_up");
  std::string gate = slice(gateUp, 2 * i, 0, i, l + "_gate");
  std::string up = slice(gateUp, 2 * i, i, i, l + "_up");
  line(p + "act_e = tensor.empty(%b, %s) : " + t3(i));
  line(p + "act = linalg.generic {indexing_maps = [#r3, #r3, #r3], "
       "iterator_types = [\"parallel\", \"parallel\", \"parallel\"]} ins(" +
       gate + ", " + up + " : " + t3(i) + ", " + t3(i) + ") outs(" + p +
       "act_e : " + t3(i) + ") {");
  line("^bb0(%g: " + E + ", %u: " + E + ", %unused: " + E + "):");
  std::string g = widen("%gf", "%g");
  line("  %ng = arith.negf " + g + " : f32");
  line("  %e = math.exp %ng : f32");
  line("  %den = arith.addf %one, %e : f32");
  line("  %silu = arith.divf " + g + ", %den : f32");
  line("  %y = arith.mulf " + round("%sr", "%silu") + ", " + widen("%uf", "%u") +
       " : f32");
  line("  linalg.yield " + store("%yb", "%y") + " : " + E);
  line("} -> " + t3(i));
  std::string down = linear(p + "act", i, p + "down_proj", c.hiddenSize,
                            l + "_down");
  line(p + "out = arith.addf " + p + "h, " + down + " : " + t3(c.hiddenSize));
  return p + "out";
}

std::string ModelWriter::build() {
  int64_t h = c.hiddenSize, q = c.numHeads * c.headDim,
          kv = c.numKvHeads * c.headDim, i = c.intermediateSize,
          v = c.vocabSize;
  std::string args = "%tokens: tensor<?x?xi32> {kvc.rows}, %positions: "
                     "tensor<?x?xi32> {kvc.positions}";
  auto weight = [&](Str name, Str type, Str hfName) {
    args += ",\n    %" + name + ": " + type + " {kvc.weight = \"" + hfName +
            "\"}";
  };
  // A weight packed from checkpoint tensors stacked along the rows: named
  // after them, with their row counts (kvc-run packs them at load).
  auto packed = [&](Str name, Str hfName,
                    llvm::ArrayRef<std::pair<std::string, int64_t>> parts) {
    int64_t rows = 0;
    std::string names, counts;
    for (auto [part, n] : parts) {
      names += (names.empty() ? "\"" : ", \"") + part + "\"";
      counts += (counts.empty() ? "" : ", ") + std::to_string(n);
      rows += n;
    }
    args += ",\n    %" + name + ": " + w2(rows, h) + " {kvc.part_rows = " +
            "array<i64: " + counts + ">, kvc.parts = [" + names +
            "], kvc.weight = \"" + hfName + "\"}";
  };
  weight("embed", w2(v, h), "model.embed_tokens.weight");
  for (int64_t l = 0; l < c.numLayers; ++l) {
    std::string p = "l" + std::to_string(l) + "_",
                hf = "model.layers." + std::to_string(l) + ".";
    weight(p + "input_layernorm", "tensor<" + std::to_string(h) + "x" + E + ">",
           hf + "input_layernorm.weight");
    packed(p + "qkv_proj", hf + "self_attn.qkv_proj.weight",
           {{hf + "self_attn.q_proj.weight", q},
            {hf + "self_attn.k_proj.weight", kv},
            {hf + "self_attn.v_proj.weight", kv}});
    weight(p + "o_proj", w2(h, q), hf + "self_attn.o_proj.weight");
    weight(p + "post_attention_layernorm",
           "tensor<" + std::to_string(h) + "x" + E + ">",
           hf + "post_attention_layernorm.weight");
    packed(p + "gate_up_proj", hf + "mlp.gate_up_proj.weight",
           {{hf + "mlp.gate_proj.weight", i}, {hf + "mlp.up_proj.weight", i}});
    weight(p + "down_proj", w2(h, i), hf + "mlp.down_proj.weight");
  }
  weight("norm", "tensor<" + std::to_string(h) + "x" + E + ">",
         "model.norm.weight");
  if (!c.tieWordEmbeddings)
    weight("lm_head", w2(v, h), "lm_head.weight");

  os << "// LlamaForCausalLM in full-sequence form, written by kvc-compile.\n"
     << "#r2 = affine_map<(b, s, h) -> (b, s)>\n"
     << "#r3 = affine_map<(b, s, h) -> (b, s, h)>\n"
     << "#h1 = affine_map<(b, s, h) -> (h)>\n"
     << "#xk = affine_map<(b, s, n, k) -> (b, s, k)>\n"
     << "#wnk = affine_map<(b, s, n, k) -> (n, k)>\n"
     << "#xn = affine_map<(b, s, n, k) -> (b, s, n)>\n"
     << "#x5 = affine_map<(b, s, h, i, j) -> (b, s, h, i, j)>\n"
     << "#x5r = affine_map<(b, s, h, i, j) -> (b, s, h, 1 - i, j)>\n"
     << "#p5 = affine_map<(b, s, h, i, j) -> (b, s)>\n"
     << "#o5 = affine_map<(b, s, h, i, j) -> (b, h, s, i, j)>\n"
     << "func.func @model(" << args << ") -> " << t3(v) << " {\n";
  line("%c0 = arith.constant 0 : index");
  line("%c1 = arith.constant 1 : index");
  line("%b = tensor.dim %tokens, %c0 : tensor<?x?xi32>");
  line("%s = tensor.dim %tokens, %c1 : tensor<?x?xi32>");
  line("%zero = arith.constant 0.0 : f32");
  line("%one = arith.constant 1.0 : f32");
  line("%hidden = arith.constant " + llvm::formatv("{0:e}", double(h)).str() +
       " : f32");
  line("%eps = arith.constant " + llvm::formatv("{0:e}", c.rmsNormEps).str() +
       " : f32");
  line("%rope = arith.constant " +
       llvm::formatv("{0:e}", -2.0 * std::log(c.ropeTheta) / c.headDim).str() +
       " : f32");
  // Row t of the embedding is embed[tokens[b, t]].
  line("%x_e = tensor.empty(%b, %s) : " + t3(h));
  line("%x = linalg.generic {indexing_maps = [#r2, #r3], iterator_types = "
       "[\"parallel\", \"parallel\", \"parallel\"]} ins(%tokens : "
       "tensor<?x?xi32>) outs(%x_e : " + t3(h) + ") {");
  line("^bb0(%token: i32, %unused: " + E + "):");
  line("  %row = arith.index_cast %token : i32 to index");
  line("  %col = linalg.index 2 : index");
  line("  %e = tensor.extract %embed[%row, %col] : " + w2(v, h));
  line("  linalg.yield %e : " + E);
  line("} -> " + t3(h));
  std::string x = "%x";
  for (int64_t l = 0; l < c.numLayers; ++l)
    x = block(x, l);
  std::string xn = rmsnorm(x, "%norm", "final_norm");
  std::string logits = linear(xn, h, c.tieWordEmbeddings ? "%embed" : "%lm_head",
                              v, "logits");
  line("return " + logits + " : " + t3(v));
  os << "}\n";
  return text;
}

} // namespace

std::string mlir::kvc::buildLlamaModel(const LlamaConfig &config) {
  return ModelWriter(config).build();
}
