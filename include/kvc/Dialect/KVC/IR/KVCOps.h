//===- KVCOps.h - kvc dialect operations ------------------------*- C++ -*-===//
#ifndef KVC_DIALECT_KVC_IR_KVCOPS_H
#define KVC_DIALECT_KVC_IR_KVCOPS_H

#include "kvc/Dialect/KVC/IR/KVCDialect.h"
#include "kvc/Dialect/KVC/IR/KVCTypes.h"
#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

namespace mlir::kvc {
/// The memory of key/value caches: cache ops read, write, allocate and free it.
struct CacheResource : public SideEffects::Resource::Base<CacheResource> {
  StringRef getName() final { return "kvc::CacheResource"; }
};
} // namespace mlir::kvc

#define GET_OP_CLASSES
#include "kvc/Dialect/KVC/IR/KVCOps.h.inc"

#endif // KVC_DIALECT_KVC_IR_KVCOPS_H
