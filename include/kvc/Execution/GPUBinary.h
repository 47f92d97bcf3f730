//===- GPUBinary.h - cubins and PTX of kvc's GPU kernels --------*- C++ -*-===//
#ifndef KVC_EXECUTION_GPUBINARY_H
#define KVC_EXECUTION_GPUBINARY_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Support/LLVM.h"

#include <string>

namespace mlir::kvc {

enum class GPUFormat { Cubin, PTX };

/// Runs `kvc-gpu-pipeline` on `module` and returns the bytes of its
/// `gpu.binary @kvc_kernels`: a cubin for sm_90a, or PTX text. Errors are
/// reported as diagnostics on the module.
FailureOr<std::string> serializeGPUModule(ModuleOp module, GPUFormat format);

} // namespace mlir::kvc

#endif // KVC_EXECUTION_GPUBINARY_H
