//===- GemvKernel.cpp - projections of one row -----------------------------===//
//
// out[n] = sum_k x[k] w[n, k]: a decode step's projections at batch 1. Bound
// by reading w once, which cuBLASLt's tiles for 2048x2048 do at a third of
// the copy bandwidth. Each warp streams kRows rows of w with 16-byte loads,
// kUnroll loads per row in flight per lane, keeps one f32 sum per row and
// sums over lanes with shuffles; x (4 KB) stays in L1.
//
//===----------------------------------------------------------------------===//
#include "KernelWriter.h"

#include <vector>

using namespace mlir;
using namespace mlir::kvc::kernels;

namespace mlir::kvc::kernels::detail {

namespace {
/// Rows of w one warp computes, and 16-byte loads per row in flight.
constexpr int64_t kRows = 2, kLoads = 8;
} // namespace

std::string gemvKernel(const GemvKey &key) {
  Writer w(key.inputType);
  const std::string in = memrefOf(key.inputType),
                    out = memrefOf(key.outputType), vf = "vector<8xf32>";
  std::string header =
      "  gpu.func @" + getGemvName(key) + "(%x: " + in + ", %w: " + in +
      ", %out: " + out +
      ", %n: index, %k: index) kernel attributes {known_block_size = "
      "array<i32: 128, 1, 1>} {\n";
  std::string tid = w.let("gpu.thread_id x");
  std::string lane = w.rem(tid, w.index(kWarp)), warp = w.div(tid, w.index(kWarp));
  std::string n0 = w.mul(
      w.add(w.mul(w.let("gpu.block_id x"), w.index(kWarps)), warp),
      w.index(kRows));
  // Rows past the end are read clamped and never stored.
  std::string lastN = w.let("arith.subi %n, " + w.index(1) + " : index");
  std::vector<std::string> base;
  for (int64_t r = 0; r < kRows; ++r)
    base.push_back(w.mul(w.min(w.add(n0, w.index(r)), lastN), "%k"));
  std::string lastK =
      w.let("arith.subi %k, " + w.index(kVectorWidth) + " : index");
  std::string zeros = w.let("arith.constant dense<0.0> : " + vf);
  std::string stride = w.index(kWarp * kVectorWidth);
  std::string first = w.mul(lane, w.index(kVectorWidth));
  w.line("%loop:" + std::to_string(kRows) + " = scf.for %kk = " + first +
         " to %k step " + w.index(kWarp * kVectorWidth * kLoads) +
         " iter_args(%s0 = " + w.f32("0.0") + ", %s1 = " + w.f32("0.0") +
         ") -> (f32, f32) {");
  std::vector<std::string> at, valid;
  for (int64_t u = 0; u < kLoads; ++u) {
    std::string idx = w.add("%kk", w.mul(stride, w.index(u)));
    valid.push_back(w.cmp("ult", idx, "%k"));
    at.push_back(w.min(idx, lastK));
  }
  // Every load first, then the arithmetic.
  std::vector<std::vector<std::string>> raw(kRows);
  std::vector<std::string> xs;
  for (int64_t u = 0; u < kLoads; ++u) {
    for (int64_t r = 0; r < kRows; ++r)
      raw[r].push_back(w.loadRaw("%w", w.add(base[r], at[u])));
    xs.push_back(w.loadRaw("%x", at[u]));
  }
  std::vector<std::string> sums = {"%s0", "%s1"};
  for (int64_t u = 0; u < kLoads; ++u) {
    std::string x = w.widen(xs[u]);
    for (int64_t r = 0; r < kRows; ++r) {
      std::string wv = w.select(valid[u], w.widen(raw[r][u]), zeros, vf);
      sums[r] = w.let("vector.reduction <add>, " + w.fbin("mulf", wv, x, vf) +
                      ", " + sums[r] + " : " + vf + " into f32");
    }
  }
  w.line("scf.yield " + sums[0] + ", " + sums[1] + " : f32, f32");
  w.line("}");
  std::string isFirst = w.cmp("eq", lane, w.index(0));
  for (int64_t r = 0; r < kRows; ++r) {
    std::string total = w.sumOverLanes("%loop#" + std::to_string(r), kWarp);
    std::string col = w.add(n0, w.index(r));
    std::string ok = w.let("arith.andi " + isFirst + ", " +
                           w.cmp("ult", col, "%n") + " : i1");
    w.line("scf.if " + ok + " {");
    std::string value = total;
    if (key.outputType != ElementType::F32)
      value = w.let("arith.truncf " + total + " : f32 to " +
                    getName(key.outputType).str());
    w.line("memref.store " + value + ", %out[" + col + "] : " + out);
    w.line("}");
  }
  return w.finish(header);
}

} // namespace mlir::kvc::kernels::detail
