//===- Cluster.h - thread-block clusters in kvc's kernels -------*- C++ -*-===//
//
// Internal to the kernel generators: the blocks of a cluster (sm_90) read
// each other's shared memory after a cluster barrier, so the splits of a
// flash decode merge there instead of through a combine kernel.
//
//===----------------------------------------------------------------------===//
#ifndef KVC_LIB_CONVERSION_KVCTOGPU_CLUSTER_H
#define KVC_LIB_CONVERSION_KVCTOGPU_CLUSTER_H

#include "KernelWriter.h"

namespace mlir::kvc::kernels::detail {

/// The block's rank in its cluster and the cluster's block count (1 and 1
/// when the kernel is launched without clusters).
inline std::string clusterRank(Writer &w) {
  return w.let("arith.index_cast " +
               w.let("nvvm.read.ptx.sreg.cluster.ctarank : i32") +
               " : i32 to index");
}
inline std::string clusterSize(Writer &w) {
  return w.let("arith.index_cast " +
               w.let("nvvm.read.ptx.sreg.cluster.nctarank : i32") +
               " : i32 to index");
}

/// Every thread of the cluster arrives (releasing its writes to shared
/// memory) and waits for all others (acquiring theirs).
inline void clusterBarrier(Writer &w) {
  w.line("nvvm.cluster.arrive");
  w.line("nvvm.cluster.wait");
}

/// Workgroup buffer `buffer` (of memref type `type`) of the cluster's block
/// `rank`, as a shared::cluster pointer.
inline std::string remoteBuffer(Writer &w, StringRef buffer, StringRef type,
                                StringRef rank) {
  std::string at = w.let("memref.extract_aligned_pointer_as_index " + buffer +
                         " : " + type + " -> index");
  std::string local = w.let(
      "llvm.inttoptr " + w.let("arith.index_cast " + at + " : index to i64") +
      " : i64 to !llvm.ptr<3>");
  std::string r = w.let("arith.index_cast " + rank + " : index to i32");
  return w.let("nvvm.mapa " + local + ", " + r +
               " : !llvm.ptr<3> -> !llvm.ptr<7>");
}

/// A `type` (f32 or vector<8xf32>, 16-byte aligned) at f32 element `at` of
/// a remote buffer.
inline std::string loadRemote(Writer &w, StringRef buffer, StringRef at,
                              StringRef type) {
  std::string i = w.let("arith.index_cast " + at + " : index to i64");
  std::string p = w.let("llvm.getelementptr " + buffer + "[" + i +
                        "] : (!llvm.ptr<7>, i64) -> !llvm.ptr<7>, f32");
  std::string align = type == "f32" ? "4" : "16";
  return w.let("llvm.load " + p + " {alignment = " + align +
               " : i64} : !llvm.ptr<7> -> " + type);
}

} // namespace mlir::kvc::kernels::detail

#endif // KVC_LIB_CONVERSION_KVCTOGPU_CLUSTER_H
