//===- KVCToGPU.h - kvc to runtime calls and GPU kernels --------*- C++ -*-===//
#ifndef KVC_CONVERSION_KVCTOGPU_KVCTOGPU_H
#define KVC_CONVERSION_KVCTOGPU_KVCTOGPU_H

namespace mlir {
class ModuleOp;

namespace kvc {
/// The runtime entry points compiled code calls (runtime/include/kvc/rt/
/// kvc_rt.h, "for compiled code"), each on the device made current.
namespace rt {
constexpr const char *kCacheNew = "kvc_rt_op_cache_new";
constexpr const char *kCacheFree = "kvc_rt_op_cache_free";
constexpr const char *kAppend = "kvc_rt_op_append";
constexpr const char *kTruncate = "kvc_rt_op_truncate";
constexpr const char *kLengths = "kvc_rt_op_lengths";
constexpr const char *kCacheBatch = "kvc_rt_op_cache_batch";
constexpr const char *kDecodeAttention = "kvc_rt_op_decode_attention";
constexpr const char *kPrefillAttention = "kvc_rt_op_prefill_attention";
constexpr const char *kMatmul = "kvc_rt_op_matmul";
} // namespace rt
} // namespace kvc
} // namespace mlir

#endif // KVC_CONVERSION_KVCTOGPU_KVCTOGPU_H
