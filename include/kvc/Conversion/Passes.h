//===- Passes.h - kvc conversion passes -------------------------*- C++ -*-===//
#ifndef KVC_CONVERSION_PASSES_H
#define KVC_CONVERSION_PASSES_H

#include "kvc/Conversion/KVCToCPU/KVCToCPU.h"
#include "kvc/Conversion/KVCToGPU/KVCToGPU.h"
#include "mlir/Pass/Pass.h"

namespace mlir::kvc {
#define GEN_PASS_DECL
#define GEN_PASS_REGISTRATION
#include "kvc/Conversion/Passes.h.inc"
} // namespace mlir::kvc

#endif // KVC_CONVERSION_PASSES_H
