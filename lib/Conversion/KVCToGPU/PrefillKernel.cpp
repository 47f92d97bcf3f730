//===- PrefillKernel.cpp - causal flash attention on tensor cores ---------===//
//
// mma.sync m16n8k16 through nvvm.mma.sync, ldmatrix from padded shared
// memory, cp.async streaming of K and V.
//
//===----------------------------------------------------------------------===//
#include "KernelWriter.h"

#include <array>
#include <vector>

using namespace mlir;
using namespace mlir::kvc::kernels;

namespace mlir::kvc::kernels::detail {

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

} // namespace mlir::kvc::kernels::detail
