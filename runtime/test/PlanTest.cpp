//===- PlanTest.cpp - launch planning of the kvc runtime
//-------------------===//
#include "kvc/rt/Plan.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <utility>

using namespace kvc::rt;

namespace {

// An H100 running four 128-register split blocks per SM.
constexpr int64_t kH100 = 132 * 4;

// Every cache row of every query chunk lands in exactly one split.
void expectCovers(const DecodePlan &plan, int64_t maxKeys) {
  EXPECT_GE(plan.splits * plan.splitLen, maxKeys);
  EXPECT_LT((plan.splits - 1) * plan.splitLen, maxKeys);
  EXPECT_EQ(plan.split.x, plan.splits);
}

// The plan's split count, split length and cluster size.
void expectSplits(const DecodePlan &plan, int64_t splits, int64_t splitLen,
                  int64_t cluster) {
  EXPECT_EQ(plan.splits, splits);
  EXPECT_EQ(plan.splitLen, splitLen);
  EXPECT_EQ(plan.cluster, cluster);
}

double lastWaveFill(const DecodePlan &plan, int64_t slots) {
  double waves = double(plan.split.x * plan.split.y * plan.split.z) / slots;
  return waves / std::ceil(waves);
}

TEST(PlanDecode, SmallBatchSplitsToFillTheMultiprocessors) {
  // B1 L4096, 8 kv heads of 4 queries: 8 blocks without splitting.
  DecodePlan plan = planDecode(1, 8, 4, 1, 128, 4096, kH100);
  expectCovers(plan, 4096);
  EXPECT_GE(plan.split.x * plan.split.y * plan.split.z, kH100 * 9 / 10);
  EXPECT_EQ(plan.split.y, 8);
  EXPECT_EQ(plan.split.z, 1);
  EXPECT_FALSE(plan.single);
  EXPECT_EQ(plan.splitLen % kMinSplitRows, 0);
}

TEST(PlanDecode, LastWaveIsFull) {
  // The benchmark shapes: no plan may leave most of a last wave idle.
  for (auto [batch, length] : {std::pair<int64_t, int64_t>{1, 32768},
                               {8, 16384},
                               {32, 4096},
                               {64, 2048}}) {
    DecodePlan plan = planDecode(batch, 8, 4, 1, 128, length, kH100);
    expectCovers(plan, length);
    EXPECT_GE(lastWaveFill(plan, kH100), 0.9) << "B" << batch << " L" << length;
  }
}

TEST(PlanDecode, LargeBatchNeedsNoSplit) {
  // 1056 blocks are two full waves.
  DecodePlan plan = planDecode(132, 8, 4, 1, 128, 2048, kH100);
  EXPECT_EQ(plan.splits, 1);
  EXPECT_EQ(plan.splitLen, 2048);
  EXPECT_EQ(plan.split.z, 132);
}

TEST(PlanDecode, ShortCachesAtSmallBatchTakeTheSingleRowKernel) {
  // TinyLlama at batch 1 (4 kv heads of 8 queries, head dim 64) over 640
  // rows: 40 splits of one 16-row block step each, 160 blocks in one wave.
  EXPECT_EQ(splitRows(64), 16);
  EXPECT_EQ(splitRows(128), 8);
  DecodePlan plan = planDecode(1, 4, 8, 1, 64, 640, kH100);
  EXPECT_TRUE(plan.single);
  EXPECT_EQ(plan.splitLen, 16);
  EXPECT_EQ(plan.splits, 40);
  expectCovers(plan, 640);
  plan = planDecode(1, 1, 1, 1, 64, 17, kH100);
  EXPECT_TRUE(plan.single);
  expectCovers(plan, 17);
  plan = planDecode(1, 8, 4, 1, 128, 1, kH100);
  EXPECT_EQ(plan.splits, 1);
  // At batch 16 the same splits would take five waves: the 4-row kernel.
  plan = planDecode(16, 4, 8, 1, 64, 640, kH100);
  EXPECT_FALSE(plan.single);
  expectCovers(plan, 640);
}

TEST(PlanDecode, FewQueryRowsTakeLongSplits) {
  // Hq/Hkv 32/32 at batch 4 over 1024 rows, 6 blocks per SM: 128 blocks,
  // each one query row. Splits of at least kLongSplitRows rows that take half
  // the slots: 3 of 384 (filling the last wave would be 6 of 192).
  DecodePlan plan = planDecode(4, 32, 1, 1, 128, 1024, 132 * 6);
  EXPECT_EQ(plan.splits, 3);
  EXPECT_EQ(plan.splitLen, 384);
  EXPECT_FALSE(plan.single);
  expectCovers(plan, 1024);
  // Where those would be shorter the splits fill the wave, as at 4 rows.
  plan = planDecode(1, 32, 1, 1, 128, 1024, 132 * 6);
  EXPECT_LT(plan.splitLen, kLongSplitRows);
  // Blocks of 4 query rows keep filling the wave (the tensor cores take
  // the long splits there): 16 splits of 128.
  EXPECT_EQ(planDecode(4, 8, 4, 1, 128, 2048, kH100).splitLen, 128);
}

TEST(PlanDecode, QueryChunksAndWorkspace) {
  // MQA: 32 query heads on one kv head are 8 chunks of 4 rows; 2 new rows
  // per sequence double them.
  DecodePlan plan = planDecode(3, 1, 32, 2, 64, 1000, kH100);
  EXPECT_EQ(plan.split.y, 16);
  EXPECT_EQ(plan.split.z, 3);
  expectCovers(plan, 1000);
  int64_t queryRows = 3 * 32 * 2;
  EXPECT_EQ(plan.partialOut, queryRows * plan.splits * 64);
  EXPECT_EQ(plan.partialMaxSum, queryRows * plan.splits * 2);
  // One combine block per query row.
  EXPECT_EQ(plan.combine.x, queryRows);
}

TEST(PlanDecode, TensorCoresForMoreThanFourQueryRowsPerKvHead) {
  DecodePlan short64;
  short64.splits = 10;
  short64.splitLen = 64;
  EXPECT_TRUE(useDecodeMma(8, 1, 128, DType::BF16, short64, 528));
  EXPECT_TRUE(useDecodeMma(4, 2, 128, DType::F16, short64, 528));
  EXPECT_FALSE(useDecodeMma(4, 1, 128, DType::BF16, short64, 528));
  EXPECT_FALSE(useDecodeMma(8, 1, 128, DType::F32, short64, 528));
  // TinyLlama at batch 1 (4 kv heads of 8, 640 keys): a block per kv head
  // and 16 query rows; 10 splits of 64 rows would be more than a cluster
  // holds: 5 of kMmaMinSplitRows, merged in one cluster.
  DecodePlan plan = planDecodeMma(1, 4, 8, 1, 64, 640, 528);
  EXPECT_FALSE(plan.single);
  EXPECT_EQ(plan.split.y, 4);
  expectSplits(plan, 5, kMmaMinSplitRows, 5);
  EXPECT_EQ(plan.combine.x, 0);
  // Over 512 keys 8 splits of 64 fit one cluster, 32 blocks in all: those.
  DecodePlan shortest = planDecodeMma(1, 4, 8, 1, 64, 512, 528);
  expectSplits(shortest, 8, kMinSplitRows, 8);
  // At batch 8 (32 blocks) 64-row splits would be 256 blocks: 4 of 128 in
  // a cluster. More than a cluster holds (batch 4, 2048 keys: 16) write
  // partials.
  DecodePlan batch8 = planDecodeMma(8, 4, 8, 1, 64, 512, 528);
  expectSplits(batch8, 4, kMmaMinSplitRows, 4);
  DecodePlan partials = planDecodeMma(4, 4, 8, 1, 64, 2048, 528);
  expectSplits(partials, 16, kMmaMinSplitRows, 1);
  EXPECT_EQ(partials.combine.x, 4 * 32);
  EXPECT_EQ(partials.partialOut, 4 * 32 * 16 * 64);
  // At batch 16 (64 blocks) 5 splits of 128 rows fill most of the wave
  // and run as one cluster.
  DecodePlan clustered = planDecodeMma(16, 4, 8, 1, 64, 640, 528);
  expectSplits(clustered, 5, 128, 5);
  // They merge in the cluster: no partials, no combine.
  EXPECT_EQ(clustered.combine.x, 0);
  EXPECT_EQ(clustered.partialOut, 0);
  EXPECT_EQ(clustered.partialMaxSum, 0);
  // At batch 64 the 256 blocks give each of 132 multiprocessors one, but
  // fewer than two: at head dim 64 two splits of 320 rows in a cluster.
  DecodePlan pair = planDecodeMma(64, 4, 8, 1, 64, 640, 528);
  expectSplits(pair, 2, 320, 2);
  EXPECT_EQ(pair.combine.x, 0);
  // Long splits at head dim 64 take three quarters of the slots and merge
  // in a cluster up to its size: batch 32 over 1024 rows (128 blocks) 3 of
  // 384; batch 16 over 2048 (64 blocks) 6 of 384; batch 1 over 32768 (4
  // blocks) 86 of 384, partials.
  expectSplits(planDecodeMma(32, 4, 8, 1, 64, 1024, 528), 3, 384, 3);
  expectSplits(planDecodeMma(16, 4, 8, 1, 64, 2048, 528), 6, 384, 6);
  DecodePlan longest = planDecodeMma(1, 4, 8, 1, 64, 32768, 528);
  expectSplits(longest, 86, 384, 1);
  EXPECT_EQ(longest.combine.x, 32);
  // Where a CUDA-core block serves the same query rows (Hq/Hkv 32/8) long
  // splits keep half the slots, in pairs at most: batch 8 over 2048, 4 of
  // 512.
  expectSplits(planDecodeMma(8, 8, 4, 1, 64, 2048, 528), 4, 512, 1);
  // At head dim 128 one split a block: no splits, no combine.
  DecodePlan whole = planDecodeMma(64, 4, 8, 1, 128, 640, 528);
  EXPECT_EQ(whole.splits, 1);
  EXPECT_EQ(whole.split.x, 1);
  EXPECT_EQ(whole.cluster, 1);
  EXPECT_GE(whole.splitLen, 640);
  EXPECT_EQ(whole.splitLen % kMinSplitRows, 0);
  // So too at head dim 64 where the blocks give two a multiprocessor.
  EXPECT_EQ(planDecodeMma(128, 4, 8, 1, 64, 640, 528).splits, 1);
  // 32 query heads on one kv head, 2 new rows: 64 query rows, 4 blocks.
  EXPECT_EQ(planDecodeMma(2, 1, 32, 2, 128, 4096, 396).split.y, 4);
  // A long cache splits past any cluster: partials and a combine.
  EXPECT_EQ(planDecodeMma(1, 8, 4, 2, 128, 32768, 528).cluster, 1);
}

TEST(PlanDecode, TensorCoresForOneSplitOrLongSplitsAtAnyGroup) {
  // Hq/Hkv 32/8 at batch 32 (256 blocks, 4 query rows each): the tensor-core
  // plan is one split a block, which needs no combine: it takes these.
  DecodePlan whole = planDecodeMma(32, 8, 4, 1, 128, 4096, 528);
  EXPECT_EQ(whole.splits, 1);
  EXPECT_EQ(whole.combine.x, 0);
  EXPECT_TRUE(useDecodeMma(4, 1, 128, DType::BF16, whole, 528));
  EXPECT_TRUE(useDecodeMma(1, 1, 128, DType::F16, whole, 528));
  EXPECT_FALSE(useDecodeMma(4, 1, 128, DType::F32, whole, 528));
  // Hq/Hkv 32/8, D 128 at fewer blocks (8 a sequence): the tensor-core plan
  // and whether it is taken. Splits in one cluster need no combine; the
  // others write partials (a combine block per query row).
  struct Case {
    int64_t batch, keys, splits, splitLen, cluster;
    bool tensorCores;
  };
  for (const Case &c : std::initializer_list<Case>{
           // Long splits (at least kLongSplitRows) at two blocks a
           // multiprocessor: partials, except a pair.
           {8, 16384, 4, 4096, 1, true},
           {16, 4096, 2, 2048, 2, true},
           {4, 2048, 8, kLongSplitRows, 1, true},
           // Too short to be long: splits of kMmaMinSplitRows or more, up
           // to kMmaMaxShortSplits of them on the tensor cores; in a
           // cluster only at a block a multiprocessor or fewer.
           {1, 4096, 32, kMmaMinSplitRows, 1, false},
           {2, 2048, kMmaMaxShortSplits, kMmaMinSplitRows, 1, true},
           {1, 1024, 8, kMmaMinSplitRows, 8, true},
           // A block a multiprocessor where that is at most
           // kMaxQuarterSplits splits (batch 8: 2), else half the slots
           // (batch 3: a quarter would be 5).
           {8, 512, 2, 256, 2, true},
           {3, 1024, 8, kMmaMinSplitRows, 1, true},
       }) {
    SCOPED_TRACE("batch " + std::to_string(c.batch) + ", " +
                 std::to_string(c.keys) + " keys");
    DecodePlan plan = planDecodeMma(c.batch, 8, 4, 1, 128, c.keys, 528);
    expectSplits(plan, c.splits, c.splitLen, c.cluster);
    EXPECT_EQ(plan.combine.x, c.cluster == c.splits ? 0 : c.batch * 32);
    EXPECT_EQ(useDecodeMma(4, 1, 128, DType::BF16, plan, 528), c.tensorCores);
  }
  // With one query row per kv head the CUDA-core kernel does less per key:
  // it keeps splits shorter than kMmaSplitRowsFewQueries.
  EXPECT_FALSE(useDecodeMma(1, 1, 128, DType::BF16,
                            planDecodeMma(4, 8, 4, 1, 128, 2048, 528), 528));
  DecodePlan fewQueries = planDecodeMma(1, 32, 1, 1, 128, 16384, 528);
  EXPECT_EQ(fewQueries.splitLen, kMmaSplitRowsFewQueries);
  EXPECT_TRUE(useDecodeMma(1, 1, 128, DType::BF16, fewQueries, 528));
}

TEST(PlanDecode, FewQueriesTakeOneTensorCoreSplitFromThreeQuartersOfSlots) {
  // Hq/Hkv 32/32 at batch 8 over 512 rows: the tensor-core plan's 256
  // blocks of one split fill under three quarters of its 528 slots; the
  // CUDA-core kernel takes 2 splits of 256 (the count nearest half its 792).
  DecodePlan mma8 = planDecodeMma(8, 32, 1, 1, 128, 512, 528);
  EXPECT_EQ(mma8.splits, 1);
  EXPECT_FALSE(useDecodeMma(1, 1, 128, DType::BF16, mma8, 528));
  DecodePlan cudaCores = planDecode(8, 32, 1, 1, 128, 512, 792);
  EXPECT_EQ(cudaCores.splits, 2);
  EXPECT_EQ(cudaCores.splitLen, 256);
  // Over 256 rows: 2 splits of kFewQuerySplitRows.
  DecodePlan short8 = planDecode(8, 32, 1, 1, 128, 256, 792);
  EXPECT_EQ(short8.splits, 2);
  EXPECT_EQ(short8.splitLen, kFewQuerySplitRows);
  EXPECT_FALSE(useDecodeMma(1, 1, 128, DType::BF16,
                            planDecodeMma(8, 32, 1, 1, 128, 256, 528), 528));
  // Batch 12 (384 blocks): one CUDA-core split.
  EXPECT_FALSE(useDecodeMma(1, 1, 128, DType::BF16,
                            planDecodeMma(12, 32, 1, 1, 128, 256, 528), 528));
  EXPECT_EQ(planDecode(12, 32, 1, 1, 128, 256, 792).splits, 1);
  // A cache shorter than two such splits keeps the one tensor-core split.
  EXPECT_TRUE(useDecodeMma(1, 1, 128, DType::BF16,
                           planDecodeMma(8, 32, 1, 1, 128, 192, 528), 528));
  // At head dim 64 one split a block from half the slots (384 blocks).
  EXPECT_TRUE(useDecodeMma(1, 1, 64, DType::BF16,
                           planDecodeMma(12, 32, 1, 1, 64, 512, 528), 528));
  // At batch 16 (512 blocks) one tensor-core split a block.
  DecodePlan mma16 = planDecodeMma(16, 32, 1, 1, 128, 512, 528);
  EXPECT_EQ(mma16.splits, 1);
  EXPECT_TRUE(useDecodeMma(1, 1, 128, DType::BF16, mma16, 528));
  // At 4 query rows per kv head one split a block takes the tensor cores
  // from one block per multiprocessor (Hq/Hkv 32/8 batch 17: 136 blocks).
  DecodePlan group4 = planDecodeMma(17, 8, 4, 1, 128, 512, 528);
  EXPECT_EQ(group4.splits, 1);
  EXPECT_TRUE(useDecodeMma(4, 1, 128, DType::BF16, group4, 528));
}

TEST(DecodeForce, ParsesKernelSplitsAndCluster) {
  DecodeForce force;
  EXPECT_EQ(parseDecodeForce("kernel=mma,splits=16,cluster=1", force), "");
  EXPECT_EQ(force.kernel, DecodeForce::Kernel::TensorCores);
  EXPECT_EQ(force.splits, 16);
  EXPECT_EQ(force.cluster, 1);
  EXPECT_EQ(parseDecodeForce("kernel=cuda", force), "");
  EXPECT_EQ(force.kernel, DecodeForce::Kernel::CudaCores);
  EXPECT_EQ(force.splits, 0);
  EXPECT_EQ(parseDecodeForce("", force), "");
  EXPECT_EQ(force.kernel, DecodeForce::Kernel::Plan);
  EXPECT_EQ(force.splits + force.cluster, 0);
  // Bad text leaves the force as it was, with the reason.
  force.splits = 3;
  for (const char *bad : {"splits", "splits=0", "splits=2x", "cluster=9",
                          "kernel=wgmma", "split=4", "splits=4,",
                          "kernel=cuda,cluster=2"})
    EXPECT_NE(parseDecodeForce(bad, force), "") << bad;
  EXPECT_EQ(force.splits, 3);
  EXPECT_NE(parseDecodeForce("cluster=9", force).find("1 to 8"),
            std::string::npos);
}

TEST(DecodeForce, SplitsRoundToWholeTilesAndClusterOnlyWhereAllowed) {
  // B1 L4096, Hq/Hkv 32/8 D 128 on the tensor cores: 16 splits of 256 rows
  // as partials, or in a cluster where 16 are allowed... at most 8 are.
  DecodePlan plan = planDecodeMma(1, 8, 4, 1, 128, 4096, kH100);
  DecodeForce force;
  force.splits = 16;
  applyDecodeForce(plan, force, true, 1, 8, 4, 1, 128, 4096);
  expectSplits(plan, 16, 256, 1);
  expectCovers(plan, 4096);
  EXPECT_EQ(plan.combine.x, 32);
  EXPECT_EQ(plan.partialOut, 32 * 16 * 128);
  force.splits = 6; // 683 rows round up to 704: still 6 splits
  force.cluster = 8;
  applyDecodeForce(plan, force, true, 1, 8, 4, 1, 128, 4096);
  expectSplits(plan, 6, 704, 6);
  EXPECT_EQ(plan.combine.x, 0);
  EXPECT_EQ(plan.partialOut, 0);
  force.splits = 48; // 86 rows round up to 128: 32 splits
  applyDecodeForce(plan, force, true, 1, 8, 4, 1, 128, 4096);
  expectSplits(plan, 32, 128, 1);
  // The CUDA-core kernel: never the single-row kernel, never a cluster, its
  // query chunks of 4 rows (32/1: 8 of them per kv head).
  DecodePlan cuda = planDecode(1, 1, 32, 1, 128, 512, kH100);
  EXPECT_TRUE(cuda.single);
  force = DecodeForce();
  force.splits = 1;
  applyDecodeForce(cuda, force, false, 1, 1, 32, 1, 128, 512);
  EXPECT_FALSE(cuda.single);
  expectSplits(cuda, 1, 512, 1);
  EXPECT_EQ(cuda.split.y, 8);
  EXPECT_EQ(cuda.combine.x, 32);
  // A cluster limit alone keeps the planner's splits and re-decides the
  // merge: TinyLlama's B=16 decode, 5 splits in a cluster, as partials.
  DecodePlan mma = planDecodeMma(16, 4, 8, 1, 64, 640, kH100);
  expectSplits(mma, 5, 128, 5);
  force = DecodeForce();
  force.cluster = 1;
  applyDecodeForce(mma, force, true, 16, 4, 8, 1, 64, 640);
  expectSplits(mma, 5, 128, 1);
  EXPECT_EQ(mma.combine.x, 16 * 32);
}

TEST(PlanAppend, OneThreadPerSixteenBytes) {
  Grid grid = planAppend(2, 8, 3, 128);
  EXPECT_EQ(grid.x, (8 * 3 * 16 + 127) / 128);
  EXPECT_EQ(grid.y, 2);
}

TEST(Shapes, HeadDimsAndGroups) {
  EXPECT_EQ(checkShapes(64, 4), "");
  EXPECT_EQ(checkShapes(128, 32), "");
  EXPECT_NE(checkShapes(60, 4), "");
  EXPECT_NE(checkShapes(512, 4), "");
  EXPECT_NE(checkShapes(128, 12), "");
  EXPECT_NE(checkShapes(128, 0), "");
}

// The names the compiler gives kernels (lib/Conversion/KVCToGPU/Kernels.cpp);
// test/Conversion/kvc-kernels.mlir checks the same strings on its side.
TEST(Names, MatchTheCompiler) {
  EXPECT_EQ(appendKernel(128, DType::BF16), "kvc_append_d128_bf16");
  EXPECT_EQ(decodeSplitKernel(64, 4, DType::F16),
            "kvc_decode_split_d64_g4_f16");
  EXPECT_EQ(decodeCombineKernel(128, DType::F32),
            "kvc_decode_combine_d128_f32");
  EXPECT_STREQ(kSetLengthsKernel, "kvc_set_lengths");
  EXPECT_EQ(queriesPerBlock(4), 4);
  EXPECT_EQ(queriesPerBlock(8), 4);
  EXPECT_EQ(queriesPerBlock(32), 4);
  // A block never straddles two groups: 6 query heads per kv head are two
  // blocks of 3, 5 or 7 are blocks of one.
  EXPECT_EQ(queriesPerBlock(6), 3);
  EXPECT_EQ(queriesPerBlock(5), 1);
  EXPECT_EQ(queriesPerBlock(7), 1);
}

TEST(Names, ProjectionKernels) {
  EXPECT_EQ(projectionKernel(1, 2048, 2048, DType::BF16, DType::F32),
            "kvc_gemv_bf16_f32");
  EXPECT_EQ(projectionKernel(1, 100, 24, DType::F16, DType::F16),
            "kvc_gemv_f16_f16");
  EXPECT_EQ(projectionKernel(16, 11264, 2048, DType::BF16, DType::BF16),
            "kvc_gemm16_bf16_bf16");
  EXPECT_EQ(projectionKernel(2, 2560, 320, DType::F16, DType::F32),
            "kvc_gemm16_f16_f32");
  // k not a multiple of 64 or past 2048 (TinyLlama's down projection),
  // more than 16 rows, f32: cuBLASLt.
  EXPECT_EQ(projectionKernel(16, 2048, 5632, DType::BF16, DType::F32), "");
  EXPECT_EQ(projectionKernel(3, 100, 24, DType::BF16, DType::F32), "");
  EXPECT_EQ(projectionKernel(17, 2048, 2048, DType::BF16, DType::F32), "");
  EXPECT_EQ(projectionKernel(1, 2048, 2048, DType::F32, DType::F32), "");
}

} // namespace
