//===- Bulk.h - bulk copies and mbarriers in kvc's kernels ------*- C++ -*-===//
//
// Internal to the kernel generators: shared-memory barriers (mbarrier), the
// asynchronous bulk copies (sm_90) that complete on them, and bulk L2
// prefetches. One thread issues a copy of many bytes; the others wait on
// the barrier's phase. The instructions are written as inline PTX: their
// NVVM ops would need convert-nvvm-to-llvm in every kernel's pipeline.
//
//===----------------------------------------------------------------------===//
#ifndef KVC_LIB_CONVERSION_KVCTOGPU_BULK_H
#define KVC_LIB_CONVERSION_KVCTOGPU_BULK_H

#include "KernelWriter.h"

namespace mlir::kvc::kernels::detail {

/// The shared-memory address (i32) of workgroup buffer `buffer` (of memref
/// type `type`) plus `bytes`.
inline std::string sharedAddress(Writer &w, StringRef buffer, StringRef type,
                                 int64_t bytes = 0) {
  std::string at = w.let("memref.extract_aligned_pointer_as_index " + buffer +
                         " : " + type.str() + " -> index");
  if (bytes)
    at = w.add(at, w.index(bytes));
  return w.let("arith.index_cast " + at + " : index to i32");
}

/// An mbarrier (at shared address `bar`) expecting one arrival a phase.
inline void initBarrier(Writer &w, StringRef bar) {
  w.line("llvm.inline_asm has_side_effects asm_dialect = att "
         "\"mbarrier.init.shared::cta.b64 [$0], 1;\", \"r,~{memory}\" " +
         bar + " : (i32) -> ()");
}

/// Makes barrier initialization visible to the copy engines (a block-wide
/// barrier must follow).
inline void fenceBarrierInit(Writer &w) {
  w.line("llvm.inline_asm has_side_effects asm_dialect = att "
         "\"fence.mbarrier_init.release.cluster;\", \"~{memory}\"  : () -> ()");
}

/// Waits until phase `parity` (i32, 0 or 1) of barrier `bar` completes.
inline void waitBarrier(Writer &w, StringRef bar, StringRef parity) {
  w.line("llvm.inline_asm has_side_effects asm_dialect = att \"{ .reg "
         ".pred p; kvcWait${:uid}: mbarrier.try_wait.parity.shared::cta.b64 "
         "p, [$0], $1; @!p bra kvcWait${:uid}; }\", \"r,r,~{memory}\" " +
         bar + ", " + parity + " : (i32, i32) -> ()");
}

/// This thread arrives on barrier `bar`, which then expects `bytes` (i32)
/// of copies before its phase completes.
inline void expectBytes(Writer &w, StringRef bar, StringRef bytes) {
  w.line("llvm.inline_asm has_side_effects asm_dialect = att "
         "\"mbarrier.arrive.expect_tx.shared::cta.b64 _, [$0], $1;\", "
         "\"r,r,~{memory}\" " + bar + ", " + bytes + " : (i32, i32) -> ()");
}

/// Copies `bytes` (i32, a multiple of 16) from generic address `src` (i64)
/// to shared address `dst` (both 16-byte aligned), completing on `bar`.
inline void bulkCopy(Writer &w, StringRef dst, StringRef src, StringRef bytes,
                     StringRef bar) {
  w.line("llvm.inline_asm has_side_effects asm_dialect = att "
         "\"cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes "
         "[$0], [$1], $2, [$3];\", \"r,l,r,r,~{memory}\" " + dst + ", " + src +
         ", " + bytes + ", " + bar + " : (i32, i64, i32, i32) -> ()");
}

/// Asks L2 for `bytes` (i32, a multiple of 16) at global address `src` (i64,
/// 16-byte aligned); nothing waits for it.
inline void prefetchL2(Writer &w, StringRef src, StringRef bytes) {
  w.line("llvm.inline_asm has_side_effects asm_dialect = att "
         "\"cp.async.bulk.prefetch.L2.global [$0], $1;\", \"l,r,~{memory}\" " +
         src + ", " + bytes + " : (i64, i32) -> ()");
}

} // namespace mlir::kvc::kernels::detail

#endif // KVC_LIB_CONVERSION_KVCTOGPU_BULK_H
