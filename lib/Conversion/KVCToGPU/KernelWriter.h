//===- KernelWriter.h - writing kvc's GPU kernels as text ------*- C++ -*-===//
//
// Internal to the kernel generators: a writer of gpu-dialect text with fresh
// SSA names and interned constants, the online-softmax merge they share, and
// the generators each file defines.
//
//===----------------------------------------------------------------------===//
#ifndef KVC_LIB_CONVERSION_KVCTOGPU_KERNELWRITER_H
#define KVC_LIB_CONVERSION_KVCTOGPU_KERNELWRITER_H

#include "kvc/Conversion/KVCToGPU/Kernels.h"

#include "llvm/ADT/Twine.h"
#include "llvm/Support/raw_ostream.h"

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace mlir::kvc::kernels::detail {
using llvm::Twine;

constexpr int64_t kWarp = 32;
constexpr int64_t kWarps = kBlockSize / kWarp;
/// Key rows each thread loads before it computes on any of them.
constexpr int64_t kUnroll = 4;

/// Writes one kernel's body: fresh SSA names and interned constants.
class Writer {
public:
  explicit Writer(ElementType type) : type(type) {}

  /// `%vN = rhs`; returns `%vN`.
  std::string let(const Twine &rhs) {
    std::string name = "%v" + std::to_string(next++);
    os << "    " << name << " = " << rhs << "\n";
    return name;
  }
  /// `%vN:2 = rhs` (gpu.shuffle: value and validity); returns `%vN`.
  std::string let2(const Twine &rhs) {
    std::string name = "%v" + std::to_string(next++);
    os << "    " << name << ":2 = " << rhs << "\n";
    return name;
  }
  void line(const Twine &text) { os << "    " << text << "\n"; }
  /// Text written as it is (a region built with takeBody()).
  void raw(StringRef text) { os << text; }
  /// A fresh SSA name that nothing has defined yet.
  std::string fresh() { return "%v" + std::to_string(next++); }
  std::string index(int64_t value) {
    return constant(Twine(value) + " : index");
  }
  std::string i32(int64_t value) { return constant(Twine(value) + " : i32"); }
  std::string i64(int64_t value) { return constant(Twine(value) + " : i64"); }
  std::string f32(const Twine &value) { return constant(value + " : f32"); }

  // Index arithmetic.
  std::string add(StringRef a, StringRef b) { return bin("addi", a, b, "index"); }
  std::string mul(StringRef a, StringRef b) { return bin("muli", a, b, "index"); }
  std::string div(StringRef a, StringRef b) { return bin("divui", a, b, "index"); }
  std::string rem(StringRef a, StringRef b) { return bin("remui", a, b, "index"); }
  std::string min(StringRef a, StringRef b) { return bin("minsi", a, b, "index"); }
  std::string cmp(StringRef pred, StringRef a, StringRef b,
                  StringRef type = "index") {
    return let("arith.cmpi " + pred + ", " + a + ", " + b + " : " + type);
  }
  std::string loadIndex(StringRef memref, StringRef at) {
    std::string v = let("memref.load " + memref + "[" + at + "] : memref<?xi32>");
    return let("arith.index_cast " + v + " : i32 to index");
  }
  // f32 arithmetic.
  std::string fbin(StringRef op, StringRef a, StringRef b,
                   StringRef t = "f32") {
    return bin(op, a, b, t);
  }
  std::string exp2(StringRef x, StringRef t = "f32") {
    return let("math.exp2 " + x + " : " + t);
  }
  std::string splat(StringRef x) {
    return let("vector.broadcast " + x + " : f32 to vector<8xf32>");
  }
  std::string select(StringRef c, StringRef a, StringRef b, StringRef t) {
    return let("arith.select " + c + ", " + a + ", " + b + " : " + t);
  }
  /// Eight elements of `memref<?xT>` at `at`, as f32.
  std::string loadRow(StringRef memref, StringRef at) {
    std::string t = getName(type).str();
    std::string v = let("vector.load " + memref + "[" + at +
                        "] {alignment = 16} : memref<?x" + t +
                        ">, vector<8x" + t + ">");
    return widen(v);
  }
  std::string widen(StringRef v) {
    if (type == ElementType::F32)
      return v.str();
    return let("arith.extf " + v + " : vector<8x" + getName(type) +
               "> to vector<8xf32>");
  }
  /// Loads without widening (the widening comes after all loads issued).
  std::string loadRaw(StringRef memref, StringRef at) {
    std::string t = getName(type).str();
    return let("vector.load " + memref + "[" + at +
               "] {alignment = 16} : memref<?x" + t + ">, vector<8x" + t +
               ">");
  }
  void storeRow(StringRef value, StringRef memref, StringRef at) {
    std::string t = getName(type).str(), v = value.str();
    if (type != ElementType::F32)
      v = let("arith.truncf " + v + " : vector<8xf32> to vector<8x" + t + ">");
    line("vector.store " + v + ", " + memref + "[" + at +
         "] {alignment = 16} : memref<?x" + t + ">, vector<8x" + t + ">");
  }
  /// `x` summed over the `lanes` lanes of an aligned group of a warp.
  std::string sumOverLanes(StringRef x, int64_t lanes) {
    std::string s = x.str();
    for (int64_t offset = 1; offset < lanes; offset *= 2) {
      std::string shuffled =
          let2("gpu.shuffle xor " + s + ", " + i32(offset) + ", " + i32(kWarp) +
              " : f32");
      s = fbin("addf", shuffled + "#0", s);
    }
    return s;
  }
  /// A whole-warp xor shuffle of `x` (f32 or vector<8xf32>).
  std::string shuffle(StringRef x, int64_t offset, bool isVector) {
    if (!isVector)
      return let2("gpu.shuffle xor " + x + ", " + i32(offset) + ", " +
                  i32(kWarp) + " : f32") +
             "#0";
    std::string elements;
    for (int64_t e = 0; e < kVectorWidth; ++e) {
      std::string el = let("vector.extract " + x + "[" + Twine(e) +
                           "] : f32 from vector<8xf32>");
      std::string sh = let2("gpu.shuffle xor " + el + ", " + i32(offset) +
                           ", " + i32(kWarp) + " : f32");
      elements += (e ? ", " : "") + sh + "#0";
    }
    return let("vector.from_elements " + elements + " : vector<8xf32>");
  }

  /// The kernel: constants first (they dominate every nested region), then
  /// `text`, by default what was written since the last takeBody().
  std::string finish(StringRef header, std::optional<std::string> text = {}) {
    return header.str() + constants + (text ? *text : body) +
           "    gpu.return\n  }\n";
  }
  std::string takeBody() {
    std::string b = body;
    body.clear();
    return b;
  }

  ElementType type;

private:
  std::string bin(StringRef op, StringRef a, StringRef b, StringRef t) {
    return let("arith." + op + " " + a + ", " + b + " : " + t);
  }
  std::string constant(const Twine &value) {
    std::string key = value.str();
    auto it = interned.find(key);
    if (it != interned.end())
      return it->second;
    std::string name = "%c" + std::to_string(interned.size());
    constants += "    " + name + " = arith.constant " + key + "\n";
    interned[key] = name;
    return name;
  }

  std::string body, constants;
  llvm::raw_string_ostream os{body};
  std::map<std::string, std::string> interned;
  unsigned next = 0;
};

/// After a workgroup attribution's type: 16-byte vector accesses, cp.async
/// and ldmatrix need it (ptxas otherwise aligns to the element type only).
constexpr const char *kAligned = " {llvm.align = 16 : i64}";

inline std::string memrefOf(ElementType type) {
  return ("memref<?x" + getName(type) + ">").str();
}

/// Online-softmax state of one query row in one thread.
struct RowState {
  std::string max, sum, acc;
};

/// Merges `other` into `state` (both in the log2 domain).
inline RowState merge(Writer &w, const RowState &state, const RowState &other) {
  std::string m = w.fbin("maximumf", state.max, other.max);
  std::string a = w.exp2(w.fbin("subf", state.max, m));
  std::string b = w.exp2(w.fbin("subf", other.max, m));
  std::string sum = w.fbin("addf", w.fbin("mulf", state.sum, a),
                           w.fbin("mulf", other.sum, b));
  std::string acc = w.fbin("addf",
                           w.fbin("mulf", state.acc, w.splat(a), "vector<8xf32>"),
                           w.fbin("mulf", other.acc, w.splat(b), "vector<8xf32>"),
                           "vector<8xf32>");
  return {m, sum, acc};
}

/// Splits whose partial results a thread loads at once before it merges
/// them as a tree.
constexpr int64_t kMergeLoads = 8;

/// The merge of the partial results of sources first, first + stride, ...
/// below `count` (an scf.for that loads kMergeLoads of them per step with
/// `load(source)`, then merges them as a tree).
template <typename Load>
RowState mergeSources(Writer &w, StringRef first, StringRef stride,
                      StringRef count, Load load) {
  const std::string vf = "vector<8xf32>";
  std::string minusInf = w.f32("-1.0e+30"), zero = w.f32("0.0");
  std::string zeros = w.let("arith.constant dense<0.0> : " + vf);
  std::string step = w.mul(stride, w.index(kMergeLoads));
  std::string results = w.fresh(), source = w.fresh();
  RowState state = {w.fresh(), w.fresh(), w.fresh()};
  std::string before = w.takeBody();
  std::vector<RowState> loaded;
  for (int64_t u = 0; u < kMergeLoads; ++u) {
    std::string s = u ? w.add(source, w.mul(w.index(u), stride)) : source;
    std::string valid = w.cmp("ult", s, count);
    RowState o = load(w.select(valid, s, first, "index"));
    loaded.push_back({w.select(valid, o.max, minusInf, "f32"),
                      w.select(valid, o.sum, zero, "f32"),
                      w.select(valid, o.acc, zeros, vf)});
  }
  while (loaded.size() > 1) {
    std::vector<RowState> level;
    for (size_t i = 0; i + 1 < loaded.size(); i += 2)
      level.push_back(merge(w, loaded[i], loaded[i + 1]));
    if (loaded.size() % 2)
      level.push_back(loaded.back());
    loaded = level;
  }
  RowState next = merge(w, state, loaded.front());
  w.line("scf.yield " + next.max + ", " + next.sum + ", " + next.acc +
         " : f32, f32, " + vf);
  w.raw(before + "    " + results + ":3 = scf.for " + source + " = " +
        first.str() + " to " + count.str() + " step " + step + " iter_args(" +
        state.max + " = " + minusInf + ", " + state.sum + " = " + zero +
        ", " + state.acc + " = " + zeros + ") -> (f32, f32, " + vf + ") {\n" +
        w.takeBody() + "    }\n");
  return {results + "#0", results + "#1", results + "#2"};
}

/// The generators (CacheKernels.cpp, DecodeKernels.cpp, DecodeMmaKernel.cpp,
/// PrefillKernel.cpp, GemvKernel.cpp).
std::string appendKernel(const KernelKey &key, bool rotary);
std::string setLengthsKernel();
std::string argmaxKernel(ElementType type);
std::string decodeSplitKernel(const KernelKey &key, bool single);
std::string decodeCombineKernel(const KernelKey &key);
std::string decodeMmaKernel(const KernelKey &key);
std::string prefillKernel(const KernelKey &key);
std::string gemvKernel(const GemvKey &key);
std::string gemm16Kernel(const GemvKey &key);

} // namespace mlir::kvc::kernels::detail

#endif // KVC_LIB_CONVERSION_KVCTOGPU_KERNELWRITER_H
