//===- KVCDialect.cpp - kvc dialect registration ---------------------------===//
#include "kvc/Dialect/KVC/IR/KVCDialect.h"
#include "kvc/Dialect/KVC/IR/KVCOps.h"
#include "kvc/Dialect/KVC/IR/KVCTypes.h"


using namespace mlir;
using namespace mlir::kvc;

#include "kvc/Dialect/KVC/IR/KVCDialect.cpp.inc"

void KVCDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "kvc/Dialect/KVC/IR/KVCOps.cpp.inc"
      >();
  registerTypes();
}
