//===- Pipelines.h - kvc pass pipelines -------------------------*- C++ -*-===//
#ifndef KVC_PIPELINES_PIPELINES_H
#define KVC_PIPELINES_PIPELINES_H

#include <string>

namespace mlir {
class OpPassManager;

namespace kvc {
/// `kvc-cpu-pipeline`: kvc, tensor and linalg IR to the LLVM dialect through
/// the CPU reference lowering, bufferization and buffer deallocation.
void buildCPUPipeline(OpPassManager &pm);

/// `kvc-gpu-pipeline`: the `gpu.module`s of a module (kvc's kernels among
/// them) to NVVM for sm_90a and into `gpu.binary` ops holding `format`
/// ("bin": cubin, "isa": PTX, "fatbin"). Host code is left as it is.
void buildGPUPipeline(OpPassManager &pm, const std::string &format = "bin");

/// Registers every kvc pipeline with the global pass registry.
void registerKVCPipelines();
} // namespace kvc
} // namespace mlir

#endif // KVC_PIPELINES_PIPELINES_H
