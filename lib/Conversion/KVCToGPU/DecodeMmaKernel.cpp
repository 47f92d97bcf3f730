//===- DecodeMmaKernel.cpp - split-KV decode attention on tensor cores ----===//
//
// The split kernel of flash decoding with its products on the tensor cores
// (mma.sync m16n8k16): the query rows of a kv head (a group's heads times
// the new rows, up to 16) are the M dimension, so a block reads each key
// and value once for all of them. A block stages 64-row key and value
// tiles of its split into shared memory with cp.async; warp w takes rows
// 16w..16w+15 of each tile with its own online softmax; at the end the
// warps merge in shared memory into one result per split (with 4 per
// split, one per warp, the combine read 4 times as much: TinyLlama B=16
// 1.69 -> 1.62 ms/step). Where one thread-block cluster holds all splits,
// its blocks merge those through distributed shared memory and write the
// normalized output (TinyLlama B=16 1.60 -> 1.53); otherwise each writes a
// partial for the combine kernel. The queries stay in shared memory and
// are read again for each tile: held in registers they took 32 more per
// thread at head dim 128 (164, 3 blocks per SM); now 128 and 4 blocks.
// Before `griddepcontrol.wait` a block asks L2 for its split's first keys
// and values (prefetchSplit), so that they stream in while the kernels
// ahead (the append, the projection before it) finish: TinyLlama B=1
// 1.246-1.269 -> 1.230-1.233 ms/step on the H100 (B=16 unchanged). The
// CUDA-core split kernel with the same prefetch was slower (B1 L4096 14.0
// -> 14.8-15.1 us in the bench's graph of back-to-back decodes; not
// profiled), so it has none.
//
//===----------------------------------------------------------------------===//
#include "Bulk.h"
#include "Cluster.h"
#include "TensorCore.h"

#include <vector>

using namespace mlir;
using namespace mlir::kvc::kernels;

namespace mlir::kvc::kernels::detail {

namespace {
/// Cache bytes of keys and of values a decode split prefetches.
constexpr int64_t kSplitPrefetchBytes = 16384;

/// A decode split's head start, written before `griddepcontrol.wait`: thread
/// `tid` 0 prefetches into L2 the first rows of the split's keys and values
/// (rows [`start`, `start` + %split_len) of the head whose row 0 is element
/// `head` of the kernel's %k and %v, at most kSplitPrefetchBytes of each,
/// none past %capacity), so that DRAM streams them while the kernels ahead
/// finish.
/// Safe whatever those kernels write: L2 is where global memory is
/// coherent, and a prefetch fills no L1 line, so the loads after the wait
/// still see their writes.
void prefetchSplit(Writer &w, StringRef tid, StringRef head, StringRef start,
                   int64_t headDim) {
  const int64_t bytes = 2, rowBytes = headDim * bytes; // f16 and bf16
  std::string left = w.let("arith.subi %capacity, " + start + " : index");
  std::string rows =
      w.min(w.min("%split_len", left), w.index(kSplitPrefetchBytes / rowBytes));
  std::string size = w.mul(rows, w.index(rowBytes));
  std::string go = w.let("arith.andi " + w.cmp("eq", tid, w.index(0)) + ", " +
                         w.cmp("sgt", size, w.index(0)) + " : i1");
  w.line("scf.if " + go + " {");
  std::string offset = w.mul(w.add(head, w.mul(start, w.index(headDim))),
                             w.index(bytes));
  std::string size32 = w.let("arith.index_cast " + size + " : index to i32");
  for (StringRef buffer : {"%k", "%v"}) {
    std::string base = w.let("memref.extract_aligned_pointer_as_index " +
                             buffer + " : " + memrefOf(w.type) + " -> index");
    std::string at = w.let("arith.index_cast " + w.add(base, offset) +
                           " : index to i64");
    prefetchL2(w, at, size32);
  }
  w.line("}");
}

} // namespace

std::string decodeMmaKernel(const KernelKey &key) {
  Writer w(key.elementType);
  const std::string m = memrefOf(key.elementType);
  const int64_t d = key.headDim, g = key.group;
  const int64_t tile = 64, kSteps = d / 16, dTiles = d / 8;
  // Key and value tiles; the 16 query rows, padded alike.
  TensorCore core(w, tile, d), queries(w, 16, d);
  const std::string &smemType = core.smemType, &queryType = queries.smemType;
  // The warps' merge: their row maxima, then the 16 rows' sums and outputs.
  const std::string maxType = "memref<" + std::to_string(kWarps * 16) +
                              "xf32, #gpu.address_space<workgroup>>",
                    rowType = "memref<16xf32, #gpu.address_space<workgroup>>",
                    outType = "memref<16x" + std::to_string(d) +
                              "xf32, #gpu.address_space<workgroup>>";
  std::string header =
      "  gpu.func @" + getDecodeMmaName(key) + "(%q: " + m + ", %k: " + m +
      ", %v: " + m +
      ", %lengths: memref<?xi32>, %positions: memref<?xi32>, %po: "
      "memref<?xf32>, %pml: memref<?xf32>, %rows: index, %capacity: index, "
      "%split_len: index, %num_splits: index, %scale: f32, %out: " + m +
      ", %heads_last: index) workgroup(%sk: " + smemType + kAligned +
      ", %sv: " + smemType + kAligned + ", %sq: " + queryType + kAligned +
      ", %so: " + outType + kAligned + ", %smax: " + maxType +
      ", %sblockmax: " + rowType + ", %ssum: " + rowType +
      ") kernel attributes {known_block_size = array<i32: 128, 1, 1>, "
      "nvvm.minctasm = 4 : i32} {\n";
  std::string split = w.let("gpu.block_id x"), yid = w.let("gpu.block_id y"),
              b = w.let("gpu.block_id z"), ny = w.let("gpu.grid_dim y"),
              tid = w.let("gpu.thread_id x");
  std::string lane = w.rem(tid, w.index(kWarp)), warp = w.div(tid, w.index(kWarp));
  std::string gr = w.div(lane, w.index(4)), tc = w.rem(lane, w.index(4));
  // Query rows r of a kv head: head hk * G + r % G, new row r / G.
  std::string qRows = w.mul(w.index(g), "%rows");
  std::string chunks = w.div(w.add(qRows, w.index(15)), w.index(16));
  std::string hk = w.div(yid, chunks), chunk = w.rem(yid, chunks);
  std::string kvHeads = w.div(ny, chunks);
  std::string qHeads = w.mul(kvHeads, w.index(g));
  std::string r0 = w.mul(chunk, w.index(16));
  std::string lastQuery = w.let("arith.subi " + qRows + ", " + w.index(1) +
                                " : index");
  // Query row r0 + r, past the last one the last.
  auto clamped = [&](StringRef r) { return w.min(w.add(r0, r), lastQuery); };
  // Its row of [B, Hq, rows, D].
  auto queryRow = [&](StringRef r) {
    std::string rr = clamped(r);
    std::string head = w.add(w.mul(hk, w.index(g)), w.rem(rr, w.index(g)));
    return w.add(w.mul(w.add(w.mul(b, qHeads), head), "%rows"),
                 w.div(rr, w.index(g)));
  };
  std::string start = w.mul(split, "%split_len");
  std::string kvBase = w.mul(
      w.mul(w.add(w.mul(b, kvHeads), hk), "%capacity"), w.index(d));
  prefetchSplit(w, tid, kvBase, start, d);
  w.line("nvvm.griddepcontrol wait");
  w.line("nvvm.griddepcontrol launch_dependents");
  // Keys row r sees: [start, min(start + split_len, pos + t + 1, length)).
  std::string pos = w.loadIndex("%positions", b), len = w.loadIndex("%lengths", b);
  std::string splitEnd = w.add(start, "%split_len");
  auto boundOf = [&](StringRef r) {
    std::string t = w.div(clamped(r), w.index(g));
    return w.min(w.min(w.add(w.add(pos, t), w.index(1)), len), splitEnd);
  };
  std::string boundA = boundOf(gr), boundB = boundOf(w.add(gr, w.index(8)));
  std::string end = boundOf(w.index(15));
  // Rows past the end repeat the last one (row 0 if there is none: the
  // first tile is read before the loop knows it has no rows).
  std::string lastRow = w.let(
      "arith.maxsi " +
      w.let("arith.subi " + end + ", " + w.index(1) + " : index") + ", " +
      w.index(0) + " : index");
  std::string scale2 = w.fbin("mulf", "%scale", w.f32("1.44269504"));
  std::string minusInf = w.f32("-1.0e+30"), zero = w.f32("0.0");
  std::string warpKeys = w.mul(warp, w.index(16));

  // The first key tile is on its way before the loop; in the loop the
  // values stream in while S is computed, and the next keys while O is.
  core.stage("%k", kvBase, start, lastRow, "%sk", tid, true);
  // The 16 query rows into %sq while the first key tile is on its way;
  // each tile reads them back as A operands: matrices (rows 0-7, k 0-7),
  // (rows 8-15, k 0-7), (rows 0-7, k 8-15), (rows 8-15, k 8-15).
  const int64_t pieces = d / kVectorWidth;
  for (int64_t c = 0; c < (16 * pieces + kBlockSize - 1) / kBlockSize; ++c) {
    std::string idx = w.add(w.index(c * kBlockSize), tid);
    std::string row = w.div(idx, w.index(pieces));
    std::string col = w.mul(w.rem(idx, w.index(pieces)), w.index(kVectorWidth));
    w.line("scf.if " + w.cmp("ult", idx, w.index(16 * pieces)) + " {");
    std::string at = w.add(w.mul(queryRow(row), w.index(d)), col);
    w.line("vector.store " + w.loadRaw("%q", at) + ", %sq[" + row + ", " +
           col + "] : " + queryType + ", vector<8x" + core.t + ">");
    w.line("}");
  }
  w.line("gpu.barrier");
  TensorCore::MatrixLane mat = core.matrixLane(lane);

  const int64_t results = dTiles * 4 + 4;
  std::string iterArgs, iterTypes;
  for (int64_t i = 0; i < results; ++i) {
    std::string init = i < dTiles * 4 ? zero : i < dTiles * 4 + 2 ? minusInf
                                                                  : zero;
    iterArgs += (i ? ", %x" : "%x") + std::to_string(i) + " = " + init;
    iterTypes += (i ? ", " : "") + std::string("f32");
  }
  w.line("%loop:" + std::to_string(results) + " = scf.for %n0 = " + start +
         " to " + end + " step " + w.index(tile) + " iter_args(" + iterArgs +
         ") -> (" + iterTypes + ") {");
  std::string valuesReady =
      core.stage("%v", kvBase, "%n0", lastRow, "%sv", tid, true);
  w.line("nvgpu.device_async_wait " + valuesReady + " {numGroups = 1 : i32}");
  w.line("gpu.barrier");
  // S = Q K^T for the warp's 16 keys: two 8-key tiles.
  std::array<std::array<std::string, 4>, 2> sAcc;
  for (auto &acc : sAcc)
    acc = {zero, zero, zero, zero};
  for (int64_t ks = 0; ks < kSteps; ++ks) {
    auto qf = queries.ldmatrix("%sq", w.add(mat.low, mat.row),
                               w.add(w.index(ks * 16), mat.high), false);
    auto kf = core.ldmatrix("%sk", w.add(w.add(warpKeys, mat.high), mat.row),
                            w.add(w.index(ks * 16), mat.low), false);
    core.mma(qf, kf[0], kf[1], sAcc[0]);
    core.mma(qf, kf[2], kf[3], sAcc[1]);
  }
  std::string ma = "%x" + std::to_string(dTiles * 4),
              mb = "%x" + std::to_string(dTiles * 4 + 1),
              la = "%x" + std::to_string(dTiles * 4 + 2),
              lb = "%x" + std::to_string(dTiles * 4 + 3);
  std::array<std::array<std::string, 4>, 2> sv, visible;
  std::string maxA = minusInf, maxB = minusInf;
  for (int64_t nt = 0; nt < 2; ++nt)
    for (int64_t e = 0; e < 4; ++e) {
      std::string col = w.add(
          w.add("%n0", w.add(warpKeys, w.index(nt * 8 + e % 2))),
          w.mul(tc, w.index(2)));
      visible[nt][e] = w.cmp("ult", col, e < 2 ? boundA : boundB);
      sv[nt][e] = w.select(visible[nt][e],
                           w.fbin("mulf", sAcc[nt][e], scale2), minusInf,
                           "f32");
      std::string &mx = e < 2 ? maxA : maxB;
      mx = w.fbin("maximumf", mx, sv[nt][e]);
    }
  auto [mA, mB, alphaA, alphaB, lA, lB] =
      core.softmaxStep(maxA, maxB, ma, mb, la, lb);
  // P as A operands: (row g, keys 2t..2t+1) and (row g+8, ...) of each
  // 8-key tile; invisible keys weigh zero.
  std::array<std::array<std::string, 2>, 2> pRegs;
  for (int64_t nt = 0; nt < 2; ++nt)
    for (int64_t half = 0; half < 2; ++half) {
      std::array<std::string, 2> p;
      for (int64_t e = 0; e < 2; ++e) {
        int64_t i = 2 * half + e;
        p[e] = w.select(visible[nt][i],
                        w.exp2(w.fbin("subf", sv[nt][i], half ? mB : mA)),
                        zero, "f32");
        std::string &l = half ? lB : lA;
        l = w.fbin("addf", l, p[e]);
      }
      pRegs[nt][half] = core.operandOf(p[0], p[1]);
    }
  w.line("nvgpu.device_async_wait " + valuesReady + " {numGroups = 0 : i32}");
  w.line("gpu.barrier");
  // The next tile's keys; past the last tile, copies of no bytes (the
  // kernel's exit waits for every copy in flight).
  std::string next = w.add("%n0", w.index(tile));
  core.stage("%k", kvBase, next, lastRow, "%sk", tid, true,
             w.select(w.cmp("slt", next, end), w.index(8), w.index(0),
                      "index"));
  std::vector<std::array<std::string, 4>> acc(dTiles);
  for (int64_t j = 0; j < dTiles; ++j)
    for (int64_t e = 0; e < 4; ++e)
      acc[j][e] = w.fbin("mulf", "%x" + std::to_string(j * 4 + e),
                         e < 2 ? alphaA : alphaB);
  std::array<std::string, 4> pa = {pRegs[0][0], pRegs[0][1], pRegs[1][0],
                                   pRegs[1][1]};
  core.addPV("%sv", warpKeys, pa, acc, mat);
  // The tiles are read: the next iteration may stage over them.
  w.line("gpu.barrier");
  core.yieldTiles(acc, mA, mB, lA, lB, iterTypes);
  w.line("}");

  // Copies still in flight are done before the exit (the first key tile's,
  // where the split has no rows).
  w.line("nvvm.cp.async.wait.group 0");
  // The 4 warps saw the same query rows over different keys: merge them in
  // the block. Each warp's row maxima to %smax, then every warp rescales its
  // output and sum to the rows' maxima and adds them into %so / %ssum.
  std::array<std::string, 2> rowOf = {gr, w.add(gr, w.index(8))};
  std::array<std::string, 2> sumOf;
  auto rowMax = [&](StringRef r) {
    std::string m = minusInf;
    for (int64_t wp = 0; wp < kWarps; ++wp)
      m = w.fbin("maximumf", m,
                 w.let("memref.load %smax[" + w.add(w.index(wp * 16), r) +
                       "] : " + maxType));
    return m;
  };
  std::string leader = w.cmp("eq", tc, w.index(0));
  w.line("scf.if " + leader + " {");
  for (int64_t half = 0; half < 2; ++half)
    w.line("memref.store %loop#" + std::to_string(dTiles * 4 + half) +
           ", %smax[" + w.add(warpKeys, rowOf[half]) + "] : " + maxType);
  w.line("}");
  w.line("gpu.barrier");
  std::array<std::string, 2> scaleOf, maxOf;
  for (int64_t half = 0; half < 2; ++half) {
    std::string sum = "%loop#" + std::to_string(dTiles * 4 + 2 + half);
    for (int64_t off : {1, 2})
      sum = w.fbin("addf", sum, w.shuffle(sum, off, false));
    maxOf[half] = rowMax(rowOf[half]);
    scaleOf[half] = w.exp2(w.fbin(
        "subf", "%loop#" + std::to_string(dTiles * 4 + half), maxOf[half]));
    sumOf[half] = w.fbin("mulf", sum, scaleOf[half]);
  }
  auto scaled = [&](int64_t j, int64_t half) {
    std::string v = w.let(
        "vector.from_elements %loop#" + std::to_string(j * 4 + 2 * half) +
        ", %loop#" + std::to_string(j * 4 + 2 * half + 1) + " : vector<2xf32>");
    return w.fbin("mulf", v,
                  w.let("vector.broadcast " + scaleOf[half] +
                        " : f32 to vector<2xf32>"),
                  "vector<2xf32>");
  };
  auto column = [&](int64_t j) {
    return w.add(w.index(j * 8), w.mul(tc, w.index(2)));
  };
  // Warp 0 stores, then warps 1..3 in turn add theirs (with shared-memory
  // f32 atomics instead, TinyLlama took 1.61 against 1.33 ms/step at B=1).
  for (int64_t wp = 0; wp < kWarps; ++wp) {
    w.line("scf.if " + w.cmp("eq", warp, w.index(wp)) + " {");
    for (int64_t half = 0; half < 2; ++half) {
      for (int64_t j = 0; j < dTiles; ++j) {
        std::string at = "%so[" + rowOf[half] + ", " + column(j) + "]";
        std::string v = scaled(j, half);
        if (wp)
          v = w.fbin("addf", v,
                     w.let("vector.load " + at + " : " + outType +
                           ", vector<2xf32>"),
                     "vector<2xf32>");
        w.line("vector.store " + v + ", " + at + " : " + outType +
               ", vector<2xf32>");
      }
      w.line("scf.if " + leader + " {");
      std::string at = "%ssum[" + rowOf[half] + "]";
      std::string sum = sumOf[half];
      if (wp)
        sum = w.fbin("addf", sum, w.let("memref.load " + at + " : " + rowType));
      else
        w.line("memref.store " + maxOf[half] + ", %sblockmax[" + rowOf[half] +
               "] : " + rowType);
      w.line("memref.store " + sum + ", " + at + " : " + rowType);
      w.line("}");
    }
    w.line("}");
    w.line("gpu.barrier");
  }
  // With all splits of its rows in one cluster, the cluster's blocks merge
  // their results in shared memory and write the normalized output, heads
  // last if asked (no combine). Otherwise each block writes its partial
  // (split s of num_splits) for the combine kernel.
  const int64_t items = 16 * pieces, passes = (items + kBlockSize - 1) / kBlockSize;
  std::string rank = clusterRank(w), size = clusterSize(w);
  auto rowItem = [&](StringRef idx, auto body) {
    std::string r = w.div(idx, w.index(pieces));
    std::string col = w.mul(w.rem(idx, w.index(pieces)), w.index(kVectorWidth));
    w.line("scf.if " +
           w.let("arith.andi " + w.cmp("ult", idx, w.index(items)) + ", " +
                 w.cmp("ult", w.add(r0, r), qRows) + " : i1") +
           " {");
    body(r, col);
    w.line("}");
  };
  w.line("scf.if " + w.cmp("eq", size, w.let("gpu.grid_dim x")) + " {");
  clusterBarrier(w);
  for (int64_t c = 0; c < passes; ++c) {
    std::string idx = w.add(
        w.mul(w.add(w.mul(w.index(c), size), rank), w.index(kBlockSize)), tid);
    rowItem(idx, [&](StringRef r, StringRef col) {
      RowState s = mergeSources(
          w, w.index(0), w.index(1), size, [&](StringRef from) {
            auto at = [&](StringRef buffer, StringRef type, StringRef i,
                          StringRef loaded) {
              return loadRemote(w, remoteBuffer(w, buffer, type, from), i,
                                loaded);
            };
            return RowState{
                at("%sblockmax", rowType, r, "f32"),
                at("%ssum", rowType, r, "f32"),
                at("%so", outType, w.add(w.mul(r, w.index(d)), col),
                   "vector<8xf32>")};
          });
      // A row that attended to nothing comes out zero.
      std::string positive =
          w.let("arith.cmpf ogt, " + s.sum + ", " + zero + " : f32");
      std::string inverse = w.select(
          positive, w.fbin("divf", w.f32("1.0"), s.sum), zero, "f32");
      std::string rr = clamped(r);
      std::string head = w.add(w.mul(hk, w.index(g)), w.rem(rr, w.index(g)));
      std::string headsLast = w.add(
          w.mul(w.add(w.mul(b, "%rows"), w.div(rr, w.index(g))), qHeads),
          head);
      std::string outRow = w.select(w.cmp("ne", "%heads_last", w.index(0)),
                                    headsLast, queryRow(r), "index");
      w.storeRow(w.fbin("mulf", s.acc, w.splat(inverse), "vector<8xf32>"),
                 "%out", w.add(w.mul(outRow, w.index(d)), col));
    });
  }
  // The other blocks read this one's shared memory until here.
  clusterBarrier(w);
  w.line("} else {");
  for (int64_t c = 0; c < passes; ++c)
    rowItem(w.add(w.index(c * kBlockSize), tid), [&](StringRef r,
                                                     StringRef col) {
      std::string entry = w.add(w.mul(queryRow(r), "%num_splits"), split);
      w.line("vector.store " +
             w.let("vector.load %so[" + r + ", " + col + "] : " + outType +
                   ", vector<8xf32>") +
             ", %po[" + w.add(w.mul(entry, w.index(d)), col) +
             "] : memref<?xf32>, vector<8xf32>");
      w.line("scf.if " + w.cmp("eq", col, w.index(0)) + " {");
      std::string at = w.mul(entry, w.index(2));
      w.line("memref.store " +
             w.let("memref.load %sblockmax[" + r + "] : " + rowType) +
             ", %pml[" + at + "] : memref<?xf32>");
      w.line("memref.store " +
             w.let("memref.load %ssum[" + r + "] : " + rowType) + ", %pml[" +
             w.add(at, w.index(1)) + "] : memref<?xf32>");
      w.line("}");
    });
  w.line("}");
  return w.finish(header);
}

} // namespace mlir::kvc::kernels::detail
