//===- Kernels.cpp - the GPU kernels kvc ops lower to ----------------------===//
//
// Each kernel is written out as gpu-dialect text, specialized (head dim,
// query group, element type) and unrolled where registers must hold state per
// query row, then parsed. Text keeps the kernels readable next to what they
// lower to; the parser checks them like any other input.
//
//===----------------------------------------------------------------------===//
#include "kvc/Conversion/KVCToGPU/Kernels.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Parser/Parser.h"
#include "llvm/ADT/Twine.h"
#include "llvm/Support/raw_ostream.h"

#include <array>
#include <map>
#include <optional>
#include <vector>

using namespace mlir;
using namespace mlir::kvc::kernels;
using llvm::Twine;

StringRef mlir::kvc::kernels::getName(ElementType type) {
  switch (type) {
  case ElementType::F16:
    return "f16";
  case ElementType::BF16:
    return "bf16";
  case ElementType::F32:
    return "f32";
  }
  llvm_unreachable("unknown element type");
}

int64_t mlir::kvc::kernels::getQueriesPerBlock(int64_t group) {
  return std::min<int64_t>(group, 8);
}

std::string mlir::kvc::kernels::getAppendName(const KernelKey &key) {
  return ("kvc_append_d" + Twine(key.headDim) + "_" + getName(key.elementType))
      .str();
}

std::string mlir::kvc::kernels::getAppendRotaryName(const KernelKey &key) {
  return ("kvc_append_rope_d" + Twine(key.headDim) + "_" +
          getName(key.elementType))
      .str();
}

std::string mlir::kvc::kernels::getSetLengthsName() { return "kvc_set_lengths"; }

std::string mlir::kvc::kernels::getDecodeSplitName(const KernelKey &key) {
  return ("kvc_decode_split_d" + Twine(key.headDim) + "_g" + Twine(key.group) +
          "_" + getName(key.elementType))
      .str();
}

std::string mlir::kvc::kernels::getPrefillName(const KernelKey &key) {
  return ("kvc_prefill_d" + Twine(key.headDim) + "_g" + Twine(key.group) +
          "_" + getName(key.elementType))
      .str();
}

std::string mlir::kvc::kernels::getDecodeCombineName(const KernelKey &key) {
  return ("kvc_decode_combine_d" + Twine(key.headDim) + "_" +
          getName(key.elementType))
      .str();
}

namespace {

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
  std::string index(int64_t value) {
    return constant(Twine(value) + " : index");
  }
  std::string i32(int64_t value) { return constant(Twine(value) + " : i32"); }
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

std::string memrefOf(ElementType type) {
  return ("memref<?x" + getName(type) + ">").str();
}

/// `rotary`: the keys are rotated to their positions on the way (pairs i and
/// i + D/2; threads of the first half of a row write both).
std::string appendKernel(const KernelKey &key, bool rotary) {
  Writer w(key.elementType);
  std::string m = memrefOf(key.elementType);
  int64_t lanes = key.headDim / kVectorWidth;
  std::string header =
      "  gpu.func @" + (rotary ? getAppendRotaryName(key) : getAppendName(key)) +
      "(%key: " + m + ", %value: " + m +
      ", %positions: memref<?xi32>, %lengths: memref<?xi32>, %keys: " + m +
      ", %values: " + m +
      ", %status: memref<?xi32>, %heads: index, %rows: index, %capacity: "
      "index" +
      (rotary ? std::string(", %exponent: f32") : std::string()) +
      ") kernel attributes {known_block_size = array<i32: 128, 1, 1>} {\n";
  std::string bx = w.let("gpu.block_id x"), b = w.let("gpu.block_id y"),
              tx = w.let("gpu.thread_id x");
  std::string gid = w.add(w.mul(bx, w.index(kBlockSize)), tx);
  std::string rowLanes = w.mul(w.index(lanes), "%rows");
  std::string perSequence = w.mul("%heads", rowLanes);
  std::string inRange = w.cmp("ult", gid, perSequence);
  w.line("scf.if " + inRange + " {");
  std::string h = w.div(gid, rowLanes), r = w.rem(gid, rowLanes);
  std::string t = w.div(r, w.index(lanes)), part = w.rem(r, w.index(lanes));
  std::string pos = w.loadIndex("%positions", b), len = w.loadIndex("%lengths", b);
  std::string ok = w.let("arith.andi " + w.cmp("sge", pos, w.index(0)) + ", " +
                         w.cmp("sle", pos, len) + " : i1");
  ok = w.let("arith.andi " + ok + ", " +
             w.cmp("sle", w.add(pos, "%rows"), "%capacity") + " : i1");
  w.line("scf.if " + ok + " {");
  std::string bh = w.add(w.mul(b, "%heads"), h);
  std::string offset = w.mul(part, w.index(kVectorWidth));
  std::string src = w.add(
      w.mul(w.add(w.mul(bh, "%rows"), t), w.index(key.headDim)), offset);
  std::string dst = w.add(
      w.mul(w.add(w.mul(bh, "%capacity"), w.add(pos, t)), w.index(key.headDim)),
      offset);
  std::string t8 = ("vector<8x" + getName(key.elementType) + ">").str();
  std::string v = w.loadRaw("%value", src);
  w.line("vector.store " + v + ", %values[" + dst + "] {alignment = 16} : " +
         m + ", " + t8);
  if (!rotary) {
    std::string k = w.loadRaw("%key", src);
    w.line("vector.store " + k + ", %keys[" + dst + "] {alignment = 16} : " +
           m + ", " + t8);
  } else {
    const std::string vf = "vector<8xf32>";
    std::string half = w.index(key.headDim / 2);
    w.line("scf.if " + w.cmp("ult", part, w.index(lanes / 2)) + " {");
    std::string lo = w.loadRow("%key", src);
    std::string hi = w.loadRow("%key", w.add(src, half));
    // f = theta^(-2i/D) = exp(i * exponent) for the 8 indices i here.
    std::string first = w.let(
        "arith.sitofp " +
        w.let("arith.index_cast " + offset + " : index to i32") +
        " : i32 to f32");
    std::string iota = w.let("arith.constant dense<[0.0, 1.0, 2.0, 3.0, 4.0, "
                             "5.0, 6.0, 7.0]> : " + vf);
    std::string index = w.fbin("addf", iota, w.splat(first), vf);
    std::string freq = w.let("math.exp " +
                             w.fbin("mulf", index, w.splat("%exponent"), vf) +
                             " : " + vf);
    std::string p = w.let(
        "arith.sitofp " +
        w.let("arith.index_cast " + w.add(pos, t) + " : index to i32") +
        " : i32 to f32");
    std::string angle = w.fbin("mulf", freq, w.splat(p), vf);
    std::string c = w.let("math.cos " + angle + " : " + vf);
    std::string sn = w.let("math.sin " + angle + " : " + vf);
    std::string outLo = w.fbin("subf", w.fbin("mulf", lo, c, vf),
                               w.fbin("mulf", hi, sn, vf), vf);
    std::string outHi = w.fbin("addf", w.fbin("mulf", hi, c, vf),
                               w.fbin("mulf", lo, sn, vf), vf);
    w.storeRow(outLo, "%keys", dst);
    w.storeRow(outHi, "%keys", w.add(dst, half));
    w.line("}");
  }
  w.line("} else {");
  w.line("memref.store " + w.i32(1) + ", %status[" + w.index(0) +
         "] : memref<?xi32>");
  w.line("}");
  w.line("}");
  return w.finish(header);
}

std::string setLengthsKernel() {
  Writer w(ElementType::F32);
  std::string header =
      "  gpu.func @" + getSetLengthsName() +
      "(%source: memref<?xi32>, %lengths: memref<?xi32>, %status: "
      "memref<?xi32>, %add: index, %batch: index) kernel attributes "
      "{known_block_size = array<i32: 128, 1, 1>} {\n";
  std::string gid = w.add(w.mul(w.let("gpu.block_id x"), w.index(kBlockSize)),
                          w.let("gpu.thread_id x"));
  w.line("scf.if " + w.cmp("ult", gid, "%batch") + " {");
  std::string source = w.loadIndex("%source", gid);
  std::string length = w.loadIndex("%lengths", gid);
  std::string truncate = w.cmp("eq", "%add", w.index(0));
  std::string ok = w.let("arith.andi " + w.cmp("sge", source, w.index(0)) +
                         ", " + w.cmp("sle", source, length) + " : i1");
  std::string bad = w.let("arith.andi " + truncate + ", " +
                          w.let("arith.xori " + ok + ", " +
                                w.let("arith.constant true") + " : i1") +
                          " : i1");
  w.line("scf.if " + bad + " {");
  w.line("memref.store " + w.i32(2) + ", %status[" + w.index(0) +
         "] : memref<?xi32>");
  w.line("} else {");
  std::string updated = w.let("arith.index_cast " + w.add(source, "%add") +
                              " : index to i32");
  w.line("memref.store " + updated + ", %lengths[" + gid + "] : memref<?xi32>");
  w.line("}");
  w.line("}");
  return w.finish(header);
}

/// Online-softmax state of one query row in one thread.
struct RowState {
  std::string max, sum, acc;
};

/// Merges `other` into `state` (both in the log2 domain).
RowState merge(Writer &w, const RowState &state, const RowState &other) {
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

std::string decodeSplitKernel(const KernelKey &key) {
  Writer w(key.elementType);
  std::string m = memrefOf(key.elementType);
  const int64_t d = key.headDim, g = key.group, q = getQueriesPerBlock(g);
  const int64_t lanes = d / kVectorWidth, slots = kWarp / lanes;
  const std::string vf = "vector<8xf32>";
  std::string header =
      "  gpu.func @" + getDecodeSplitName(key) + "(%q: " + m + ", %k: " + m +
      ", %v: " + m +
      ", %lengths: memref<?xi32>, %positions: memref<?xi32>, %po: "
      "memref<?xf32>, %pml: memref<?xf32>, %rows: index, %capacity: index, "
      "%split_len: index, %num_splits: index, %scale: f32) workgroup(%sml: "
      "memref<" +
      std::to_string(kWarps * q * 2) +
      "xf32, #gpu.address_space<workgroup>>, %sacc: memref<" +
      std::to_string(kWarps * q * d) +
      "xf32, #gpu.address_space<workgroup>>) kernel attributes "
      "{known_block_size = array<i32: 128, 1, 1>} {\n";
  std::string split = w.let("gpu.block_id x"), yid = w.let("gpu.block_id y"),
              b = w.let("gpu.block_id z"), ny = w.let("gpu.grid_dim y"),
              tid = w.let("gpu.thread_id x");
  std::string chunks = w.div(w.mul(w.index(g), "%rows"), w.index(q));
  std::string hk = w.div(yid, chunks), chunk = w.rem(yid, chunks);
  std::string kvHeads = w.div(ny, chunks);
  std::string qHeads = w.mul(kvHeads, w.index(g));
  std::string q0 = w.mul(chunk, w.index(q));
  std::string t = w.div(q0, w.index(g)), g0 = w.rem(q0, w.index(g));
  std::string lane = w.rem(tid, w.index(kWarp)), warp = w.div(tid, w.index(kWarp));
  std::string slot = w.div(lane, w.index(lanes)),
              part = w.rem(lane, w.index(lanes));
  std::string offset = w.mul(part, w.index(kVectorWidth));
  std::string pos = w.loadIndex("%positions", b), len = w.loadIndex("%lengths", b);
  std::string bound = w.min(w.add(w.add(pos, t), w.index(1)), len);
  std::string start = w.mul(split, "%split_len");
  std::string end = w.min(w.add(start, "%split_len"), bound);
  // Scores in the log2 domain: exp2(s * log2(e)) = exp(s).
  std::string scale = w.splat(w.fbin("mulf", "%scale", w.f32("1.44269504")));
  std::string headBase = w.add(w.mul(hk, w.index(g)), g0);
  std::vector<std::string> queries;
  for (int64_t i = 0; i < q; ++i) {
    std::string hq = w.add(headBase, w.index(i));
    std::string row = w.add(w.mul(w.add(w.mul(b, qHeads), hq), "%rows"), t);
    std::string at = w.add(w.mul(row, w.index(d)), offset);
    queries.push_back(w.fbin("mulf", w.loadRow("%q", at), scale, vf));
  }
  std::string kvBase = w.add(
      w.mul(w.mul(w.add(w.mul(b, kvHeads), hk), "%capacity"), w.index(d)),
      offset);
  std::string first = w.add(start, w.mul(warp, w.index(slots)));
  std::string stride = w.index(kWarps * slots);
  std::string step = w.index(kWarps * slots * kUnroll);
  std::string minusInf = w.f32("-1.0e+30"), zero = w.f32("0.0");
  std::string zeros = w.let("arith.constant dense<0.0> : " + vf);

  // The loop over this split's keys: kUnroll rows per thread per step.
  std::string iterArgs, iterTypes;
  std::vector<RowState> states;
  for (int64_t i = 0; i < q; ++i) {
    std::string n = std::to_string(i);
    iterArgs += (i ? ", " : "") + ("%m" + n + " = " + minusInf + ", %l" + n +
                                   " = " + zero + ", %a" + n + " = " + zeros);
    iterTypes += (i ? ", " : "") + ("f32, f32, " + vf);
    states.push_back({"%m" + n, "%l" + n, "%a" + n});
  }
  // Emitted by hand: the loop's results are named `%loop#N`.
  std::string before = w.takeBody();
  std::string loopHeader = "    %loop:" + std::to_string(q * 3) +
                           " = scf.for %j0 = " + first + " to " + end +
                           " step " + step + " iter_args(" + iterArgs +
                           ") -> (" + iterTypes + ") {\n";
  std::vector<std::string> valid, keys, values;
  for (int64_t u = 0; u < kUnroll; ++u) {
    std::string j = w.add(w.add("%j0", w.mul(w.index(u), stride)), slot);
    valid.push_back(w.cmp("slt", j, end));
    std::string row = w.select(valid.back(), j, start, "index");
    std::string at = w.add(kvBase, w.mul(row, w.index(d)));
    keys.push_back(w.loadRaw("%k", at));
    values.push_back(w.loadRaw("%v", at));
  }
  // Online softmax a block of kUnroll keys at a time: one rescale of the
  // running state per block, not per key.
  std::vector<std::string> kf, vfs;
  for (int64_t u = 0; u < kUnroll; ++u) {
    kf.push_back(w.widen(keys[u]));
    vfs.push_back(w.widen(values[u]));
  }
  for (RowState &s : states) {
    size_t i = &s - states.data();
    std::vector<std::string> scores;
    std::string mNew = s.max;
    for (int64_t u = 0; u < kUnroll; ++u) {
      std::string dot = w.let("vector.reduction <add>, " +
                              w.fbin("mulf", queries[i], kf[u], vf) +
                              " : vector<8xf32> into f32");
      scores.push_back(w.sumOverLanes(dot, lanes));
      mNew = w.select(valid[u], w.fbin("maximumf", mNew, scores[u]), mNew,
                      "f32");
    }
    std::string alpha = w.exp2(w.fbin("subf", s.max, mNew));
    std::string sum = w.fbin("mulf", s.sum, alpha);
    std::string acc = w.fbin("mulf", s.acc, w.splat(alpha), vf);
    for (int64_t u = 0; u < kUnroll; ++u) {
      std::string p = w.select(
          valid[u], w.exp2(w.fbin("subf", scores[u], mNew)), zero, "f32");
      sum = w.fbin("addf", sum, p);
      acc = w.let("math.fma " + vfs[u] + ", " + w.splat(p) + ", " + acc +
                  " : " + vf);
    }
    s = {mNew, sum, acc};
  }
  std::string yields, yieldTypes;
  for (size_t i = 0; i < states.size(); ++i) {
    yields += (i ? ", " : "") + states[i].max + ", " + states[i].sum + ", " +
              states[i].acc;
    yieldTypes += (i ? ", " : "") + ("f32, f32, " + vf);
  }
  w.line("scf.yield " + yields + " : " + yieldTypes);
  std::string loopBody = w.takeBody();
  // After the loop: merge the slots of each warp, then the warps.
  for (int64_t i = 0; i < q; ++i) {
    RowState s = {"%loop#" + std::to_string(3 * i),
                  "%loop#" + std::to_string(3 * i + 1),
                  "%loop#" + std::to_string(3 * i + 2)};
    for (int64_t off = lanes; off < kWarp; off *= 2)
      s = merge(w, s,
                {w.shuffle(s.max, off, false), w.shuffle(s.sum, off, false),
                 w.shuffle(s.acc, off, true)});
    states[i] = s;
  }
  std::string firstSlot = w.cmp("ult", lane, w.index(lanes));
  std::string smem = "memref<" + std::to_string(kWarps * q * 2) +
                     "xf32, #gpu.address_space<workgroup>>";
  std::string sacc = "memref<" + std::to_string(kWarps * q * d) +
                     "xf32, #gpu.address_space<workgroup>>";
  w.line("scf.if " + firstSlot + " {");
  for (int64_t i = 0; i < q; ++i) {
    std::string entry = w.add(w.mul(warp, w.index(q)), w.index(i));
    w.line("vector.store " + states[i].acc + ", %sacc[" +
           w.add(w.mul(entry, w.index(d)), offset) + "] : " + sacc + ", " + vf);
    std::string at = w.mul(entry, w.index(2));
    w.line("memref.store " + states[i].max + ", %sml[" + at + "] : " + smem);
    w.line("memref.store " + states[i].sum + ", %sml[" +
           w.add(at, w.index(1)) + "] : " + smem);
  }
  w.line("}");
  w.line("gpu.barrier");
  std::string writer = w.let("arith.andi " + firstSlot + ", " +
                             w.cmp("eq", warp, w.index(0)) + " : i1");
  w.line("scf.if " + writer + " {");
  for (int64_t i = 0; i < q; ++i) {
    RowState s;
    for (int64_t wp = 0; wp < kWarps; ++wp) {
      std::string entry = w.index(wp * q + i);
      std::string at = w.mul(entry, w.index(2));
      RowState o = {
          w.let("memref.load %sml[" + at + "] : " + smem),
          w.let("memref.load %sml[" + w.add(at, w.index(1)) + "] : " + smem),
          w.let("vector.load %sacc[" + w.add(w.mul(entry, w.index(d)), offset) +
                "] : " + sacc + ", " + vf)};
      s = wp ? merge(w, s, o) : o;
    }
    std::string hq = w.add(headBase, w.index(i));
    std::string row = w.add(w.mul(w.add(w.mul(b, qHeads), hq), "%rows"), t);
    std::string entry = w.add(w.mul(row, "%num_splits"), split);
    w.line("vector.store " + s.acc + ", %po[" +
           w.add(w.mul(entry, w.index(d)), offset) + "] : memref<?xf32>, " + vf);
    std::string at = w.mul(entry, w.index(2));
    w.line("memref.store " + s.max + ", %pml[" + at + "] : memref<?xf32>");
    w.line("memref.store " + s.sum + ", %pml[" + w.add(at, w.index(1)) +
           "] : memref<?xf32>");
  }
  w.line("}");
  std::string after = w.takeBody();
  return w.finish(header, before + loopHeader + loopBody + "    }\n" + after);
}

std::string decodeCombineKernel(const KernelKey &key) {
  Writer w(key.elementType);
  std::string m = memrefOf(key.elementType);
  const int64_t d = key.headDim, lanes = d / kVectorWidth;
  // Threads with the same `part` own the same 8 output elements; the
  // `sides` groups of them each merge every sides-th split.
  const int64_t sides = kBlockSize / lanes;
  const std::string vf = "vector<8xf32>";
  std::string smem = "memref<" + std::to_string(sides * 2) +
                     "xf32, #gpu.address_space<workgroup>>";
  std::string sacc = "memref<" + std::to_string(sides * d) +
                     "xf32, #gpu.address_space<workgroup>>";
  std::string header =
      "  gpu.func @" + getDecodeCombineName(key) +
      "(%po: memref<?xf32>, %pml: memref<?xf32>, %out: " + m +
      ", %num_splits: index) workgroup(%sml: " + smem +
      ", %sacc: " + sacc +
      ") kernel attributes {known_block_size = array<i32: 128, 1, 1>} {\n";
  std::string row = w.let("gpu.block_id x"), tid = w.let("gpu.thread_id x");
  std::string side = w.div(tid, w.index(lanes)), part = w.rem(tid, w.index(lanes));
  std::string offset = w.mul(part, w.index(kVectorWidth));
  std::string zero = w.f32("0.0"), minusInf = w.f32("-1.0e+30");
  std::string zeros = w.let("arith.constant dense<0.0> : " + vf);
  std::string base = w.mul(row, "%num_splits");
  std::string before = w.takeBody();
  // Each thread merges kUnroll of its splits per step, loads first.
  RowState state = {"%m", "%l", "%a"};
  std::vector<RowState> loaded;
  for (int64_t u = 0; u < kUnroll; ++u) {
    std::string split = w.add("%sp", w.index(u * sides));
    std::string valid = w.cmp("ult", split, "%num_splits");
    std::string entry =
        w.add(base, w.select(valid, split, w.index(0), "index"));
    std::string at = w.mul(entry, w.index(2));
    RowState o = {
        w.let("memref.load %pml[" + at + "] : memref<?xf32>"),
        w.let("memref.load %pml[" + w.add(at, w.index(1)) + "] : memref<?xf32>"),
        w.let("vector.load %po[" + w.add(w.mul(entry, w.index(d)), offset) +
              "] : memref<?xf32>, " + vf)};
    loaded.push_back({w.select(valid, o.max, minusInf, "f32"),
                      w.select(valid, o.sum, zero, "f32"),
                      w.select(valid, o.acc, zeros, vf)});
  }
  for (const RowState &o : loaded)
    state = merge(w, state, o);
  w.line("scf.yield " + state.max + ", " + state.sum + ", " + state.acc +
         " : f32, f32, " + vf);
  std::string loop = "    %st:3 = scf.for %sp = " + side + " to %num_splits step " +
                     w.index(sides * kUnroll) + " iter_args(%m = " + minusInf +
                     ", %l = " + zero + ", %a = " + zeros + ") -> (f32, f32, " +
                     vf + ") {\n" + w.takeBody() + "    }\n";
  w.line("vector.store %st#2, %sacc[" + w.add(w.mul(side, w.index(d)), offset) +
         "] : " + sacc + ", " + vf);
  std::string at = w.mul(side, w.index(2));
  w.line("memref.store %st#0, %sml[" + at + "] : " + smem);
  w.line("memref.store %st#1, %sml[" + w.add(at, w.index(1)) + "] : " + smem);
  w.line("gpu.barrier");
  w.line("scf.if " + w.cmp("eq", side, w.index(0)) + " {");
  RowState total;
  for (int64_t i = 0; i < sides; ++i) {
    std::string a = w.index(2 * i);
    RowState o = {
        w.let("memref.load %sml[" + a + "] : " + smem),
        w.let("memref.load %sml[" + w.index(2 * i + 1) + "] : " + smem),
        w.let("vector.load %sacc[" + w.add(w.index(i * d), offset) + "] : " +
              sacc + ", " + vf)};
    total = i ? merge(w, total, o) : o;
  }
  // A row that attended to nothing comes out zero.
  std::string positive = w.let("arith.cmpf ogt, " + total.sum + ", " + zero +
                               " : f32");
  std::string inverse = w.select(
      positive, w.fbin("divf", w.f32("1.0"), total.sum), zero, "f32");
  w.storeRow(w.fbin("mulf", total.acc, w.splat(inverse), vf), "%out",
             w.add(w.mul(row, w.index(d)), offset));
  w.line("}");
  return w.finish(header, before + loop + w.takeBody());
}

/// Causal flash attention over whole sequences on the tensor cores
/// (mma.sync m16n8k16, f16 or bf16 operands, f32 accumulation): a block of 4
/// warps takes 64 query rows of one head, each warp 16, and walks 64-row
/// key/value tiles up to the diagonal with an online softmax in registers.
/// The fragments follow the PTX m16n8k16 layouts: thread (g = lane/4,
/// t = lane%4) holds rows g and g+8, columns 2t and 2t+1 of each 8-column
/// accumulator tile, which is also how P feeds the second product.
std::string prefillKernel(const KernelKey &key) {
  Writer w(key.elementType);
  const std::string t = getName(key.elementType).str();
  const std::string m = memrefOf(key.elementType);
  const int64_t d = key.headDim, g = key.group;
  const int64_t tile = 64, stride = d + 8; // padded rows: no bank conflicts
  const int64_t kSteps = d / 16, dTiles = d / 8, keyTiles = tile / 8;
  const bool bf16 = key.elementType == ElementType::BF16;
  const std::string smemType = "memref<" + std::to_string(tile) + "x" +
                               std::to_string(stride) + "x" + t +
                               ", #gpu.address_space<workgroup>>";
  const std::string frag4 = "vector<4x2x" + t + ">", pair = "vector<2x" + t + ">";
  // An mma operand register: two 16-bit values, as nvvm.mma.sync takes them.
  const std::string operand = bf16 ? "i32" : pair;
  std::string header =
      "  gpu.func @" + getPrefillName(key) + "(%q: " + m + ", %k: " + m +
      ", %v: " + m + ", %out: " + m +
      ", %seq: index, %scale: f32) workgroup(%sk: " + smemType +
      ", %sv: " + smemType +
      ") kernel attributes {known_block_size = array<i32: 128, 1, 1>} {\n";
  // Four operand registers of one ldmatrix x4.
  auto ldmatrix = [&](StringRef smem, StringRef row, StringRef col,
                      bool transpose) {
    std::string frag = w.let("nvgpu.ldmatrix " + smem.str() + "[" + row.str() +
                             ", " + col.str() + "] {numTiles = 4 : i32, "
                             "transpose = " +
                             (transpose ? "true" : "false") + "} : " +
                             smemType + " -> " + frag4);
    std::array<std::string, 4> regs;
    for (int64_t r = 0; r < 4; ++r) {
      regs[r] = w.let("vector.extract " + frag + "[" + std::to_string(r) +
                      "] : " + pair + " from " + frag4);
      if (bf16)
        regs[r] = w.let("llvm.bitcast " + regs[r] + " : " + pair + " to i32");
    }
    return regs;
  };
  // acc += a * b on one 16x8 tile; accumulators are 4 f32 scalars.
  auto mma = [&](const std::array<std::string, 4> &a, StringRef b0,
                 StringRef b1, std::array<std::string, 4> &acc) {
    std::string types = bf16 ? "multiplicandAPtxType = #nvvm.mma_type<bf16>, "
                               "multiplicandBPtxType = #nvvm.mma_type<bf16>, "
                             : "";
    std::string r = w.let(
        "nvvm.mma.sync A[" + a[0] + ", " + a[1] + ", " + a[2] + ", " + a[3] +
        "] B[" + b0.str() + ", " + b1.str() + "] C[" + acc[0] + ", " + acc[1] +
        ", " + acc[2] + ", " + acc[3] + "] {layoutA = #nvvm.mma_layout<row>, "
        "layoutB = #nvvm.mma_layout<col>, " + types +
        "shape = #nvvm.shape<m = 16, n = 8, k = 16>} : (" + operand + ", " +
        operand + ", f32) -> !llvm.struct<(f32, f32, f32, f32)>");
    for (int64_t e = 0; e < 4; ++e)
      acc[e] = w.let("llvm.extractvalue " + r + "[" + std::to_string(e) +
                     "] : !llvm.struct<(f32, f32, f32, f32)>");
  };
  // Blocks of the last query rows see the most keys: run them first.
  std::string nx = w.let("gpu.grid_dim x");
  std::string bx = w.let("arith.subi " +
                         w.let("arith.subi " + nx + ", " + w.index(1) +
                               " : index") +
                         ", " + w.let("gpu.block_id x") + " : index");
  std::string h = w.let("gpu.block_id y"), b = w.let("gpu.block_id z"),
              nh = w.let("gpu.grid_dim y"), tid = w.let("gpu.thread_id x");
  std::string lane = w.rem(tid, w.index(kWarp)), warp = w.div(tid, w.index(kWarp));
  std::string gr = w.div(lane, w.index(4)), tc = w.rem(lane, w.index(4));
  std::string hk = w.div(h, w.index(g)), nkv = w.div(nh, w.index(g));
  std::string qBase = w.mul(w.mul(w.add(w.mul(b, nh), h), "%seq"), w.index(d));
  std::string kvBase =
      w.mul(w.mul(w.add(w.mul(b, nkv), hk), "%seq"), w.index(d));
  std::string m0 = w.mul(bx, w.index(tile));
  std::string last = w.let("arith.subi %seq, " + w.index(1) + " : index");
  // Copies rows [first, first + 64) of a [seq, D] matrix into shared memory,
  // 16 bytes a thread at a time, with cp.async when `async`; rows past the
  // end repeat the last row. Returns the cp.async group.
  auto stage = [&](StringRef src, StringRef base, StringRef first,
                   StringRef dst, bool async) {
    std::string tokens;
    for (int64_t chunk = 0; chunk < tile * d / kVectorWidth / kBlockSize;
         ++chunk) {
      std::string idx = w.add(w.index(chunk * kBlockSize), tid);
      std::string row = w.div(idx, w.index(d / kVectorWidth));
      std::string col = w.mul(w.rem(idx, w.index(d / kVectorWidth)),
                              w.index(kVectorWidth));
      std::string srcRow = w.min(w.add(first, row), last);
      std::string at = w.add(base, w.add(w.mul(srcRow, w.index(d)), col));
      if (async) {
        std::string token = w.let("nvgpu.device_async_copy " + src.str() + "[" +
                                  at + "], " + dst.str() + "[" + row + ", " +
                                  col + "], 8 : " + m + " to " + smemType);
        tokens += (tokens.empty() ? "" : ", ") + token;
      } else {
        w.line("vector.store " + w.loadRaw(src, at) + ", " + dst.str() + "[" +
               row + ", " + col + "] : " + smemType + ", vector<8x" + t + ">");
      }
    }
    return async ? w.let("nvgpu.device_async_create_group " + tokens)
                 : std::string();
  };
  // ldmatrix row addresses: lane l names row l%8 of 8x8 matrix l/8.
  std::string mat = w.div(lane, w.index(8)), matRow = w.rem(lane, w.index(8));
  std::string matLow = w.mul(w.rem(mat, w.index(2)), w.index(8));
  std::string matHigh = w.mul(w.div(mat, w.index(2)), w.index(8));

  // Q fragments (A operands), staged through %sk: matrices (rows 0-7, k
  // 0-7), (rows 8-15, k 0-7), (rows 0-7, k 8-15), (rows 8-15, k 8-15).
  stage("%q", qBase, m0, "%sk", false);
  w.line("gpu.barrier");
  std::string warpRow = w.mul(warp, w.index(16));
  std::vector<std::array<std::string, 4>> qFrag;
  for (int64_t ks = 0; ks < kSteps; ++ks)
    qFrag.push_back(ldmatrix("%sk", w.add(w.add(warpRow, matLow), matRow),
                             w.add(w.index(ks * 16), matHigh), false));
  w.line("gpu.barrier");
  std::string kvEnd = w.min("%seq", w.add(m0, w.index(tile)));
  std::string scale2 = w.fbin("mulf", "%scale", w.f32("1.44269504"));
  std::string minusInf = w.f32("-1.0e+30"), zero = w.f32("0.0");
  std::string rowA = w.add(w.add(m0, warpRow), gr);
  std::string rowB = w.add(rowA, w.index(8));
  int64_t results = dTiles * 4 + 4;
  std::string iterTypes;
  for (int64_t i = 0; i < results; ++i)
    iterTypes += (i ? ", " : "") + std::string("f32");
  // The first key tile is on its way before the loops.
  stage("%k", kvBase, w.index(0), "%sk", true);
  std::string before = w.takeBody();

  // One key/value tile: V(n) streams in while S = q.K(n)^T is computed, and
  // K(n+1) while O += P.V(n) is. Tiles left of the diagonal need no mask;
  // the diagonal tile, last, masks keys after each row and past the end.
  auto emitTile = [&](StringRef name, bool diagonal) {
    std::string prefix = "%" + name.str();
    std::vector<std::array<std::string, 4>> o(dTiles);
    for (int64_t j = 0; j < dTiles; ++j)
      for (int64_t e = 0; e < 4; ++e)
        o[j][e] = prefix + "o" + std::to_string(j * 4 + e);
    std::string ma = prefix + "ma", mb = prefix + "mb", la = prefix + "la",
                lb = prefix + "lb", n0 = prefix + "n0";
    std::string valuesReady = stage("%v", kvBase, n0, "%sv", true);
    w.line("nvgpu.device_async_wait " + valuesReady + " {numGroups = 1 : i32}");
    w.line("gpu.barrier");
    // K tiles [keys, d] read as they are: matrices (keys 0-7, k 0-7), (keys
    // 0-7, k 8-15), (keys 8-15, k 0-7), (keys 8-15, k 8-15) are the B
    // operands of two 8-key tiles.
    std::vector<std::array<std::string, 4>> sAcc(keyTiles);
    for (auto &acc : sAcc)
      acc = {zero, zero, zero, zero};
    for (int64_t ks = 0; ks < kSteps; ++ks)
      for (int64_t np = 0; np < keyTiles / 2; ++np) {
        auto kf = ldmatrix("%sk",
                           w.add(w.add(w.index(np * 16), matHigh), matRow),
                           w.add(w.index(ks * 16), matLow), false);
        mma(qFrag[ks], kf[0], kf[1], sAcc[2 * np]);
        mma(qFrag[ks], kf[2], kf[3], sAcc[2 * np + 1]);
      }
    // Scale (and mask), running max per row.
    std::vector<std::array<std::string, 4>> sv(keyTiles);
    std::string maxA = minusInf, maxB = minusInf;
    for (int64_t nt = 0; nt < keyTiles; ++nt)
      for (int64_t e = 0; e < 4; ++e) {
        sv[nt][e] = w.fbin("mulf", sAcc[nt][e], scale2);
        if (diagonal) {
          std::string col = w.add(w.add(n0, w.index(nt * 8 + e % 2)),
                                  w.mul(tc, w.index(2)));
          std::string row = e < 2 ? rowA : rowB;
          std::string visible =
              w.let("arith.andi " + w.cmp("ule", col, row) + ", " +
                    w.cmp("ult", col, "%seq") + " : i1");
          sv[nt][e] = w.select(visible, sv[nt][e], minusInf, "f32");
        }
        std::string &mx = e < 2 ? maxA : maxB;
        mx = w.fbin("maximumf", mx, sv[nt][e]);
      }
    for (int64_t off : {1, 2}) {
      maxA = w.fbin("maximumf", maxA, w.shuffle(maxA, off, false));
      maxB = w.fbin("maximumf", maxB, w.shuffle(maxB, off, false));
    }
    std::string mA = w.fbin("maximumf", ma, maxA);
    std::string mB = w.fbin("maximumf", mb, maxB);
    std::string alphaA = w.exp2(w.fbin("subf", ma, mA));
    std::string alphaB = w.exp2(w.fbin("subf", mb, mB));
    std::string lA = w.fbin("mulf", la, alphaA);
    std::string lB = w.fbin("mulf", lb, alphaB);
    // P as A operands: registers (row g, keys 2t..2t+1) and (row g+8, ...)
    // of each 8-key tile.
    std::vector<std::array<std::string, 2>> pRegs(keyTiles);
    for (int64_t nt = 0; nt < keyTiles; ++nt)
      for (int64_t half = 0; half < 2; ++half) {
        std::array<std::string, 2> x;
        for (int64_t e = 0; e < 2; ++e) {
          std::string p =
              w.exp2(w.fbin("subf", sv[nt][2 * half + e], half ? mB : mA));
          std::string &l = half ? lB : lA;
          l = w.fbin("addf", l, p);
          x[e] = w.let("arith.truncf " + p + " : f32 to " + t);
        }
        pRegs[nt][half] = w.let("vector.from_elements " + x[0] + ", " + x[1] +
                                " : " + pair);
        if (bf16)
          pRegs[nt][half] = w.let("llvm.bitcast " + pRegs[nt][half] + " : " +
                                  pair + " to i32");
      }
    w.line("nvgpu.device_async_wait " + valuesReady + " {numGroups = 0 : i32}");
    w.line("gpu.barrier");
    if (!diagonal)
      stage("%k", kvBase, w.add(n0, w.index(tile)), "%sk", true);
    std::vector<std::array<std::string, 4>> acc(dTiles);
    for (int64_t j = 0; j < dTiles; ++j)
      for (int64_t e = 0; e < 4; ++e)
        acc[j][e] = w.fbin("mulf", o[j][e], e < 2 ? alphaA : alphaB);
    for (int64_t kk = 0; kk < keyTiles / 2; ++kk) {
      std::array<std::string, 4> pa = {pRegs[2 * kk][0], pRegs[2 * kk][1],
                                       pRegs[2 * kk + 1][0],
                                       pRegs[2 * kk + 1][1]};
      // V tiles read transposed: matrices (keys 0-7, d 0-7), (keys 8-15, d
      // 0-7), (keys 0-7, d 8-15), (keys 8-15, d 8-15) are the B operands of
      // two 8-wide d tiles.
      for (int64_t dp = 0; dp < dTiles / 2; ++dp) {
        auto vf = ldmatrix("%sv",
                           w.add(w.add(w.index(kk * 16), matLow), matRow),
                           w.add(w.index(dp * 16), matHigh), true);
        mma(pa, vf[0], vf[1], acc[2 * dp]);
        mma(pa, vf[2], vf[3], acc[2 * dp + 1]);
      }
    }
    w.line("gpu.barrier");
    std::string yields;
    for (int64_t j = 0; j < dTiles; ++j)
      for (int64_t e = 0; e < 4; ++e)
        yields += (yields.empty() ? "" : ", ") + acc[j][e];
    w.line("scf.yield " + yields + ", " + mA + ", " + mB + ", " + lA + ", " +
           lB + " : " + iterTypes);
    return w.takeBody();
  };
  // `%name:N = scf.for ... iter_args(...)` over [lb, ub) with the tile body.
  auto emitLoop = [&](StringRef name, StringRef lb, StringRef ub,
                      const std::vector<std::string> &inits, bool diagonal) {
    std::string prefix = "%" + name.str(), args;
    for (int64_t i = 0; i < results; ++i) {
      std::string arg = i < dTiles * 4
                            ? prefix + "o" + std::to_string(i)
                            : prefix + std::vector<std::string>{
                                           "ma", "mb", "la", "lb"}[i - dTiles * 4];
      args += (i ? ", " : "") + arg + " = " + inits[i];
    }
    std::string body = emitTile(name, diagonal);
    return "    " + prefix + "acc:" + std::to_string(results) + " = scf.for " +
           prefix + "n0 = " + lb.str() + " to " + ub.str() + " step " +
           w.index(tile) + " iter_args(" + args + ") -> (" + iterTypes +
           ") {\n" + body + "    }\n";
  };
  std::vector<std::string> inits(dTiles * 4, zero);
  inits.insert(inits.end(), {minusInf, minusInf, zero, zero});
  std::string loop = emitLoop("below", w.index(0), m0, inits, false);
  std::vector<std::string> carried;
  for (int64_t i = 0; i < results; ++i)
    carried.push_back("%belowacc#" + std::to_string(i));
  loop += emitLoop("diag", m0, kvEnd, carried, true);
  // Normalize by the row sums (spread over the 4 threads of a row) and store.
  std::string sumA = "%diagacc#" + std::to_string(results - 2);
  std::string sumB = "%diagacc#" + std::to_string(results - 1);
  for (int64_t off : {1, 2}) {
    sumA = w.fbin("addf", sumA, w.shuffle(sumA, off, false));
    sumB = w.fbin("addf", sumB, w.shuffle(sumB, off, false));
  }
  std::string one = w.f32("1.0");
  std::string invA = w.fbin("divf", one, sumA), invB = w.fbin("divf", one, sumB);
  for (int64_t half = 0; half < 2; ++half) {
    std::string row = half ? rowB : rowA, inv = half ? invB : invA;
    w.line("scf.if " + w.cmp("ult", row, "%seq") + " {");
    for (int64_t j = 0; j < dTiles; ++j) {
      std::string x0 = w.fbin(
          "mulf", "%diagacc#" + std::to_string(j * 4 + 2 * half), inv);
      std::string x1 = w.fbin(
          "mulf", "%diagacc#" + std::to_string(j * 4 + 2 * half + 1), inv);
      std::string out = w.let("vector.from_elements " + x0 + ", " + x1 +
                              " : vector<2xf32>");
      if (key.elementType != ElementType::F32)
        out = w.let("arith.truncf " + out + " : vector<2xf32> to " + pair);
      std::string at = w.add(
          qBase, w.add(w.mul(row, w.index(d)),
                       w.add(w.index(j * 8), w.mul(tc, w.index(2)))));
      w.line("vector.store " + out + ", %out[" + at + "] : " + m + ", vector<2x" +
             t + ">");
    }
    w.line("}");
  }
  return w.finish(header, before + loop + w.takeBody());
}

} // namespace

LogicalResult mlir::kvc::kernels::addKernels(ModuleOp module,
                                         ArrayRef<KernelKey> keys) {
  MLIRContext *context = module.getContext();
  context->loadDialect<::mlir::gpu::GPUDialect>();
  OpBuilder builder(context);
  auto kernels = dyn_cast_or_null<::mlir::gpu::GPUModuleOp>(
      SymbolTable::lookupSymbolIn(module, "kvc_kernels"));
  if (!kernels) {
    builder.setInsertionPointToEnd(module.getBody());
    kernels = ::mlir::gpu::GPUModuleOp::create(builder, module.getLoc(),
                                               "kvc_kernels");
    module->setAttr(::mlir::gpu::GPUDialect::getContainerModuleAttrName(),
                    builder.getUnitAttr());
  }
  SymbolTable symbols(kernels);
  std::string text;
  auto want = [&](const std::string &name, auto &&generate) {
    if (!symbols.lookup(name) && text.find("@" + name + "(") == std::string::npos)
      text += generate();
  };
  want(getSetLengthsName(), [] { return setLengthsKernel(); });
  for (const KernelKey &key : keys) {
    if (key.headDim % kVectorWidth || key.headDim > kWarp * kVectorWidth ||
        key.group < 1 || (key.group > 8 && key.group % 8))
      return module.emitError()
             << "kvc GPU kernels need a head dim that is a multiple of 8 up to "
             << kWarp * kVectorWidth
             << " and a query group of at most 8 or a multiple of 8; found "
                "head dim "
             << key.headDim << ", group " << key.group;
    want(getAppendName(key), [&] { return appendKernel(key, false); });
    want(getAppendRotaryName(key), [&] { return appendKernel(key, true); });
    want(getDecodeSplitName(key), [&] { return decodeSplitKernel(key); });
    want(getDecodeCombineName(key), [&] { return decodeCombineKernel(key); });
    if (key.elementType != ElementType::F32)
      want(getPrefillName(key), [&] { return prefillKernel(key); });
  }
  if (text.empty())
    return success();
  std::string source = "gpu.module @kvc_kernels_new {\n" + text + "}\n";
  ParserConfig config(context);
  OwningOpRef<ModuleOp> parsed = parseSourceString<ModuleOp>(source, config);
  if (!parsed)
    return module.emitError("kvc: a generated GPU kernel does not parse");
  auto fresh = *parsed->getOps<::mlir::gpu::GPUModuleOp>().begin();
  for (Operation &op : llvm::make_early_inc_range(fresh.getBody()->getOperations()))
    op.moveBefore(kernels.getBody(), kernels.getBody()->end());
  return success();
}
