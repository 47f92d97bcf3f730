//===- Pipelines.h - kvc pass pipelines -------------------------*- C++ -*-===//
#ifndef KVC_PIPELINES_PIPELINES_H
#define KVC_PIPELINES_PIPELINES_H

namespace mlir {
class OpPassManager;

namespace kvc {
/// `kvc-cpu-pipeline`: kvc, tensor and linalg IR to the LLVM dialect through
/// the CPU reference lowering, bufferization and buffer deallocation.
void buildCPUPipeline(OpPassManager &pm);

/// Registers every kvc pipeline with the global pass registry.
void registerKVCPipelines();
} // namespace kvc
} // namespace mlir

#endif // KVC_PIPELINES_PIPELINES_H
