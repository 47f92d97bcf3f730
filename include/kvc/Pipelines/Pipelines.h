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

/// `kvc-gpu-model-pipeline`: a model's host functions for the GPU (what
/// `kvc-compile --target=cuda` runs): kvc ops to runtime calls, elementwise
/// fusion, bufferization, projections to cuBLASLt calls, every other linalg
/// op to a generated kernel, all kernels to cubins, the host code to the
/// LLVM dialect calling the runtime (runtime/include/kvc/rt/kvc_rt.h).
void buildGPUModelPipeline(OpPassManager &pm);

/// Registers every kvc pipeline with the global pass registry.
void registerKVCPipelines();
} // namespace kvc
} // namespace mlir

#endif // KVC_PIPELINES_PIPELINES_H
