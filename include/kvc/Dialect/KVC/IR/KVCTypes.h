//===- KVCTypes.h - kvc dialect types ---------------------------*- C++ -*-===//
#ifndef KVC_DIALECT_KVC_IR_KVCTYPES_H
#define KVC_DIALECT_KVC_IR_KVCTYPES_H

#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Types.h"

#define GET_TYPEDEF_CLASSES
#include "kvc/Dialect/KVC/IR/KVCTypes.h.inc"

#endif // KVC_DIALECT_KVC_IR_KVCTYPES_H
