//===- Kernels.h - the GPU kernels kvc ops lower to -------------*- C++ -*-===//
//
// kvc's GPU kernels are written in the gpu, vector, memref and arith
// dialects and specialized per head dim, query group and element type. Every
// buffer argument is a 1-d `memref<?xT>` (five words each when launched:
// allocated and aligned pointer, offset, size, stride); the runtime launches
// them by name through that ABI, documented with each kernel below.
//
//===----------------------------------------------------------------------===//
#ifndef KVC_CONVERSION_KVCTOGPU_KERNELS_H
#define KVC_CONVERSION_KVCTOGPU_KERNELS_H

#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/StringRef.h"
#include <string>

namespace mlir::kvc::kernels {

/// Threads per block of every kvc kernel.
constexpr int64_t kBlockSize = 128;
/// Elements one thread moves per access: 16 bytes of bf16/f16.
constexpr int64_t kVectorWidth = 8;

/// The element types kernels are specialized for.
enum class ElementType { F16, BF16, F32 };
llvm::StringRef getName(ElementType type);

/// One specialization of the kvc kernels.
struct KernelKey {
  int64_t headDim;    // 64, 128, ...: a multiple of 8, at most 256
  int64_t group;      // query heads per key/value head (decode only; else 1)
  ElementType elementType;
};

/// One specialization of the one-row projection kernel.
struct GemvKey {
  ElementType inputType;    // of x and w: f16 or bf16
  ElementType outputType;   // of out: f32 or the input type
};

/// Query rows one decode block handles for a group size: the largest
/// divisor of the group up to 4, so that no block straddles two groups (they
/// share every key and value load; a larger group is several blocks, which
/// read the same keys from L2). With 8, each thread
/// held 8 query rows' state: 249 registers at head dim 64, 2 blocks per SM;
/// with 4, 128 and 4 (TinyLlama decode 1.36 -> 1.31 ms/step at batch 1).
int64_t getQueriesPerBlock(int64_t group);

/// `kvc_append_d{D}_{T}(key, value, positions, lengths, keys, values, status,
///     rows, capacity)`: grid (ceil(Hkv*rows*D/8 / 128), B); writes the new
/// rows at their positions and sets each length to position + rows;
/// status[0] = 1 (and the length unchanged) if a position is outside
/// [0, length] or rows past capacity.
std::string getAppendName(const KernelKey &key);
/// `kvc_append_rope_d{D}_{T}(... as append ..., exponent)`: the same, with
/// keys rotated to their positions (rotate-half pairs i, i + D/2; frequency
/// exp(i * exponent), exponent = -2 ln(theta) / D).
std::string getAppendRotaryName(const KernelKey &key);
/// `kvc_set_lengths(source, lengths, status, add, batch)`: grid
/// (ceil(B/128)); length[b] = source[b] + add; with add == 0 (truncate,
/// what the runtime uses it for), status[0] = 2 unless 0 <= source[b] <=
/// length[b].
std::string getSetLengthsName();
/// `kvc_argmax_{T}(logits, out, vocab)`: grid (rows); out[r] = the index of
/// the largest of logits[r * vocab, (r + 1) * vocab), the first on a tie
/// (greedy decoding on the device).
std::string getArgmaxName(ElementType type);
/// `kvc_decode_split_d{D}_g{G}_{T}(query, keys, values, lengths, positions,
///     partial_out, partial_max_sum, rows, capacity, split_len, num_splits,
///     scale)`: grid (num_splits, Hkv * G * rows / Q, B), Q =
/// getQueriesPerBlock(G); each block runs online softmax over its split of
/// the cache for Q query rows that share a key/value head and writes an
/// unnormalized partial output [B, Hq, rows, num_splits, D] and its running
/// max and sum [..., num_splits, 2] (log2 domain) in f32.
/// `kvc_decode_split1_d{D}_g{G}_{T}` (`single`): the same with one cache
/// row per thread per step instead of 4, for short caches split finely
/// (the runtime's planDecode picks it).
std::string getDecodeSplitName(const KernelKey &key, bool single = false);
/// `kvc_decode_mma_d{D}_g{G}_{T}(..., scale, out, heads_last)` (f16 and
/// bf16, D a multiple of 16): the split kernel on the tensor cores, the
/// same arguments and two
/// more; grid (num_splits, Hkv * ceil(G * rows / 16), B): a block takes up
/// to 16 query rows of a kv head (the M dimension of mma.sync) over
/// split_len cache rows (a multiple of 64) and writes their partial; with
/// one split it writes the normalized output to `out` instead (laid out as
/// the combine kernel's), and no combine is needed.
std::string getDecodeMmaName(const KernelKey &key);
/// `kvc_decode_combine_d{D}_{T}(partial_out, partial_max_sum, out,
///     num_splits, heads, rows, heads_last)`: grid (B*Hq*rows); block r
/// merges the splits of query row r (b, h, t) into `out`, its threads
/// splitting the splits 128/(D/8) ways. `out` is [B, Hq, rows, D], or
/// [B, rows, Hq, D] if heads_last is 1 (what the output projection reads:
/// no transpose after attention).
std::string getDecodeCombineName(const KernelKey &key);

/// `kvc_prefill_d{D}_g{G}_{T}(maps, out, seq, scale)`: grid (ceil(seq/64),
/// Hq, B); causal attention of [B, Hq, seq, D] queries over [B, Hkv, seq, D]
/// keys and values on the tensor cores (wgmma, sm_90a; f16 and bf16, D a
/// multiple of 64; the runtime runs other prefills as decode attention).
/// `maps` holds three CUtensorMaps (16 i64 each) of the query, key and
/// value tensors as 3-D [B * heads, seq, D], in 64 x 64 x 1 boxes with the
/// 128-byte swizzle.
std::string getPrefillName(const KernelKey &key);

/// `kvc_gemv_{T}_{O}(x, w, out, n, k)`: grid (ceil(n/4)); out[n] = sum_k
/// x[k] w[n, k] (k a multiple of 8) in f32, stored as O: a batch-1
/// projection reading w once (the runtime picks it where cuBLASLt is slow).
std::string getGemvName(const GemvKey &key);

/// `kvc_gemm16_{T}_{O}(x, w, out, m, n, k)`: grid (ceil(n/16)) of 256
/// threads; out[m, n] = sum_k x[m, k] w[n, k] for 1 <= m <= 16 rows (k a
/// multiple of 64) on the
/// tensor cores, in f32, stored as O: the projections of a small batch,
/// reading w once and starting before the kernels ahead finish.
std::string getGemm16Name(const GemvKey &key);

/// Appends the kernels of `keys` (every kernel a decode through that key
/// needs) and the projection kernels `gemvs` to a `gpu.module @kvc_kernels`
/// in `module`, creating it if needed and skipping kernels already there.
LogicalResult addKernels(ModuleOp module, llvm::ArrayRef<KernelKey> keys,
                         llvm::ArrayRef<GemvKey> gemvs = {});

} // namespace mlir::kvc::kernels

#endif // KVC_CONVERSION_KVCTOGPU_KERNELS_H
