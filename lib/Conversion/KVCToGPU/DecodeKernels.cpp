//===- DecodeKernels.cpp - split-KV decode attention ----------------------===//
//
// Flash decoding: a split kernel (online softmax over a range of cache rows
// for the query heads of one kv head) and a combine kernel.
//
//===----------------------------------------------------------------------===//
#include "KernelWriter.h"

#include <vector>

using namespace mlir;
using namespace mlir::kvc::kernels;

namespace mlir::kvc::kernels::detail {

std::string decodeSplitKernel(const KernelKey &key, bool single) {
  // Cache rows a thread takes per step: kUnroll (loads in flight for long
  // caches) or one (the shortest chain of updates, for short ones).
  const int64_t unroll = single ? 1 : kUnroll;
  Writer w(key.elementType);
  std::string m = memrefOf(key.elementType);
  const int64_t d = key.headDim, g = key.group, q = getQueriesPerBlock(g);
  const int64_t lanes = d / kVectorWidth, slots = kWarp / lanes;
  const std::string vf = "vector<8xf32>";
  // 128 registers, 4 blocks per SM, without spills for 16-bit caches
  // (ptxas alone takes 141-144; f32 caches would spill).
  const char *occupancy = ", nvvm.minctasm = 4 : i32";
  std::string header =
      "  gpu.func @" + getDecodeSplitName(key, single) + "(%q: " + m +
      ", %k: " + m +
      ", %v: " + m +
      ", %lengths: memref<?xi32>, %positions: memref<?xi32>, %po: "
      "memref<?xf32>, %pml: memref<?xf32>, %rows: index, %capacity: index, "
      "%split_len: index, %num_splits: index, %scale: f32) workgroup(%sml: "
      "memref<" +
      std::to_string(kWarps * q * 2) +
      "xf32, #gpu.address_space<workgroup>>" + kAligned + ", %sacc: memref<" +
      std::to_string(kWarps * q * d) + "xf32, #gpu.address_space<workgroup>>" +
      kAligned + ") kernel attributes "
      "{known_block_size = array<i32: 128, 1, 1>" +
      std::string(key.elementType == ElementType::F32 ? "" : occupancy) +
      "} {\n";
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
  std::string step = w.index(kWarps * slots * unroll);
  std::string minusInf = w.f32("-1.0e+30"), zero = w.f32("0.0");
  std::string zeros = w.let("arith.constant dense<0.0> : " + vf);

  // The loop over this split's keys: `unroll` rows per thread per step.
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
  for (int64_t u = 0; u < unroll; ++u) {
    std::string j = w.add(w.add("%j0", w.mul(w.index(u), stride)), slot);
    valid.push_back(w.cmp("slt", j, end));
    std::string row = w.select(valid.back(), j, start, "index");
    std::string at = w.add(kvBase, w.mul(row, w.index(d)));
    keys.push_back(w.loadRaw("%k", at));
    values.push_back(w.loadRaw("%v", at));
  }
  // Online softmax over the step's rows at once: the scores of all rows
  // first (each key widened as it is used), one rescale of the running sum
  // and output per step instead of per row, then each value widened once
  // for all query rows.
  std::vector<std::vector<std::string>> scores(q);
  for (int64_t u = 0; u < unroll; ++u) {
    std::string kf = w.widen(keys[u]);
    for (int64_t i = 0; i < q; ++i) {
      std::string dot = w.let("vector.reduction <add>, " +
                              w.fbin("mulf", queries[i], kf, vf) +
                              " : vector<8xf32> into f32");
      scores[i].push_back(w.sumOverLanes(dot, lanes));
    }
  }
  std::vector<std::vector<std::string>> probs(q);
  for (int64_t i = 0; i < q; ++i) {
    RowState &s = states[i];
    std::string mNew = s.max;
    for (int64_t u = 0; u < unroll; ++u)
      mNew = w.select(valid[u], w.fbin("maximumf", mNew, scores[i][u]), mNew,
                      "f32");
    std::string alpha = w.exp2(w.fbin("subf", s.max, mNew));
    std::string sum = w.fbin("mulf", s.sum, alpha);
    for (int64_t u = 0; u < unroll; ++u) {
      probs[i].push_back(w.select(
          valid[u], w.exp2(w.fbin("subf", scores[i][u], mNew)), zero, "f32"));
      sum = w.fbin("addf", sum, probs[i].back());
    }
    s = {mNew, sum, w.fbin("mulf", s.acc, w.splat(alpha), vf)};
  }
  for (int64_t u = 0; u < unroll; ++u) {
    std::string vfv = w.widen(values[u]);
    for (int64_t i = 0; i < q; ++i)
      states[i].acc = w.let("math.fma " + vfv + ", " + w.splat(probs[i][u]) +
                            ", " + states[i].acc + " : " + vf);
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
      ", %num_splits: index, %heads: index, %rows: index, %heads_last: "
      "index) workgroup(%sml: " + smem + kAligned + ", %sacc: " + sacc +
      kAligned + ") kernel attributes {known_block_size = array<i32: 128, 1, 1>} {\n";
  std::string row = w.let("gpu.block_id x"), tid = w.let("gpu.thread_id x");
  std::string side = w.div(tid, w.index(lanes)), part = w.rem(tid, w.index(lanes));
  std::string offset = w.mul(part, w.index(kVectorWidth));
  std::string zero = w.f32("0.0");
  std::string base = w.mul(row, "%num_splits");
  // At head dim 128 a step takes 64 splits in one L2 round trip.
  RowState st = mergeSources(
      w, side, w.index(sides), "%num_splits", [&](StringRef split) {
        std::string entry = w.add(base, split);
        std::string at = w.mul(entry, w.index(2));
        return RowState{
            w.let("memref.load %pml[" + at + "] : memref<?xf32>"),
            w.let("memref.load %pml[" + w.add(at, w.index(1)) +
                  "] : memref<?xf32>"),
            w.let("vector.load %po[" + w.add(w.mul(entry, w.index(d)), offset) +
                  "] : memref<?xf32>, " + vf)};
      });
  w.line("vector.store " + st.acc + ", %sacc[" +
         w.add(w.mul(side, w.index(d)), offset) + "] : " + sacc + ", " + vf);
  std::string at = w.mul(side, w.index(2));
  w.line("memref.store " + st.max + ", %sml[" + at + "] : " + smem);
  w.line("memref.store " + st.sum + ", %sml[" + w.add(at, w.index(1)) + "] : " +
         smem);
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
  // Row r is (b, h, t) of [B, Hq, rows]; heads last, it goes to (b, t, h).
  std::string t = w.rem(row, "%rows"), bh = w.div(row, "%rows");
  std::string h = w.rem(bh, "%heads"), b = w.div(bh, "%heads");
  std::string headsLast = w.add(
      w.mul(w.add(w.mul(b, "%rows"), t), "%heads"), h);
  std::string outRow = w.select(w.cmp("ne", "%heads_last", w.index(0)),
                                headsLast, row, "index");
  w.storeRow(w.fbin("mulf", total.acc, w.splat(inverse), vf), "%out",
             w.add(w.mul(outRow, w.index(d)), offset));
  w.line("}");
  return w.finish(header);
}

} // namespace mlir::kvc::kernels::detail
