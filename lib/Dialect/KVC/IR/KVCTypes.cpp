//===- KVCTypes.cpp - kvc dialect types ------------------------------------===//
#include "kvc/Dialect/KVC/IR/KVCTypes.h"
#include "kvc/Dialect/KVC/IR/KVCDialect.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace mlir::kvc;

#define GET_TYPEDEF_CLASSES
#include "kvc/Dialect/KVC/IR/KVCTypes.cpp.inc"

void KVCDialect::registerTypes() {
  addTypes<
#define GET_TYPEDEF_LIST
#include "kvc/Dialect/KVC/IR/KVCTypes.cpp.inc"
      >();
}

Type CacheType::parse(AsmParser &parser) {
  SmallVector<int64_t, 4> shape;
  Type elementType;
  SMLoc loc = parser.getCurrentLocation();
  if (parser.parseLess() ||
      parser.parseDimensionList(shape, /*allowDynamic=*/true,
                                /*withTrailingX=*/true) ||
      parser.parseType(elementType) || parser.parseGreater())
    return {};
  if (shape.size() != 4) {
    parser.emitError(loc) << "expected 4 dims (batch x kv_heads x capacity x "
                             "head_dim) in a cache type, found "
                          << shape.size();
    return {};
  }
  return parser.getChecked<CacheType>(loc, parser.getContext(), shape[0],
                                      shape[1], shape[2], shape[3],
                                      elementType);
}

void CacheType::print(AsmPrinter &printer) const {
  printer << "<";
  printer.printDimensionList(getShape());
  printer << "x" << getElementType() << ">";
}

LogicalResult CacheType::verify(function_ref<InFlightDiagnostic()> emitError,
                                int64_t batch, int64_t kvHeads,
                                int64_t capacity, int64_t headDim,
                                Type elementType) {
  if (!elementType.isF16() && !elementType.isBF16() && !elementType.isF32())
    return emitError() << "cache element type must be f16, bf16 or f32, found "
                       << elementType;
  auto checkStatic = [&](int64_t size, StringRef name) -> LogicalResult {
    if (ShapedType::isDynamic(size))
      return emitError() << "cache " << name << " must be static";
    if (size <= 0)
      return emitError() << "cache " << name << " must be positive, found "
                         << size;
    return success();
  };
  auto checkMaybeDynamic = [&](int64_t size, StringRef name) -> LogicalResult {
    if (!ShapedType::isDynamic(size) && size <= 0)
      return emitError() << "cache " << name << " must be positive, found "
                         << size;
    return success();
  };
  return success(succeeded(checkMaybeDynamic(batch, "batch")) &&
                 succeeded(checkStatic(kvHeads, "kv_heads")) &&
                 succeeded(checkMaybeDynamic(capacity, "capacity")) &&
                 succeeded(checkStatic(headDim, "head_dim")));
}

RankedTensorType CacheType::getLengthsType() const {
  return RankedTensorType::get({getBatch()},
                               IntegerType::get(getContext(), 32));
}
