//===- CacheKernels.cpp - cache append and lengths kernels ----------------===//
//
// Appends (plain and rotary) and length updates: 16 bytes a thread.
//
//===----------------------------------------------------------------------===//
#include "KernelWriter.h"

using namespace mlir;
using namespace mlir::kvc::kernels;

namespace mlir::kvc::kernels::detail {

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
  // The sequence's new length, by the thread that checked the position
  // against the old one before anyone could change it (others may see
  // either; the new one passes their check too).
  w.line("scf.if " + w.cmp("eq", gid, w.index(0)) + " {");
  w.line("memref.store " +
         w.let("arith.index_cast " + w.add(pos, "%rows") + " : index to i32") +
         ", %lengths[" + b + "] : memref<?xi32>");
  w.line("}");
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

// Each thread scans every 128th logit of its row keeping the first largest,
// then warps and the block agree through shuffles and shared memory; ties go
// to the smaller index, as torch.argmax's do.
std::string argmaxKernel(ElementType type) {
  Writer w(type);
  std::string t = getName(type).str();
  std::string header =
      "  gpu.func @" + getArgmaxName(type) + "(%logits: memref<?x" + t +
      ">, %out: memref<?xi32>, %vocab: index) workgroup(%best: "
      "memref<4xf32, #gpu.address_space<workgroup>>, %where: memref<4xi32, "
      "#gpu.address_space<workgroup>>) kernel attributes {known_block_size = "
      "array<i32: 128, 1, 1>} {\n";
  std::string row = w.let("gpu.block_id x");
  std::string tid = w.let("gpu.thread_id x");
  std::string base = w.mul(row, "%vocab");
  std::string lowest = w.f32("0xFF800000");
  std::string loop = w.let2("scf.for %i = " + tid + " to %vocab step " +
                            w.index(kBlockSize) + " iter_args(%m = " + lowest +
                            ", %k = " + w.i32(0) + ") -> (f32, i32) {");
  std::string raw = w.let("memref.load %logits[" + w.add(base, "%i") +
                          "] : memref<?x" + t + ">");
  std::string v = type == ElementType::F32
                      ? raw
                      : w.let("arith.extf " + raw + " : " + t + " to f32");
  std::string better = w.let("arith.cmpf ogt, " + v + ", %m : f32");
  std::string i = w.let("arith.index_cast %i : index to i32");
  w.line("scf.yield " + w.select(better, v, "%m", "f32") + ", " +
         w.select(better, i, "%k", "i32") + " : f32, i32");
  w.line("}");
  // (m, k) pairs merge: the larger value, on a tie the smaller index.
  auto merge = [&](std::string &m, std::string &k, StringRef om, StringRef ok) {
    std::string gt = w.let("arith.cmpf ogt, " + om + ", " + m + " : f32");
    std::string eq = w.let("arith.cmpf oeq, " + om + ", " + m + " : f32");
    std::string lt = w.cmp("slt", ok, k, "i32");
    std::string take =
        w.let("arith.ori " + gt + ", " + w.let("arith.andi " + eq + ", " + lt +
                                               " : i1") + " : i1");
    m = w.select(take, om, m, "f32");
    k = w.select(take, ok, k, "i32");
  };
  auto warpMerge = [&](std::string &m, std::string &k) {
    for (int64_t offset = kWarp / 2; offset > 0; offset /= 2) {
      std::string om = w.let2("gpu.shuffle xor " + m + ", " + w.i32(offset) +
                              ", " + w.i32(kWarp) + " : f32") + "#0";
      std::string ok = w.let2("gpu.shuffle xor " + k + ", " + w.i32(offset) +
                              ", " + w.i32(kWarp) + " : i32") + "#0";
      merge(m, k, om, ok);
    }
  };
  std::string m = loop + "#0", k = loop + "#1";
  warpMerge(m, k);
  std::string lane = w.rem(tid, w.index(kWarp)), warp = w.div(tid, w.index(kWarp));
  std::string first = w.cmp("eq", lane, w.index(0));
  w.line("scf.if " + first + " {");
  w.line("memref.store " + m + ", %best[" + warp +
         "] : memref<4xf32, #gpu.address_space<workgroup>>");
  w.line("memref.store " + k + ", %where[" + warp +
         "] : memref<4xi32, #gpu.address_space<workgroup>>");
  w.line("}");
  w.line("gpu.barrier");
  w.line("scf.if " + w.cmp("eq", tid, w.index(0)) + " {");
  std::string bm = w.let("memref.load %best[" + w.index(0) +
                         "] : memref<4xf32, #gpu.address_space<workgroup>>");
  std::string bk = w.let("memref.load %where[" + w.index(0) +
                         "] : memref<4xi32, #gpu.address_space<workgroup>>");
  for (int64_t j = 1; j < kBlockSize / kWarp; ++j) {
    std::string om = w.let("memref.load %best[" + w.index(j) +
                           "] : memref<4xf32, #gpu.address_space<workgroup>>");
    std::string ok = w.let("memref.load %where[" + w.index(j) +
                           "] : memref<4xi32, #gpu.address_space<workgroup>>");
    merge(bm, bk, om, ok);
  }
  w.line("memref.store " + bk + ", %out[" + row + "] : memref<?xi32>");
  w.line("}");
  return w.finish(header);
}

} // namespace mlir::kvc::kernels::detail
