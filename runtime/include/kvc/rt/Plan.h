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

/// Query rows one decode block handles: the largest divisor of the group up
/// to 4, so that no block straddles two groups (getQueriesPerBlock in the
/// compiler).
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
  Grid split, combine;
  /// f32 elements of the partial outputs and of the running max/sum pairs.
  int64_t partialOut = 0, partialMaxSum = 0;
};

/// Plans a decode of `rows` new query rows per sequence for `batch`
/// sequences of `kvHeads` key/value heads, `group` query heads each, over at
/// most `maxKeys` cache rows, on a GPU that runs `slots` split blocks at once
/// (multiprocessors times resident blocks each). Batch, heads and query
/// chunks give the blocks; splitting the cache rows multiplies them. The
/// split count is the one whose blocks fill their last wave best (a wave
/// that is 10% full costs as much as a full one), the fewest on a tie,
/// never leaving a split under `kMinSplitRows` rows. If even splits of one
/// block step of the single-row kernel (splitRows(headDim) rows) fit in one
/// wave, those are taken instead: a short cache at small batch, where a
/// block's time is the chain of its updates, not the bytes it reads.
DecodePlan planDecode(int64_t batch, int64_t kvHeads, int64_t group,
                      int64_t rows, int64_t headDim, int64_t maxKeys,
                      int64_t slots);
constexpr int64_t kMinSplitRows = 64;
/// The same for the tensor-core split kernel (decodeMmaKernel, f16/bf16):
/// a block takes up to kMmaQueryRows query rows of a kv head and writes one
/// partial per split. Where the blocks without splits already give every
/// multiprocessor one (4 * blocks >= slots), there is one split: the kernel
/// writes the output itself and no combine runs (TinyLlama B=64 2.05 ->
/// 1.93 ms/step on the H100).
DecodePlan planDecodeMma(int64_t batch, int64_t kvHeads, int64_t group,
                         int64_t rows, int64_t headDim, int64_t maxKeys,
                         int64_t slots);
constexpr int64_t kMmaQueryRows = 16;
/// Whether a decode takes the tensor-core split kernel: for f16/bf16 caches
/// whose kv heads serve more query rows (group times new rows) than one
/// block of the CUDA-core kernel takes (queriesPerBlock), which would read
/// each key and value once per block of them. With 4 or fewer the CUDA-core
/// kernel is faster (B1 L4096: 14.1 against 20.3 us on the H100).
bool useDecodeMma(int64_t group, int64_t rows, DType type);
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
/// kvc's one-row projection kernel (kvc_gemv_{T}_{O}) for one row of
/// f16/bf16 with k a multiple of 8: it starts reading w before the kernels
/// ahead of it finish (programmatic dependent launch), which cuBLASLt
/// cannot; else "".
std::string gemvKernel(int64_t m, int64_t n, int64_t k, DType type,
                       DType outType);
/// Query rows of one prefill block.
constexpr int64_t kPrefillRows = 64;

} // namespace kvc::rt

#endif // KVC_RT_PLAN_H
