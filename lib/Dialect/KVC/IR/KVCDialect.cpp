//===- KVCDialect.cpp - kvc dialect registration ---------------------------===//
#include "kvc/Dialect/KVC/IR/KVCDialect.h"
#include "kvc/Dialect/KVC/IR/KVCOps.h"
#include "kvc/Dialect/KVC/IR/KVCTypes.h"

#include "mlir/Transforms/InliningUtils.h"

using namespace mlir;
using namespace mlir::kvc;

#include "kvc/Dialect/KVC/IR/KVCDialect.cpp.inc"

namespace {
/// Every kvc op may be inlined: none refers to its enclosing function, and
/// models are written as calls to blocks that kvc-incrementalize wants
/// inlined.
struct KVCInlinerInterface : DialectInlinerInterface {
  using DialectInlinerInterface::DialectInlinerInterface;
  bool isLegalToInline(Operation *, Region *, bool, IRMapping &) const final {
    return true;
  }
};
} // namespace

void KVCDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "kvc/Dialect/KVC/IR/KVCOps.cpp.inc"
      >();
  registerTypes();
  addInterfaces<KVCInlinerInterface>();
}
