//===- GemvKernel.cpp - projections of few rows ----------------------------===//
//
// out[m, n] = sum_k x[m, k] w[n, k] for a decode step's few rows, bound by
// reading w once:
// - kvc_gemv (one row): one warp per row of w; each lane streams kLoads
//   16-byte pieces of the row per step, the next step's loads issued before
//   the current step's arithmetic (a register double buffer), and sums over
//   lanes with shuffles at the end.
// - kvc_gemm16 (2 to 16 rows): mma.sync m16n8k16 with w as the A operand
//   (16 of its rows per block) and x as B, loaded straight from global
//   memory into fragments (below), the 8 warps of a block on every 8th
//   64-wide chunk of k, summed in shared memory.
//
// The first step's pieces of w are loaded before `nvvm.griddepcontrol wait`:
// weights do not depend on the kernels before, so under a programmatic
// dependent launch a block starts streaming its rows while the small kernels
// ahead of it (a norm, attention) still run. x is read only after the wait.
//
//===----------------------------------------------------------------------===//
#include "TensorCore.h"

#include <vector>

using namespace mlir;
using namespace mlir::kvc::kernels;

namespace mlir::kvc::kernels::detail {

namespace {
/// 16-byte pieces of w in flight per lane (a 2048-wide row in one step).
constexpr int64_t kLoads = 8;
} // namespace

std::string gemvKernel(const GemvKey &key) {
  Writer w(key.inputType);
  const std::string in = memrefOf(key.inputType),
                    out = memrefOf(key.outputType), vf = "vector<8xf32>",
                    raw = "vector<8x" + getName(key.inputType).str() + ">";
  std::string header =
      "  gpu.func @" + getGemvName(key) + "(%x: " + in + ", %w: " + in +
      ", %out: " + out +
      ", %n: index, %k: index) kernel attributes {known_block_size = "
      "array<i32: 128, 1, 1>} {\n";
  std::string tid = w.let("gpu.thread_id x");
  std::string lane = w.rem(tid, w.index(kWarp)), warp = w.div(tid, w.index(kWarp));
  std::string n0 = w.add(w.mul(w.let("gpu.block_id x"), w.index(kWarps)), warp);
  // A row past the end is read clamped and never stored.
  std::string base = w.mul(w.min(n0, w.let("arith.subi %n, " + w.index(1) +
                                           " : index")),
                           "%k");
  std::string lastK =
      w.let("arith.subi %k, " + w.index(kVectorWidth) + " : index");
  std::string piece = w.index(kWarp * kVectorWidth);
  std::string first = w.mul(lane, w.index(kVectorWidth));
  std::string step = w.index(kWarp * kVectorWidth * kLoads);
  // Piece u of the step at `kk`: its offset in the row (clamped) and
  // whether it is inside the row.
  auto offset = [&](StringRef kk, int64_t u) {
    return w.add(kk, w.mul(piece, w.index(u)));
  };
  auto loadStep = [&](StringRef kk) {
    std::vector<std::string> values;
    for (int64_t u = 0; u < kLoads; ++u)
      values.push_back(w.loadRaw("%w", w.add(base, w.min(offset(kk, u), lastK))));
    return values;
  };
  std::vector<std::string> prefetched = loadStep(first);
  w.line("nvvm.griddepcontrol wait");
  w.line("nvvm.griddepcontrol launch_dependents");
  std::string iterArgs = "%s = " + w.f32("0.0"), iterTypes = "f32";
  for (int64_t u = 0; u < kLoads; ++u) {
    iterArgs += ", %p" + std::to_string(u) + " = " + prefetched[u];
    iterTypes += ", " + raw;
  }
  w.line("%loop:" + std::to_string(kLoads + 1) + " = scf.for %kk = " + first +
         " to %k step " + step + " iter_args(" + iterArgs + ") -> (" +
         iterTypes + ") {");
  std::vector<std::string> next = loadStep(w.add("%kk", step));
  std::string sum = "%s";
  for (int64_t u = 0; u < kLoads; ++u) {
    std::string at = offset("%kk", u);
    std::string x = w.widen(w.loadRaw("%x", w.min(at, lastK)));
    std::string dot = w.let("vector.reduction <add>, " +
                            w.fbin("mulf", w.widen("%p" + std::to_string(u)),
                                   x, vf) +
                            " : " + vf + " into f32");
    sum = w.fbin("addf", sum,
                 w.select(w.cmp("ult", at, "%k"), dot, w.f32("0.0"), "f32"));
  }
  std::string yields = sum, yieldTypes = "f32";
  for (const std::string &v : next) {
    yields += ", " + v;
    yieldTypes += ", " + raw;
  }
  w.line("scf.yield " + yields + " : " + yieldTypes);
  w.line("}");
  std::string total = w.sumOverLanes("%loop#0", kWarp);
  std::string ok = w.let("arith.andi " + w.cmp("eq", lane, w.index(0)) + ", " +
                         w.cmp("ult", n0, "%n") + " : i1");
  w.line("scf.if " + ok + " {");
  std::string value = total;
  if (key.outputType != ElementType::F32)
    value = w.let("arith.truncf " + total + " : f32 to " +
                  getName(key.outputType).str());
  w.line("memref.store " + value + ", %out[" + n0 + "] : " + out);
  w.line("}");
  return w.finish(header);
}

/// Warps of a kvc_gemm16 block: they take the 64-wide chunks of k in turn.
/// Their 256 threads each store one of the block's 16 x 16 outputs. (Two
/// 16-row tiles of w per block, sharing each piece of x, took 146
/// registers and measured slower on the H100: bench/RESULTS.md.)
constexpr int64_t kGemmWarps = 8;

/// A dot product does not care in which order it visits k, so the fragments
/// need no shuffling: in each 64-wide chunk of k, lane (g = lane/4, c =
/// lane%4) loads elements [8c, 8c+8) and [32+8c, 32+8c+8) of rows g and g+8
/// of the block's 16 rows of w (two 16-byte loads per row; the 4 lanes of a row read 64
/// contiguous bytes each time) and the same elements of rows g and g+8 of
/// x. Product j of the chunk takes the lane's elements 4j..4j+3 as the
/// fragment columns 2c, 2c+1, 2c+8, 2c+9 of both operands: every k meets
/// its own k.
///
/// Bound by latency: a warp's loads of w run two chunks ahead of its
/// products (of x, in L2, one).
std::string gemm16Kernel(const GemvKey &key) {
  Writer w(key.inputType);
  TensorCore core(w, 16, 16);
  const std::string in = memrefOf(key.inputType),
                    out = memrefOf(key.outputType), t = core.t,
                    raw = "vector<8x" + t + ">";
  const int64_t threads = kGemmWarps * kWarp, tile = 16 * 16, pieces = 4;
  static_assert(kGemmWarps * kWarp == 16 * 16, "a thread per output");
  const std::string partType = "memref<" + std::to_string(kGemmWarps * tile) +
                               "xf32, #gpu.address_space<workgroup>>";
  std::string header =
      "  gpu.func @" + getGemm16Name(key) + "(%x: " + in + ", %w: " + in +
      ", %out: " + out +
      ", %m: index, %n: index, %k: index) workgroup(%part: " + partType +
      kAligned + ") kernel attributes {known_block_size = array<i32: " +
      std::to_string(threads) + ", 1, 1>} {\n";
  std::string tid = w.let("gpu.thread_id x");
  std::string lane = w.rem(tid, w.index(kWarp)), warp = w.div(tid, w.index(kWarp));
  std::string g = w.div(lane, w.index(4)), c = w.rem(lane, w.index(4));
  std::string n0 = w.mul(w.let("gpu.block_id x"), w.index(16));
  auto last = [&](StringRef size) {
    return w.let("arith.subi " + size + ", " + w.index(1) + " : index");
  };
  // Rows g and g + 8 of w's tile and of x; rows past the end are read
  // clamped and never stored.
  std::vector<std::string> wRows, xRows;
  for (int64_t h = 0; h < 2; ++h)
    wRows.push_back(w.mul(
        w.min(w.add(w.add(n0, g), w.index(8 * h)), last("%n")), "%k"));
  for (int64_t h = 0; h < 2; ++h)
    xRows.push_back(
        w.mul(w.min(w.add(g, w.index(8 * h)), last("%m")), "%k"));
  std::string chunks = w.div("%k", w.index(64)), lastChunk = last(chunks);
  std::string lanePart = w.mul(c, w.index(8));
  // Both halves of rows g and g + 8 in chunk `chunk` (clamped to the last:
  // the loads ahead of the last chunk read it again).
  auto loadChunk = [&](StringRef memref, const std::vector<std::string> &rows,
                       StringRef chunk) {
    std::string kk = w.mul(w.min(chunk, lastChunk), w.index(64));
    std::vector<std::string> pieces;
    for (const std::string &row : rows)
      for (int64_t half = 0; half < 2; ++half)
        pieces.push_back(w.loadRaw(
            memref, w.add(w.add(row, kk), w.add(lanePart, w.index(half * 32)))));
    return pieces;
  };
  std::string stride = w.index(kGemmWarps);
  std::vector<std::string> w0 = loadChunk("%w", wRows, warp);
  std::vector<std::string> w1 = loadChunk("%w", wRows, w.add(warp, stride));
  w.line("nvvm.griddepcontrol wait");
  w.line("nvvm.griddepcontrol launch_dependents");
  std::vector<std::string> x0 = loadChunk("%x", xRows, warp);
  std::string zero = w.f32("0.0");
  // Loop state: the accumulators (4 per 16x8 product tile), w of this
  // chunk and of the next, x of this one.
  const int64_t accs = 2 * 4;
  std::vector<std::string> inits(accs, zero), types(accs, "f32");
  for (const auto *pieces : {&w0, &w1, &x0})
    for (const std::string &v : *pieces) {
      inits.push_back(v);
      types.push_back(raw);
    }
  std::string iterArgs, iterTypes;
  for (size_t i = 0; i < inits.size(); ++i) {
    iterArgs += (i ? ", %s" : "%s") + std::to_string(i) + " = " + inits[i];
    iterTypes += (i ? ", " : "") + types[i];
  }
  w.line("%loop:" + std::to_string(inits.size()) + " = scf.for %ch = " +
         warp + " to " + chunks + " step " + stride + " iter_args(" +
         iterArgs + ") -> (" + iterTypes + ") {");
  auto state = [](int64_t i) { return "%s" + std::to_string(i); };
  const int64_t wNow = accs, wAhead = accs + pieces, xNow = accs + 2 * pieces;
  std::vector<std::string> wNext =
      loadChunk("%w", wRows, w.add("%ch", w.mul(stride, w.index(2))));
  std::vector<std::string> xNext = loadChunk("%x", xRows, w.add("%ch", stride));
  // Operand register r (two elements) of piece `v`.
  auto pairOf = [&](StringRef v, int64_t r) {
    std::string words =
        w.let("llvm.bitcast " + v + " : " + raw + " to vector<4xi32>");
    std::string word = w.let("vector.extract " + words + "[" +
                             std::to_string(r) + "] : i32 from vector<4xi32>");
    return core.bf16 ? word
                     : w.let("llvm.bitcast " + word + " : i32 to " + core.pair);
  };
  // acc[nt]: w's 16 rows times x rows 8 nt..8 nt+7.
  std::array<std::array<std::string, 4>, 2> acc;
  for (int64_t i = 0; i < accs; ++i)
    acc[i / 4][i % 4] = state(i);
  for (int64_t j = 0; j < 4; ++j) {
    // Elements 4j..4j+3 of the lane's 16: half j/2, words 2(j%2), +1.
    int64_t half = j / 2, r = 2 * (j % 2);
    std::array<std::array<std::string, 2>, 2> b;
    for (int64_t nt = 0; nt < 2; ++nt) {
      std::string xv = state(xNow + nt * 2 + half);
      b[nt] = {pairOf(xv, r), pairOf(xv, r + 1)};
    }
    std::string rowG = state(wNow + half), rowG8 = state(wNow + 2 + half);
    std::array<std::string, 4> a = {pairOf(rowG, r), pairOf(rowG8, r),
                                    pairOf(rowG, r + 1), pairOf(rowG8, r + 1)};
    for (int64_t nt = 0; nt < 2; ++nt)
      core.mma(a, b[nt][0], b[nt][1], acc[nt]);
  }
  std::string yields;
  for (int64_t i = 0; i < accs; ++i)
    yields += (i ? ", " : "") + acc[i / 4][i % 4];
  for (int64_t i = wAhead; i < wAhead + pieces; ++i)
    yields += ", " + state(i);
  for (const auto *pieces : {&wNext, &xNext})
    for (const std::string &v : *pieces)
      yields += ", " + v;
  w.line("scf.yield " + yields + " : " + iterTypes);
  w.line("}");
  // Accumulator e of tile nt is (w row g + 8 (e/2), x row 8 nt + 2c +
  // e%2): each warp's sums to %part[warp][w row][x row], then thread i adds
  // the warps' for w row i/16, x row i%16.
  for (int64_t i = 0; i < accs; ++i) {
    int64_t nt = i / 4, e = i % 4;
    std::string row = w.add(g, w.index(8 * (e / 2)));
    std::string col = w.add(w.mul(c, w.index(2)), w.index(8 * nt + e % 2));
    std::string at = w.add(w.mul(warp, w.index(tile)),
                           w.add(w.mul(row, w.index(16)), col));
    w.line("memref.store %loop#" + std::to_string(i) + ", %part[" + at +
           "] : " + partType);
  }
  w.line("gpu.barrier");
  std::string outN = w.add(n0, w.div(tid, w.index(16)));
  std::string xr = w.rem(tid, w.index(16));
  std::string sum = zero;
  for (int64_t wp = 0; wp < kGemmWarps; ++wp)
    sum = w.fbin("addf", sum,
                 w.let("memref.load %part[" + w.add(w.index(wp * tile), tid) +
                       "] : " + partType));
  std::string ok = w.let("arith.andi " + w.cmp("ult", xr, "%m") + ", " +
                         w.cmp("ult", outN, "%n") + " : i1");
  w.line("scf.if " + ok + " {");
  if (key.outputType != ElementType::F32)
    sum = w.let("arith.truncf " + sum + " : f32 to " +
                getName(key.outputType).str());
  w.line("memref.store " + sum + ", %out[" + w.add(w.mul(xr, "%n"), outN) +
         "] : " + out);
  w.line("}");
  return w.finish(header);
}

} // namespace mlir::kvc::kernels::detail
