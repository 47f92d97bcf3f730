//===- GemvKernel.cpp - projections of one row -----------------------------===//
//
// out[n] = sum_k x[k] w[n, k]: a decode step's projections at batch 1, bound
// by reading w once. One warp per row of w; each lane streams kLoads 16-byte
// pieces of the row per step, the next step's loads issued before the
// current step's arithmetic (a register double buffer), and sums over lanes
// with shuffles at the end.
//
// The first step's pieces of w are loaded before `nvvm.griddepcontrol wait`:
// weights do not depend on the kernels before, so under a programmatic
// dependent launch a block starts streaming its rows while the small kernels
// ahead of it (a norm, attention) still run. x is read only after the wait.
//
//===----------------------------------------------------------------------===//
#include "KernelWriter.h"

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

} // namespace mlir::kvc::kernels::detail
