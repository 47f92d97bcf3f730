//===- GemmKernel.cpp - projections of a few rows on tensor cores ---------===//
//
// out[m, n] = sum_k x[m, k] w[n, k] for the few rows of a batched decode
// step (m up to 16 a block): bound by reading w once, like kvc_gemv, but
// with 16 rows of x the products go to the tensor cores (mma.sync
// m16n8k16, f32 accumulation).
//
// A block takes 16 rows of x, kTiles * 8 rows of w and a range of k (grid
// y splits k, by default into single steps: many short blocks keep enough
// loads in flight and leave no long last wave). Its 4 warps split the
// range, each streaming kChunks 32-wide chunks of its rows per step with the
// next step's loads in flight (a register double buffer); the warps' tiles
// are summed through shared memory. With one split, that sum is the output;
// otherwise each block writes it to `partial` and counts itself in
// `count[tile]`, and the last block of a tile adds all splits in split
// order (the result does not depend on timing) and resets the count.
//
// Fragments straight from 16-byte loads: lane (g = lane/4, t = lane%4)
// loads w[n0 + g, kc + 8t, +8) and x[m0 + g (+8), kc + 8t, +8) of chunk kc.
// The order of k inside a product does not matter as long as x and w agree,
// so mma step s of the chunk takes the elements 4s..4s+3 of those pieces as
// its k = 2t, 2t+1, 2t+8, 2t+9 (the PTX layouts of A row-major and B
// column-major): no shared memory and no shuffles on the way in.
//
// As in kvc_gemv, the first step's pieces of w are loaded before
// `nvvm.griddepcontrol wait`; x only after it.
//
//===----------------------------------------------------------------------===//
#include "KernelWriter.h"

#include <array>
#include <vector>

using namespace mlir;
using namespace mlir::kvc::kernels;

namespace mlir::kvc::kernels::detail {

namespace {
/// 8-row mma tiles of w per block.
constexpr int64_t kTiles = 2;
/// 32-wide chunks of k per warp per step.
constexpr int64_t kChunks = 4;
} // namespace

std::string gemmKernel(const ProjectionKey &key) {
  Writer w(key.inputType);
  const bool bf16 = key.inputType == ElementType::BF16;
  const std::string in = memrefOf(key.inputType),
                    out = memrefOf(key.outputType),
                    t16 = getName(key.inputType).str(),
                    raw = "vector<8x" + t16 + ">";
  const std::string operand = bf16 ? "i32" : "vector<2x" + t16 + ">";
  // The block's tile: values (tile entry e, lane) of its 16 x kTiles*8
  // outputs, e = 4j + c for accumulator c of mma tile j.
  const int64_t values = kTiles * 4 * kWarp;
  const std::string red = "memref<" + std::to_string(kWarps * values) +
                          "xf32, #gpu.address_space<workgroup>>";
  const std::string flagType = "memref<1xi32, #gpu.address_space<workgroup>>";
  std::string header =
      "  gpu.func @" + getGemmName(key) + "(%x: " + in + ", %w: " + in +
      ", %out: " + out +
      ", %partial: memref<?xf32>, %count: memref<?xi32>, %m: index, %n: "
      "index, %k: index, %k_split: index) workgroup(%red: " +
      red + ", %last: " + flagType +
      ") kernel attributes {known_block_size = array<i32: 128, 1, 1>} {\n";
  std::string tid = w.let("gpu.thread_id x");
  std::string lane = w.rem(tid, w.index(kWarp)), warp = w.div(tid, w.index(kWarp));
  std::string g = w.div(lane, w.index(4)), tc = w.rem(lane, w.index(4));
  std::string nBlock = w.let("gpu.block_id x"), split = w.let("gpu.block_id y"),
              mBlock = w.let("gpu.block_id z");
  std::string splits = w.let("gpu.grid_dim y");
  std::string n0 = w.mul(nBlock, w.index(8 * kTiles));
  std::string m0 = w.mul(mBlock, w.index(16));
  auto last = [&](StringRef size, int64_t by) {
    return w.let("arith.subi " + size + ", " + w.index(by) + " : index");
  };
  std::string lastN = last("%n", 1), lastM = last("%m", 1);
  // Rows past the end are read clamped and never stored.
  std::vector<std::string> wBase;
  for (int64_t j = 0; j < kTiles; ++j)
    wBase.push_back(
        w.mul(w.min(w.add(n0, w.add(g, w.index(8 * j))), lastN), "%k"));
  std::array<std::string, 2> xBase = {
      w.mul(w.min(w.add(m0, g), lastM), "%k"),
      w.mul(w.min(w.add(m0, w.add(g, w.index(8))), lastM), "%k")};
  std::string lanePart = w.mul(tc, w.index(kVectorWidth));
  std::string kBegin = w.mul(split, "%k_split");
  std::string kEnd = w.min(w.add(kBegin, "%k_split"), "%k");
  // Pieces past the range are read at its last piece (a cache hit, not a
  // second read of w from DRAM) and count as zero.
  std::string lastK = last(kEnd, kVectorWidth);
  const int64_t span = kChunks * kWarp; // k per warp per step
  std::string start = w.add(kBegin, w.mul(warp, w.index(span)));
  std::string step = w.index(kWarps * span);
  // Chunk u of the step at `kk`: this lane's offset in a row.
  auto at = [&](StringRef kk, int64_t u) {
    return w.add(w.add(kk, lanePart), w.index(u * kWarp));
  };
  auto loadW = [&](StringRef kk) {
    std::vector<std::string> pieces;
    for (int64_t j = 0; j < kTiles; ++j)
      for (int64_t u = 0; u < kChunks; ++u)
        pieces.push_back(
            w.loadRaw("%w", w.add(wBase[j], w.min(at(kk, u), lastK))));
    return pieces;
  };
  std::vector<std::string> prefetched = loadW(start);
  w.line("nvvm.griddepcontrol wait");
  w.line("nvvm.griddepcontrol launch_dependents");

  std::string iterArgs, iterTypes;
  for (int64_t e = 0; e < kTiles * 4; ++e) {
    iterArgs +=
        (e ? ", %acc" : "%acc") + std::to_string(e) + " = " + w.f32("0.0");
    iterTypes += e ? ", f32" : "f32";
  }
  for (size_t p = 0; p < prefetched.size(); ++p) {
    iterArgs += ", %p" + std::to_string(p) + " = " + prefetched[p];
    iterTypes += ", " + raw;
  }
  std::string before = w.takeBody();
  const int64_t results = kTiles * 4 + kTiles * kChunks;
  std::string loopHeader = "    %loop:" + std::to_string(results) +
                           " = scf.for %kk = " + start + " to " + kEnd +
                           " step " + step + " iter_args(" + iterArgs +
                           ") -> (" + iterTypes + ") {\n";
  std::vector<std::string> next = loadW(w.add("%kk", step));
  // Four 16-bit pairs of a piece, as mma operands.
  auto pairs = [&](StringRef piece) {
    std::string words = w.let("vector.bitcast " + piece + " : " + raw +
                              " to vector<4xi32>");
    std::array<std::string, 4> result;
    for (int64_t i = 0; i < 4; ++i) {
      result[i] = w.let("vector.extract " + words + "[" + std::to_string(i) +
                        "] : i32 from vector<4xi32>");
      if (!bf16)
        result[i] =
            w.let("llvm.bitcast " + result[i] + " : i32 to " + operand);
    }
    return result;
  };
  std::vector<std::array<std::string, 2>> xs;
  for (int64_t u = 0; u < kChunks; ++u) {
    std::string offset = w.min(at("%kk", u), lastK);
    xs.push_back({w.loadRaw("%x", w.add(xBase[0], offset)),
                  w.loadRaw("%x", w.add(xBase[1], offset))});
  }
  std::string zeros = w.let("arith.constant dense<0.0> : " + raw);
  std::vector<std::string> acc;
  for (int64_t e = 0; e < kTiles * 4; ++e)
    acc.push_back("%acc" + std::to_string(e));
  const std::string types =
      bf16 ? "multiplicandAPtxType = #nvvm.mma_type<bf16>, "
             "multiplicandBPtxType = #nvvm.mma_type<bf16>, "
           : "";
  for (int64_t u = 0; u < kChunks; ++u) {
    std::string valid = w.cmp("ult", at("%kk", u), kEnd);
    std::array<std::string, 4> x0 = pairs(xs[u][0]), x1 = pairs(xs[u][1]);
    for (int64_t j = 0; j < kTiles; ++j) {
      // A piece past the end of the range is read clamped and counts as 0.
      std::array<std::string, 4> b = pairs(w.select(
          valid, "%p" + std::to_string(j * kChunks + u), zeros, raw));
      for (int64_t s = 0; s < 2; ++s) {
        std::string r = w.let(
            "nvvm.mma.sync A[" + x0[2 * s] + ", " + x1[2 * s] + ", " +
            x0[2 * s + 1] + ", " + x1[2 * s + 1] + "] B[" + b[2 * s] + ", " +
            b[2 * s + 1] + "] C[" + acc[4 * j] + ", " + acc[4 * j + 1] + ", " +
            acc[4 * j + 2] + ", " + acc[4 * j + 3] +
            "] {layoutA = #nvvm.mma_layout<row>, layoutB = "
            "#nvvm.mma_layout<col>, " +
            types + "shape = #nvvm.shape<m = 16, n = 8, k = 16>} : (" +
            operand + ", " + operand +
            ", f32) -> !llvm.struct<(f32, f32, f32, f32)>");
        for (int64_t e = 0; e < 4; ++e)
          acc[4 * j + e] =
              w.let("llvm.extractvalue " + r + "[" + std::to_string(e) +
                    "] : !llvm.struct<(f32, f32, f32, f32)>");
      }
    }
  }
  std::string yields, yieldTypes;
  for (const std::string &v : acc) {
    yields += (yields.empty() ? "" : ", ") + v;
    yieldTypes += yieldTypes.empty() ? "f32" : ", f32";
  }
  for (const std::string &v : next) {
    yields += ", " + v;
    yieldTypes += ", " + raw;
  }
  w.line("scf.yield " + yields + " : " + yieldTypes);
  std::string loopBody = w.takeBody();

  // The warps' tiles through shared memory: thread `tid` then owns values
  // tid + 128 i of the block's tile.
  for (int64_t e = 0; e < kTiles * 4; ++e)
    w.line("memref.store %loop#" + std::to_string(e) + ", %red[" +
           w.add(w.mul(warp, w.index(values)),
                 w.add(w.index(e * kWarp), lane)) +
           "] : " + red);
  w.line("gpu.barrier");
  std::vector<std::string> own, sums;
  for (int64_t i = 0; i < values / kBlockSize; ++i) {
    own.push_back(w.add(tid, w.index(i * kBlockSize)));
    std::string sum;
    for (int64_t wp = 0; wp < kWarps; ++wp) {
      std::string v = w.let("memref.load %red[" +
                            w.add(w.index(wp * values), own.back()) + "] : " +
                            red);
      sum = wp ? w.fbin("addf", sum, v) : v;
    }
    sums.push_back(sum);
  }
  // Stores value i of the tile (value (e, lane): row g or g + 8, column
  // 8j + 2t or 8j + 2t + 1 of mma tile j).
  auto store = [&](int64_t i, StringRef value) {
    std::string e = w.div(own[i], w.index(kWarp)),
                l = w.rem(own[i], w.index(kWarp));
    std::string c = w.rem(e, w.index(4)), j = w.div(e, w.index(4));
    std::string row = w.add(w.add(m0, w.div(l, w.index(4))),
                            w.mul(w.div(c, w.index(2)), w.index(8)));
    std::string col = w.add(
        w.add(n0, w.mul(j, w.index(8))),
        w.add(w.mul(w.rem(l, w.index(4)), w.index(2)), w.rem(c, w.index(2))));
    std::string inside = w.let("arith.andi " + w.cmp("ult", row, "%m") + ", " +
                               w.cmp("ult", col, "%n") + " : i1");
    std::string v = value.str();
    if (key.outputType != ElementType::F32)
      v = w.let("arith.truncf " + v + " : f32 to " +
                getName(key.outputType).str());
    w.line("scf.if " + inside + " {");
    w.line("memref.store " + v + ", %out[" + w.add(w.mul(row, "%n"), col) +
           "] : " + out);
    w.line("}");
  };
  std::string one = w.index(1), zero = w.index(0);
  std::string single = w.cmp("eq", splits, one);
  w.line("scf.if " + single + " {");
  for (size_t i = 0; i < sums.size(); ++i)
    store(i, sums[i]);
  w.line("} else {");
  std::string tile = w.add(w.mul(mBlock, w.let("gpu.grid_dim x")), nBlock);
  std::string tileBase = w.mul(w.mul(tile, splits), w.index(values));
  for (size_t i = 0; i < sums.size(); ++i)
    w.line("memref.store " + sums[i] + ", %partial[" +
           w.add(w.add(tileBase, w.mul(split, w.index(values))), own[i]) +
           "] : memref<?xf32>");
  // Release the partial tile, count it; the last block acquires them all.
  w.line("nvvm.memory.barrier #nvvm.mem_scope<gpu>");
  w.line("gpu.barrier");
  w.line("scf.if " + w.cmp("eq", tid, zero) + " {");
  std::string before1 = w.let("memref.atomic_rmw addi " + w.i32(1) +
                              ", %count[" + tile +
                              "] : (i32, memref<?xi32>) -> i32");
  std::string isLast = w.let(
      "arith.extui " +
      w.cmp("eq", w.let("arith.index_cast " + before1 + " : i32 to index"),
            last(splits, 1)) +
      " : i1 to i32");
  w.line("memref.store " + isLast + ", %last[" + zero + "] : " + flagType);
  w.line("}");
  w.line("gpu.barrier");
  std::string flag = w.let("memref.load %last[" + zero + "] : " + flagType);
  w.line("scf.if " + w.cmp("ne", flag, w.i32(0), "i32") + " {");
  w.line("nvvm.memory.barrier #nvvm.mem_scope<gpu>");
  // The splits in order, kUnroll loads in flight.
  std::string lastSplit = last(splits, 1), zeroF = w.f32("0.0");
  for (size_t i = 0; i < sums.size(); ++i) {
    std::string n = std::to_string(i);
    w.line("%total" + n + " = scf.for %s" + n + " = " + zero + " to " +
           splits + " step " + w.index(kUnroll) + " iter_args(%t" + n +
           " = " + zeroF + ") -> (f32) {");
    std::vector<std::string> loaded, inRange;
    for (int64_t u = 0; u < kUnroll; ++u) {
      std::string s = w.add("%s" + n, w.index(u));
      inRange.push_back(w.cmp("ult", s, splits));
      loaded.push_back(w.let(
          "memref.load %partial[" +
          w.add(w.add(tileBase, w.mul(w.min(s, lastSplit), w.index(values))),
                own[i]) +
          "] : memref<?xf32>"));
    }
    std::string t = "%t" + n;
    for (int64_t u = 0; u < kUnroll; ++u)
      t = w.fbin("addf", t, w.select(inRange[u], loaded[u], zeroF, "f32"));
    w.line("scf.yield " + t + " : f32");
    w.line("}");
    store(i, "%total" + n);
  }
  w.line("scf.if " + w.cmp("eq", tid, zero) + " {");
  w.line("memref.store " + w.i32(0) + ", %count[" + tile +
         "] : memref<?xi32>");
  w.line("}");
  w.line("}");
  w.line("}");
  return w.finish(header,
                  before + loopHeader + loopBody + "    }\n" + w.takeBody());
}

} // namespace mlir::kvc::kernels::detail
