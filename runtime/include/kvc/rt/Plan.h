//===- Plan.h - launch shapes of kvc's GPU kernels --------------*- C++ -*-===//
//
// Pure arithmetic, no CUDA: how the runtime sizes each kernel launch. Kept
// apart so it is tested without a GPU.
//
//===----------------------------------------------------------------------===//
#ifndef KVC_RT_PLAN_H
#define KVC_RT_PLAN_H

#include <cstdint>
#include <string>

namespace kvc::rt {

enum class DType { F16, BF16, F32 };
const char *name(DType type);
int64_t sizeOf(DType type);

/// Threads per block of every kvc kernel (the kernels assume it).
constexpr int64_t kBlockSize = 128;
/// Elements one thread moves per access.
constexpr int64_t kVectorWidth = 8;

/// Query rows one decode block of the CUDA-core split kernel takes at most.
constexpr int64_t kCudaCoreQueryRows = 4;
/// Query rows one decode block handles: the largest divisor of the group up
/// to kCudaCoreQueryRows, so that no block straddles two groups
/// (getQueriesPerBlock in the compiler).
int64_t queriesPerBlock(int64_t group);

struct Grid {
  int64_t x = 1, y = 1, z = 1;
};

/// A split-KV decode: each of `splits` blocks per query chunk attends over
/// `splitLen` cache rows; a combine step (one block per query row) merges
/// the splits.
struct DecodePlan {
  int64_t splits = 1, splitLen = 1;
  /// The split kernel that takes one cache row per thread per step
  /// (decodeSplitKernel(..., true)): splits of one block step each.
  bool single = false;
  /// Blocks per thread-block cluster along the splits (tensor-core kernel):
  /// where one cluster holds all splits (cluster == splits), its blocks
  /// merge in shared memory and no combine runs.
  int64_t cluster = 1;
  /// The combine's grid has x = 0 where none runs (one cluster).
  Grid split, combine;
  /// f32 elements of the partial outputs and of the running max/sum pairs.
  int64_t partialOut = 0, partialMaxSum = 0;
};

/// The shortest split the planners make.
constexpr int64_t kMinSplitRows = 64;
/// The shortest long splits (planDecodeMma's, and planDecode's where a
/// block serves few query rows): about half the slots' blocks, each over
/// at least this many rows. At 4 query rows per kv head they take the
/// tensor-core kernel (useDecodeMma). On the H100 (Hq/Hkv 32/8, D 128, us,
/// against the CUDA-core kernel's plan): 256-row splits B4 L2048 19.5 /
/// 26.9, B8 L1024 19.1 / 27.2, B2 L4096 19.6 / 26.8 (B1 L8192 20.2 / 20.5);
/// 512-row B8 L2048 30.5 / 39.2, B2 L8192 31.0 / 38.8; 1024-row B1 L32768
/// 53.3 / 54.5.
constexpr int64_t kLongSplitRows = 256;
/// The shortest splits of planDecode where a block serves fewer than 4 query
/// rows and the blocks give at least 1.2 a multiprocessor (a fifth of the
/// slots; fewer blocks keep kLongSplitRows): the count nearest half the
/// slots, at least this many rows each. On the H100 (Hq/Hkv 32/32, D 128,
/// us, CUDA-core splits of 64 / 128 / 192 / 256 rows / one tensor-core
/// split): B6 L256 17.1 / 13.7 / 14.8 / 14.9 / 15.9, B8 L256 18.5 / 16.4 /
/// 17.5 / 17.1 / 19.1, B12 L256 25.7 / 24.4 / 24.5 / 22.4 / 26.0, B6 L384
/// 21.0 / 18.7 / 18.2 / 19.1 / 21.4, B8 L384 26.4 / 25.5 / 22.6 / 23.1 /
/// 25.1.
constexpr int64_t kFewQuerySplitRows = 128;
/// The shortest splits of planDecodeMma where long ones (kLongSplitRows)
/// do not fit in half the slots: as many as three quarters of the slots
/// hold at head dim 64 or less (half above), of at least this many rows.
/// Its shorter splits (kMinSplitRows) lost to these on the H100 (us, old
/// plan / this one, cuDNN in the same run): Hq/Hkv 32/4 D 64 B4 L2048 17.7
/// / 10.3 (9.2), B8 L1024 17.8 / 11.0 (8.9), B12 L640 14.8 / 10.1 (9.6),
/// B16 L512 13.2 / 10.5 (7.6), B8 L512 8.8 / 7.0 (6.7), B1 L1024 7.1 /
/// 6.2 (5.9); Hq/Hkv 32/8 D 128, on the tensor cores instead of the
/// CUDA-core kernel: B2 L2048 20.1 / 14.0 (12.5), B8 L512 20.8 / 13.8
/// (10.4), B4 L1024 20.6 / 14.1 (12.9), B16 L256 16.7 / 13.7 (9.7).
constexpr int64_t kMmaMinSplitRows = 128;
/// At head dims over 64 those short splits take a quarter of the slots (a
/// block a multiprocessor) where that is at most this many splits, half
/// otherwise. On the H100 (us, half / quarter): Hq/Hkv 32/4 D 128 B16 L640
/// 18.4 / 14.8, B8 L1024 17.7 / 14.5; 32/8 B16 L256 13.4 / 12.2, B8 L384
/// 12.6 / 11.6; but B3 L2048 (5 splits of a quarter) 16.2 / 18.6, B2 L2048
/// 14.2 / 14.8.
constexpr int64_t kMaxQuarterSplits = 4;
/// At 4 query rows per kv head (where the CUDA-core kernel reads each key
/// once too) the tensor-core kernel takes short splits only up to this
/// many: B1 L4096 (Hq/Hkv 32/8, D 128) in 32 splits of 128 rows took 14.5
/// us against the CUDA-core kernel's 14.1, B1 L2048 in 16 11.5 against
/// 11.4, B2 L2048 in 16 14.0 against 20.1.
constexpr int64_t kMmaMaxShortSplits = 16;
/// Plans a decode of `rows` new query rows per sequence for `batch`
/// sequences of `kvHeads` key/value heads, `group` query heads each, over at
/// most `maxKeys` cache rows, on a GPU that runs `slots` split blocks at once
/// (multiprocessors times resident blocks each). Batch, heads and query
/// chunks give the blocks; splitting the cache rows multiplies them. Where
/// a block serves fewer than 4 query rows (GQA groups of 1 to 3) and the
/// cache is long enough, the splits take about half the slots (the count
/// nearest it), at least kFewQuerySplitRows rows each (kLongSplitRows below
/// a fifth of the slots' blocks), since such blocks do little arithmetic per
/// key and longer splits save combine work (H100, Hq/Hkv 32/32, D 128: B4
/// L1024 33.8 -> 28.5 us, B2 L2048 30.0 -> 28.5; B8 L512 2 splits of 256
/// rows 28.0, where one tensor-core split took 30.6).
/// Otherwise the split count is the one whose blocks fill their last wave
/// best (a wave that is 10% full costs as much as a full one), the fewest
/// on a tie, never leaving a split under `kMinSplitRows` rows. If even
/// splits of one block step of the single-row kernel (splitRows(headDim)
/// rows) fit in one wave, those are taken instead: a short cache at small
/// batch, where a block's time is the chain of its updates, not the bytes
/// it reads.
DecodePlan planDecode(int64_t batch, int64_t kvHeads, int64_t group,
                      int64_t rows, int64_t headDim, int64_t maxKeys,
                      int64_t slots);
/// The same for the tensor-core split kernel (decodeMmaKernel, f16/bf16):
/// a block takes up to kMmaQueryRows query rows of a kv head. Where the
/// blocks without splits already give every multiprocessor one (4 * blocks
/// >= slots), there is one split (TinyLlama B=64 2.05 -> 1.93 ms/step on the
/// H100); at a head dim of at most 64, where they give fewer than two
/// (2 * blocks < slots), two in a cluster, since a block stages one tile of
/// keys and one of values at a time and at D 64 that is too few bytes in
/// flight (32/4 D64: B64 L640 23.3 -> 20.3 us, B64 L2048 56.0 -> 49.5, B48
/// L640 20.3 -> 17.4; at D 128 no better: B24 L2048 76.0 against 82.2).
/// Otherwise, where the cache is long enough, it is cut into splits
/// of at least kLongSplitRows rows at about two blocks a multiprocessor
/// (half the slots): at that occupancy the kernel reads at the copy rate
/// (B32 L4096, 256 blocks of one split: 181 us for 537 MB), and filling
/// every slot with shorter splits only adds combine work (B8 L16384: 8
/// splits of 2048 189.8 us, 4 of 4096 181.2). Two long splits merge in a
/// cluster (B32 L640 32/4 D64 14.8 against 17.4 us with partials, B32
/// L4096 181.8 against 185.6); more write one partial each for the combine
/// kernel, which measured faster than a cluster of them (D 128, 256-row
/// splits: B4 L2048 20.4 against 22.9 us; 512-row: B8 L2048 30.9 against
/// 35.4). Where a kv head serves more query rows than a CUDA-core block at
/// head dim 64 or less, long splits take three quarters of the slots and
/// merge in clusters up to kMaxCluster (Hq/Hkv 32/4 D 64, us: B32 L1024
/// 20.2 -> 17.9, B24 L1024 17.7 -> 15.3, B16 L2048 20.0 -> 18.5). A shorter
/// cache gets splits of at least kMmaMinSplitRows (or of
/// kMinSplitRows where one cluster of them is at most a block a
/// multiprocessor); at 1-3 query rows per kv head, where the CUDA-core
/// kernel takes such splits, ones that fill the slots' last wave, as
/// planDecode's do. Up to kMaxCluster of those run as one thread-block
/// cluster that merges them in shared memory and writes the output itself
/// (TinyLlama B=16, 5 splits of 128 rows: 1.60 -> 1.53 ms/step; B16 L640 G8
/// D64 10.8 against 12.9 us), at 4 query rows per kv head only while their
/// blocks are at most one a multiprocessor; more write partials.
DecodePlan planDecodeMma(int64_t batch, int64_t kvHeads, int64_t group,
                         int64_t rows, int64_t headDim, int64_t maxKeys,
                         int64_t slots);
/// Blocks per cluster where the splits merge: the portable limit. Clusters
/// of 10 and 16 (non-portable) measured slower than partials and the
/// combine kernel on the H100 (TinyLlama B=1 1.28 against 1.25 ms/step, B1
/// L4096 with 16 splits 16.4 against 15.4 us).
constexpr int64_t kMaxCluster = 8;
/// The shortest splits that take the tensor-core kernel where a CUDA-core
/// block serves fewer than 4 query rows (GQA groups of 1 to 3): with less
/// arithmetic per key the CUDA-core kernel wins below it. On the H100 (Hq/Hkv
/// 32/32, D 128, us, CUDA-core against tensor-core): 256-row splits B1
/// L2048 16.5 / 19.5-20.0; 512-row B1 L4096 28.6 / 31.0-31.4; 1024-row B1
/// L8192 50.8-51.3 / 52.6-53.2; 2048-row B2 L8192 101.3 / 94.6-95.3, B1
/// L16384 98.1-98.9 / 95.6-96.7.
constexpr int64_t kMmaSplitRowsFewQueries = 2048;
constexpr int64_t kMmaQueryRows = 16;
/// Whether a decode takes the tensor-core split kernel, given its plan
/// (planDecodeMma): for f16/bf16 caches whose kv heads serve more query rows
/// (group times new rows) than one block of the CUDA-core kernel takes
/// (queriesPerBlock), which would read each key and value once per block of
/// them; and at any group where that plan is one split a block (it then writes
/// the output itself, no combine) or its splits are long (kLongSplitRows,
/// kMmaSplitRowsFewQueries), or at 4 query rows per kv head up to
/// kMmaMaxShortSplits splits of kMmaMinSplitRows or more. On the H100 (Hq/Hkv
/// 32/8, D 128, us, CUDA-core against tensor-core): one split B32 L4096
/// 189.5-190.0 / 182.1-182.5, B64 L2048 190.8-191.4 / 184.3-184.4 (Hq/Hkv 32/32
/// B32 L4096 709-710 / 702-703); shorter splits lose on the tensor cores (B1
/// L4096, 64 of 64 rows: 13.4 / 16.1-16.7), which pad 12 of 16 rows. With 1 to
/// 3 query rows per kv head one split a block takes them only where its blocks
/// fill three quarters of `slots` (the tensor-core kernel's; half at head dims
/// up to 64) or the cache is too short for two splits of kFewQuerySplitRows:
/// Hq/Hkv 32/32 D 128 (us, one tensor-core split / the CUDA-core plan) B8 L512
/// (256 blocks) 30.4-30.8 / 27.9, B5 L512 23.7-23.9 / 19.8-20.3, B12 L512 (384
/// blocks) 44.5 / 39.2; but B16 L512 (512 blocks) 50.7-50.8 / 53.1-53.2, B16
/// L256 28.7 / 30.2-32.4; D 64 B12 L512 22.4 / 23.3.
bool useDecodeMma(int64_t group, int64_t rows, int64_t headDim, DType type,
                  const DecodePlan &mmaPlan, int64_t slots);
/// A decode plan forced in part, for experiments with the planners' choices
/// (kvc_rt_set_decode_plan, or KVC_DECODE_PLAN in the environment when a
/// device opens): the split kernel, the split count, and the most splits that
/// merge in one cluster; zero (or Kernel::Plan) leaves the planner's choice.
struct DecodeForce {
  enum class Kernel { Plan, TensorCores, CudaCores };
  Kernel kernel = Kernel::Plan;
  int64_t splits = 0, cluster = 0;
};
/// Parses `text`, "key=value" items joined by commas, any of kernel=mma or
/// kernel=cuda, splits=N (N >= 1), cluster=C (1 <= C <= kMaxCluster; 1:
/// partials and the combine kernel), into `force` ("" forces nothing).
/// Returns "" or why the text is not one (and leaves `force` as it was).
std::string parseDecodeForce(const std::string &text, DecodeForce &force);
/// `plan`, of the tensor-core kernel where `tensorCores` (else the CUDA-core
/// one), with the split count and cluster limit `force` gives: forced splits
/// take ceil(maxKeys / splits) rows rounded up to kMinSplitRows (so fewer
/// splits may result) and never the single-row kernel; on the tensor cores
/// they merge in one cluster where there is one split or at most
/// force.cluster of them, else write partials for the combine kernel.
void applyDecodeForce(DecodePlan &plan, const DecodeForce &force,
                      bool tensorCores, int64_t batch, int64_t kvHeads,
                      int64_t group, int64_t rows, int64_t headDim,
                      int64_t maxKeys);
/// Cache rows the single-row split kernel takes per block step: a row per
/// group of threads holding a whole key (kBlockSize * kVectorWidth /
/// headDim).
int64_t splitRows(int64_t headDim);

/// The grid of an append of `rows` rows per sequence.
Grid planAppend(int64_t batch, int64_t kvHeads, int64_t rows, int64_t headDim);

/// Empty when the shapes are ones the kernels handle, else why not.
std::string checkShapes(int64_t headDim, int64_t group);

/// Kernel names, as the kvc compiler writes them.
std::string appendKernel(int64_t headDim, DType type);
std::string appendRotaryKernel(int64_t headDim, DType type);
std::string decodeSplitKernel(int64_t headDim, int64_t group, DType type,
                              bool single = false);
std::string decodeCombineKernel(int64_t headDim, DType type);
std::string decodeMmaKernel(int64_t headDim, int64_t group, DType type);
std::string prefillKernel(int64_t headDim, int64_t group, DType type);
constexpr const char *kSetLengthsKernel = "kvc_set_lengths";
std::string argmaxKernel(DType type);
/// kvc's projection kernel for `m` rows of f16/bf16, if it has one: one row
/// with k a multiple of 8 (kvc_gemv_{T}_{O}); 2 to kGemm16Rows rows with k
/// a multiple of 64 up to kGemm16MaxK (kvc_gemm16_{T}_{O}, which the
/// runtime takes only where its blocks fit in one wave); else "". Both
/// start reading w before the kernels ahead of them finish (programmatic
/// dependent launch), which cuBLASLt cannot. Alone kvc_gemm16 is slower
/// than cuBLASLt (TinyLlama's o and qkv at 16 rows: 6.8 / 7.8 against 6.6 /
/// 7.0 us on the H100, its gate_up and down 23.6 / 15.9 against 18.4 /
/// 12.2); in a decode step the head start wins where its blocks are one
/// wave of short warps: TinyLlama B=16 with it on qkv and o 1.49-1.51
/// and 1.50-1.53 ms/step in two runs, on none 1.56-1.60 and 1.56-1.57, on
/// all four 1.60-1.63.
std::string projectionKernel(int64_t m, int64_t n, int64_t k, DType type,
                             DType outType);
constexpr int64_t kGemm16Rows = 16, kGemm16MaxK = 2048;
/// Rows of w one kvc_gemm16 block takes, and its threads.
constexpr int64_t kGemm16Block = 16, kGemm16Threads = 256;
/// Query rows of one prefill block.
constexpr int64_t kPrefillRows = 64;

} // namespace kvc::rt

#endif // KVC_RT_PLAN_H
