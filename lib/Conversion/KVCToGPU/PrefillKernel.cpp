//===- PrefillKernel.cpp - causal flash attention on tensor cores ---------===//
//
// Hopper warpgroup MMA (wgmma) on swizzled tiles in shared memory, loaded
// by the tensor memory accelerator.
//
//===----------------------------------------------------------------------===//
#include "TensorCore.h"
#include "Warpgroup.h"

#include <array>
#include <vector>

using namespace mlir;
using namespace mlir::kvc::kernels;

namespace mlir::kvc::kernels::detail {

/// Causal flash attention over whole sequences on the tensor cores (wgmma
/// m64nNk16, f16 or bf16 operands, f32 accumulation): a block of one
/// warpgroup takes 64 query rows of one head and walks 64-row key/value
/// tiles up to the diagonal with an online softmax in registers. S = q k^T
/// reads q and k from shared memory; O += P v takes P from the registers S
/// left it in (Warpgroup.h has the layouts). Thread 0 loads the tiles with
/// the tensor memory accelerator (one mbarrier each for q, k and v, from
/// tensor maps the runtime writes to `maps`): the next key tile as soon as
/// S is done, the next value tile as soon as O is, so the other warps never
/// compute a load address or wait at a barrier for one.
std::string prefillKernel(const KernelKey &key) {
  Writer w(key.elementType);
  const std::string m = memrefOf(key.elementType);
  const int64_t d = key.headDim, g = key.group;
  const int64_t tile = 64;
  const int64_t kSteps = d / 16, dTiles = d / 8, keyTiles = tile / 8;
  TensorCore core(w, tile, d);
  Warpgroup wg(w, tile, d);
  const std::string &smemType = wg.smemType;
  const std::string aligned = " {llvm.align = 1024 : i64}";
  const std::string barriers = "memref<3xi64, #gpu.address_space<workgroup>>";
  std::string header =
      "  gpu.func @" + getPrefillName(key) + "(%maps: memref<?xi64>, %out: " +
      m + ", %seq: index, %scale: f32) workgroup(%sq: " + smemType + aligned +
      ", %sk: " + smemType + aligned + ", %sv: " + smemType + aligned +
      ", %bars: " + barriers + kAligned +
      // 3 blocks per SM (148 registers, no spills); held to 128 registers
      // for 4 it spilled and ran 5% slower (bench/RESULTS.md).
      ") kernel attributes {known_block_size = array<i32: 128, 1, 1>, "
      "nvvm.minctasm = 3 : i32} {\n";
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
  std::string qHeadAt = w.add(w.mul(b, nh), h);
  std::string qBase = w.mul(w.mul(qHeadAt, "%seq"), w.index(d));
  std::string m0 = w.mul(bx, w.index(tile));
  auto i32 = [&](StringRef x) {
    return w.let("arith.index_cast " + x + " : index to i32");
  };
  // Tensor-map coordinates: the head (of B * heads) and the row in it.
  std::string qHead = i32(qHeadAt);
  std::string kvHead = i32(w.add(w.mul(b, nkv), hk));
  // The tensor maps of q, k and v (Warpgroup::loadTile): 128 bytes each.
  std::string mapsAt = w.let(
      "arith.index_cast " +
      w.let("memref.extract_aligned_pointer_as_index %maps : "
            "memref<?xi64> -> index") +
      " : index to i64");
  auto mapOf = [&](int64_t i) {
    return i ? w.let("arith.addi " + mapsAt + ", " + w.i64(i * 128) + " : i64")
             : mapsAt;
  };
  std::string qMap = mapOf(0), kMap = mapOf(1), vMap = mapOf(2);
  std::string sqAt = sharedAddress(w, "%sq", smemType);
  std::string skAt = sharedAddress(w, "%sk", smemType);
  std::string svAt = sharedAddress(w, "%sv", smemType);
  std::string qBar = sharedAddress(w, "%bars", barriers);
  std::string kBar = sharedAddress(w, "%bars", barriers, 8);
  std::string vBar = sharedAddress(w, "%bars", barriers, 16);
  std::string first = w.cmp("eq", tid, w.index(0));
  // Thread 0 loads the k or v tile after the one at n0 once every warp is
  // past the product that read that one.
  auto loadNext = [&](StringRef map, StringRef n0, StringRef dst,
                      StringRef bar) {
    w.line("gpu.barrier");
    w.line("scf.if " + first + " {");
    wg.loadTile(map, kvHead, i32(w.add(n0, w.index(tile))), dst, bar);
    w.line("}");
  };
  // Tile n's loads complete phase n % 2 of their barrier.
  auto parityOf = [&](StringRef n0) {
    return w.let("arith.index_cast " +
                 w.rem(w.div(n0, w.index(tile)), w.index(2)) +
                 " : index to i32");
  };
  std::string qDesc = wg.descriptor("%sq", true);
  std::string kDesc = wg.descriptor("%sk", true);
  std::string vDesc = wg.descriptor("%sv", false);
  std::string warpRow = w.mul(warp, w.index(16));
  std::string kvEnd = w.min("%seq", w.add(m0, w.index(tile)));
  std::string scale2 = w.fbin("mulf", "%scale", w.f32("1.44269504"));
  std::string minusInf = w.f32("-1.0e+30"), zero = w.f32("0.0");
  std::string rowA = w.add(w.add(m0, warpRow), gr);
  std::string rowB = w.add(rowA, w.index(8));
  int64_t results = dTiles * 4 + 4;
  std::string iterTypes;
  for (int64_t i = 0; i < results; ++i)
    iterTypes += (i ? ", " : "") + std::string("f32");
  // Thread 0 sets up the barriers and loads the query tile and the first
  // key and value tiles.
  w.line("scf.if " + first + " {");
  for (const std::string &bar : {qBar, kBar, vBar})
    initBarrier(w, bar);
  fenceBarrierInit(w);
  w.line("}");
  w.line("gpu.barrier");
  w.line("scf.if " + first + " {");
  wg.loadTile(qMap, qHead, i32(m0), sqAt, qBar);
  wg.loadTile(kMap, kvHead, w.i32(0), skAt, kBar);
  wg.loadTile(vMap, kvHead, w.i32(0), svAt, vBar);
  w.line("}");
  waitBarrier(w, qBar, w.i32(0));
  std::string before = w.takeBody();

  // One key/value tile: K(n+1) streams in while the softmax and O += P.V(n)
  // run, V(n+1) while S(n+1) and its softmax do. Tiles left of the
  // diagonal need no mask; the diagonal tile, last, masks keys after each
  // row and past the end.
  auto emitTile = [&](StringRef name, bool diagonal) {
    std::string prefix = "%" + name.str();
    std::vector<std::string> o(dTiles * 4);
    for (int64_t i = 0; i < dTiles * 4; ++i)
      o[i] = prefix + "o" + std::to_string(i);
    std::string ma = prefix + "ma", mb = prefix + "mb", la = prefix + "la",
                lb = prefix + "lb", n0 = prefix + "n0";
    std::string parity = parityOf(n0);
    waitBarrier(w, kBar, parity);
    wg.fence();
    std::vector<std::string> s(keyTiles * 4, zero);
    for (int64_t ks = 0; ks < kSteps; ++ks)
      s = wg.mma(tile, s, {wg.slice(qDesc, ks, true)},
                 wg.slice(kDesc, ks, true), false, ks > 0);
    wg.commitAndWait();
    if (!diagonal)
      loadNext(kMap, n0, skAt, kBar);
    // Scale (and mask), running max per row.
    std::vector<std::array<std::string, 4>> sv(keyTiles);
    std::string maxA = minusInf, maxB = minusInf;
    for (int64_t nt = 0; nt < keyTiles; ++nt)
      for (int64_t e = 0; e < 4; ++e) {
        sv[nt][e] = w.fbin("mulf", s[nt * 4 + e], scale2);
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
    auto [mA, mB, alphaA, alphaB, lA, lB] =
        core.softmaxStep(maxA, maxB, ma, mb, la, lb);
    // P as A operands: registers (row g, keys 2t..2t+1) and (row g+8, ...)
    // of each 8-key tile.
    std::vector<std::array<std::string, 2>> pRegs(keyTiles);
    for (int64_t nt = 0; nt < keyTiles; ++nt)
      for (int64_t half = 0; half < 2; ++half) {
        std::array<std::string, 2> x;
        for (int64_t e = 0; e < 2; ++e) {
          x[e] = w.exp2(w.fbin("subf", sv[nt][2 * half + e], half ? mB : mA));
          std::string &l = half ? lB : lA;
          l = w.fbin("addf", l, x[e]);
        }
        pRegs[nt][half] = core.operandOf(x[0], x[1]);
      }
    waitBarrier(w, vBar, parity);
    std::vector<std::string> acc(dTiles * 4);
    for (int64_t i = 0; i < dTiles * 4; ++i)
      acc[i] = w.fbin("mulf", o[i], i % 4 < 2 ? alphaA : alphaB);
    wg.fence();
    for (int64_t kk = 0; kk < keyTiles / 2; ++kk)
      acc = wg.mma(d, acc,
                   {pRegs[2 * kk][0], pRegs[2 * kk][1], pRegs[2 * kk + 1][0],
                    pRegs[2 * kk + 1][1]},
                   wg.slice(vDesc, kk, false), true, true);
    wg.commitAndWait();
    if (!diagonal)
      loadNext(vMap, n0, svAt, vBar);
    std::vector<std::array<std::string, 4>> tiles(dTiles);
    for (int64_t j = 0; j < dTiles; ++j)
      for (int64_t e = 0; e < 4; ++e)
        tiles[j][e] = acc[j * 4 + e];
    core.yieldTiles(tiles, mA, mB, lA, lB, iterTypes);
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
      out = w.let("arith.truncf " + out + " : vector<2xf32> to " + core.pair);
      std::string at = w.add(
          qBase, w.add(w.mul(row, w.index(d)),
                       w.add(w.index(j * 8), w.mul(tc, w.index(2)))));
      w.line("vector.store " + out + ", %out[" + at + "] : " + m + ", " +
             core.pair);
    }
    w.line("}");
  }
  return w.finish(header, before + loop + w.takeBody());
}

} // namespace mlir::kvc::kernels::detail
