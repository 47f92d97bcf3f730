//===- Passes.h - kvc dialect transforms ------------------------*- C++ -*-===//
#ifndef KVC_DIALECT_KVC_TRANSFORMS_PASSES_H
#define KVC_DIALECT_KVC_TRANSFORMS_PASSES_H

#include "kvc/Dialect/KVC/IR/KVCDialect.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/ControlFlow/IR/ControlFlowOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Pass/Pass.h"

namespace mlir::kvc {
#define GEN_PASS_DECL
#define GEN_PASS_REGISTRATION
#include "kvc/Dialect/KVC/Transforms/Passes.h.inc"
} // namespace mlir::kvc

#endif // KVC_DIALECT_KVC_TRANSFORMS_PASSES_H
