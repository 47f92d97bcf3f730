//===- KVCOps.cpp - kvc dialect operations ---------------------------------===//
#include "kvc/Dialect/KVC/IR/KVCOps.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/IR/PatternMatch.h"

#include <cmath>

using namespace mlir;
using namespace mlir::kvc;

#define GET_OP_CLASSES
#include "kvc/Dialect/KVC/IR/KVCOps.cpp.inc"

//===----------------------------------------------------------------------===//
// Verifier helpers
//===----------------------------------------------------------------------===//

/// Names the dims of a `[batch, heads, seq, head_dim]` operand in messages.
static constexpr const char *kDimNames[] = {"batch", "heads", "length",
                                            "head_dim"};

static std::string dimStr(int64_t size) {
  return ShapedType::isDynamic(size) ? "?" : std::to_string(size);
}

/// Fails if two sizes of the same dim are both static and differ.
static LogicalResult checkSameSize(Operation *op, int64_t found,
                                   int64_t expected, const Twine &what,
                                   const Twine &against) {
  if (ShapedType::isDynamic(found) || ShapedType::isDynamic(expected) ||
      found == expected)
    return success();
  return op->emitOpError() << what << " " << dimStr(found)
                           << " does not match " << against << " "
                           << dimStr(expected);
}

/// Head counts and head sizes decide the head grouping and the loop nests of
/// every lowering, so they must be known at compile time, and nonzero.
static LogicalResult checkStaticHeads(Operation *op, ShapedType type,
                                     StringRef name) {
  for (int dim : {1, 3}) {
    if (type.isDynamicDim(dim))
      return op->emitOpError() << name << " " << kDimNames[dim]
                               << " must be static, found " << type;
    if (type.getDimSize(dim) == 0)
      return op->emitOpError() << name << " " << kDimNames[dim]
                               << " must be positive, found " << type;
  }
  return success();
}

/// Checks the query/key head grouping: `kvHeads` must divide `qHeads`.
static LogicalResult checkHeadGroups(Operation *op, int64_t qHeads,
                                     int64_t kvHeads, StringRef kvName) {
  if (qHeads % kvHeads == 0)
    return success();
  return op->emitOpError() << "query heads " << qHeads
                           << " are not a multiple of " << kvName << " heads "
                           << kvHeads;
}

static LogicalResult checkElementType(Operation *op, Type found,
                                      Type expected, StringRef what,
                                      StringRef against) {
  if (found == expected)
    return success();
  return op->emitOpError() << what << " element type " << found
                           << " does not match " << against << " element type "
                           << expected;
}

static float defaultScale(int64_t headDim) {
  return 1.0f / std::sqrt(static_cast<float>(headDim));
}

static LogicalResult checkScale(Operation *op, FloatAttr scale) {
  if (!scale)
    return success();
  float value = scale.getValue().convertToFloat();
  if (std::isfinite(value) && value != 0.0f)
    return success();
  return op->emitOpError() << "scale must be finite and nonzero, found "
                           << value;
}

/// The `scale` attribute of an attention op, else `1/sqrt(head_dim)`.
static float scaleOrDefault(FloatAttr scale, int64_t headDim) {
  return scale ? scale.getValue().convertToFloat() : defaultScale(headDim);
}


/// Checks a query against the key (or cache) it attends over: batch, head
/// grouping, head size and element type. `kvShape` is `[B, Hkv, S, D]`.
static LogicalResult checkQueryAgainstKeys(Operation *op, ShapedType query,
                                           ArrayRef<int64_t> kvShape,
                                           Type kvElementType,
                                           StringRef kvName) {
  if (failed(checkStaticHeads(op, query, "query")) ||
      failed(checkSameSize(op, kvShape[0], query.getDimSize(0),
                           Twine(kvName) + " batch", "query batch")) ||
      failed(checkHeadGroups(op, query.getDimSize(1), kvShape[1], kvName)) ||
      failed(checkSameSize(op, kvShape[3], query.getDimSize(3),
                           Twine(kvName) + " head_dim", "query head_dim")))
    return failure();
  return checkElementType(op, kvElementType, query.getElementType(), kvName,
                          "query");
}

//===----------------------------------------------------------------------===//
// AttentionOp
//===----------------------------------------------------------------------===//

LogicalResult AttentionOp::verify() {
  auto query = getQuery().getType();
  auto key = getKey().getType();
  if (failed(checkStaticHeads(*this, key, "key")) ||
      failed(checkQueryAgainstKeys(*this, query, key.getShape(),
                                   key.getElementType(), "key")) ||
      failed(checkScale(*this, getScaleAttr())))
    return failure();
  if (getCausal() &&
      failed(checkSameSize(*this, key.getDimSize(2), query.getDimSize(2),
                           "causal attention key length", "query length")))
    return failure();
  if (!getMask())
    return success();
  auto mask = getMask().getType();
  int64_t maskHeads = mask.getDimSize(1);
  if (maskHeads != 1 && maskHeads != query.getDimSize(1))
    return emitOpError() << "mask heads " << dimStr(maskHeads)
                         << " must be 1 or the query heads "
                         << query.getDimSize(1);
  if (failed(checkSameSize(*this, mask.getDimSize(0), query.getDimSize(0),
                           "mask batch", "query batch")) ||
      failed(checkSameSize(*this, mask.getDimSize(2), query.getDimSize(2),
                           "mask query length", "query length")) ||
      failed(checkSameSize(*this, mask.getDimSize(3), key.getDimSize(2),
                           "mask key length", "key length")))
    return failure();
  return checkElementType(*this, mask.getElementType(),
                          query.getElementType(), "mask", "query");
}

float AttentionOp::getScaleOrDefault() {
  return scaleOrDefault(getScaleAttr(), getQuery().getType().getDimSize(3));
}

namespace {
/// Drops a `scale` equal to the default `1/sqrt(head_dim)`, so that equal
/// attentions print alike.
template <typename OpTy>
struct DropDefaultScale : OpRewritePattern<OpTy> {
  using OpRewritePattern<OpTy>::OpRewritePattern;
  LogicalResult matchAndRewrite(OpTy op,
                                PatternRewriter &rewriter) const override {
    if (!op.getScaleAttr())
      return rewriter.notifyMatchFailure(op, "no scale attribute");
    if (op.getScaleOrDefault() !=
        defaultScale(op.getQuery().getType().getDimSize(3)))
      return rewriter.notifyMatchFailure(op, "scale is not the default");
    rewriter.modifyOpInPlace(op, [&] { op.removeScaleAttr(); });
    return success();
  }
};
} // namespace

void AttentionOp::getCanonicalizationPatterns(RewritePatternSet &results,
                                              MLIRContext *context) {
  results.add<DropDefaultScale<AttentionOp>>(context);
}

//===----------------------------------------------------------------------===//
// CacheAllocOp
//===----------------------------------------------------------------------===//

LogicalResult CacheAllocOp::verify() {
  CacheType type = getCache().getType();
  int64_t numDynamic = llvm::count_if(type.getShape(), ShapedType::isDynamic);
  if (static_cast<int64_t>(getDynamicSizes().size()) != numDynamic)
    return emitOpError() << "expected " << numDynamic
                         << " dynamic size operands for " << type
                         << ", found " << getDynamicSizes().size();
  return success();
}

namespace {
/// Erases a cache that nothing reads: its only users append to it or free it.
struct EraseWriteOnlyCache : OpRewritePattern<CacheAllocOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(CacheAllocOp alloc,
                                PatternRewriter &rewriter) const override {
    for (Operation *user : alloc->getUsers())
      if (!isa<CacheAppendOp, CacheDeallocOp, CacheTruncateOp>(user))
        return rewriter.notifyMatchFailure(alloc, "the cache is read");
    for (Operation *user : llvm::make_early_inc_range(alloc->getUsers()))
      rewriter.eraseOp(user);
    rewriter.eraseOp(alloc);
    return success();
  }
};
} // namespace

void CacheAllocOp::getCanonicalizationPatterns(RewritePatternSet &results,
                                               MLIRContext *context) {
  results.add<EraseWriteOnlyCache>(context);
}

//===----------------------------------------------------------------------===//
// CacheAppendOp
//===----------------------------------------------------------------------===//

LogicalResult CacheAppendOp::verify() {
  CacheType cache = getCache().getType();
  auto key = getKey().getType();
  if (failed(checkSameSize(*this, key.getDimSize(0), cache.getBatch(),
                           "key batch", "cache batch")) ||
      failed(checkSameSize(*this, key.getDimSize(1), cache.getKvHeads(),
                           "key heads", "cache kv_heads")) ||
      failed(checkSameSize(*this, key.getDimSize(3), cache.getHeadDim(),
                           "key head_dim", "cache head_dim")) ||
      failed(checkElementType(*this, key.getElementType(),
                              cache.getElementType(), "key", "cache")))
    return failure();
  if (FloatAttr theta = getRotaryThetaAttr()) {
    if (!(theta.getValueAsDouble() > 0))
      return emitOpError() << "rotary_theta must be positive, found "
                           << theta.getValueAsDouble();
    if (key.getDimSize(3) % 2)
      return emitOpError() << "rotary embedding needs an even head_dim, found "
                           << key.getDimSize(3);
  }
  int64_t rows = key.getDimSize(2), capacity = cache.getCapacity();
  if (!ShapedType::isDynamic(rows) && !ShapedType::isDynamic(capacity) &&
      rows > capacity)
    return emitOpError() << "appends " << rows
                         << " rows per sequence to a cache of capacity "
                         << capacity;
  return success();
}

//===----------------------------------------------------------------------===//
// DecodeAttentionOp
//===----------------------------------------------------------------------===//

LogicalResult DecodeAttentionOp::verify() {
  CacheType cache = getCache().getType();
  auto query = getQuery().getType();
  if (failed(checkQueryAgainstKeys(*this, query, cache.getShape(),
                                   cache.getElementType(), "cache")) ||
      failed(checkScale(*this, getScaleAttr())))
    return failure();
  return success();
}

float DecodeAttentionOp::getScaleOrDefault() {
  return scaleOrDefault(getScaleAttr(), getQuery().getType().getDimSize(3));
}

void DecodeAttentionOp::getCanonicalizationPatterns(RewritePatternSet &results,
                                                    MLIRContext *context) {
  results.add<DropDefaultScale<DecodeAttentionOp>>(context);
}
