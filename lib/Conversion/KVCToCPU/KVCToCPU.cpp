//===- KVCToCPU.cpp - kvc to loops over memrefs ----------------------------===//
//
// The CPU reference lowering. Every attention op, full-sequence or cached,
// goes through one loop nest (`emitAttention`): per query row, scores over a
// key range, a two-pass stable softmax and a weighted sum of values, all in
// f32. Only the key range differs between the ops.
//
//===----------------------------------------------------------------------===//

#include "kvc/Conversion/KVCToCPU/KVCToCPU.h"
#include "kvc/Conversion/Utils.h"
#include "kvc/Conversion/Passes.h"
#include "kvc/Dialect/KVC/IR/KVCOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/ControlFlow/IR/ControlFlowOps.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"
#include "mlir/Transforms/DialectConversion.h"

#include <cmath>
#include <functional>

namespace mlir::kvc {
#define GEN_PASS_DEF_CONVERTKVCTOCPUPASS
#include "kvc/Conversion/Passes.h.inc"
} // namespace mlir::kvc

using namespace mlir;
using namespace mlir::kvc;

namespace {

/// The memrefs a cache lowers to, in the order of the type conversion.
struct CacheBuffers {
  Value keys, values, lengths;
  explicit CacheBuffers(ValueRange converted)
      : keys(converted[0]), values(converted[1]), lengths(converted[2]) {}
};

MemRefType getRowsType(CacheType type) {
  return MemRefType::get(type.getShape(), type.getElementType());
}

MemRefType getLengthsMemRefType(CacheType type) {
  return MemRefType::get({type.getBatch()},
                         IntegerType::get(type.getContext(), 32));
}

//===----------------------------------------------------------------------===//
// Loop-building helpers
//===----------------------------------------------------------------------===//

Value cst(ImplicitLocOpBuilder &b, int64_t value) {
  return arith::ConstantIndexOp::create(b, value);
}

Value cstF32(ImplicitLocOpBuilder &b, float value) {
  return arith::ConstantOp::create(b, b.getF32FloatAttr(value));
}

/// `for iv in [lb, ub)` with iteration values; `body` returns the values to
/// yield.
ValueRange forLoop(
    ImplicitLocOpBuilder &b, Value lb, Value ub, ValueRange inits,
    llvm::function_ref<SmallVector<Value>(ImplicitLocOpBuilder &, Value,
                                          ValueRange)>
        body) {
  auto loop = scf::ForOp::create(
      b, lb, ub, cst(b, 1), inits,
      [&](OpBuilder &nested, Location loc, Value iv, ValueRange iters) {
        ImplicitLocOpBuilder nb(loc, nested);
        scf::YieldOp::create(nb, body(nb, iv, iters));
      });
  return loop.getResults();
}

/// `for iv in [0, ub)` without iteration values.
void forEach(ImplicitLocOpBuilder &b, Value ub,
             llvm::function_ref<void(ImplicitLocOpBuilder &, Value)> body) {
  forLoop(b, cst(b, 0), ub, {}, [&](ImplicitLocOpBuilder &nb, Value iv,
                                    ValueRange) -> SmallVector<Value> {
    body(nb, iv);
    return {};
  });
}

Value toF32(ImplicitLocOpBuilder &b, Value value) {
  if (value.getType().isF32())
    return value;
  return arith::ExtFOp::create(b, b.getF32Type(), value);
}

Value fromF32(ImplicitLocOpBuilder &b, Value value, Type type) {
  if (type.isF32())
    return value;
  return arith::TruncFOp::create(b, type, value);
}

Value load(ImplicitLocOpBuilder &b, Value memref, ValueRange indices) {
  return memref::LoadOp::create(b, memref, indices);
}

Value loadIndex(ImplicitLocOpBuilder &b, Value memref, Value index) {
  return arith::IndexCastOp::create(b, b.getIndexType(),
                                    load(b, memref, index));
}

Value dim(ImplicitLocOpBuilder &b, Value shaped, int64_t index) {
  if (isa<MemRefType>(shaped.getType()))
    return memref::DimOp::create(b, shaped, index);
  return tensor::DimOp::create(b, shaped, index);
}

//===----------------------------------------------------------------------===//
// The attention loop nest
//===----------------------------------------------------------------------===//

/// Everything that differs between the attention ops.
struct AttentionSpec {
  Value query;  // memref [B, Hq, Sq, D]
  Value keys;   // memref [B, Hkv, Skv, D]
  Value values; // memref [B, Hkv, Skv, D]
  Value mask;   // memref [B, 1 or Hq, Sq, Skv], or null
  Value out;    // memref [B, Hq, Sq, D]
  float scale;
  /// The number of keys row `row` of sequence `batch` attends to: keys
  /// `[0, n)`. At most dim 2 of `keys`.
  std::function<Value(ImplicitLocOpBuilder &, Value batch, Value row)>
      numKeys;
};

/// Emits `out = softmax(scale * q k^T + mask) v` row by row: scores into a
/// scratch row, their max, exp and sum, then the weighted sum of values into
/// an f32 accumulator row. A row with no keys is written as zero.
void emitAttention(ImplicitLocOpBuilder &b, const AttentionSpec &spec) {
  auto queryType = cast<MemRefType>(spec.query.getType());
  auto keysType = cast<MemRefType>(spec.keys.getType());
  Type elementType = queryType.getElementType();
  int64_t group = queryType.getDimSize(1) / keysType.getDimSize(1);
  bool broadcastMask =
      spec.mask && cast<MemRefType>(spec.mask.getType()).getDimSize(1) == 1;
  Type f32 = b.getF32Type();

  // Scratch rows; buffer deallocation frees them after their last use.
  Value scores = memref::AllocOp::create(
      b, MemRefType::get({ShapedType::kDynamic}, f32), dim(b, spec.keys, 2));
  Value acc = memref::AllocOp::create(
      b, MemRefType::get({queryType.getDimSize(3)}, f32));
  Value zero = cstF32(b, 0.0f);
  Value headDim = cst(b, queryType.getDimSize(3));

  forEach(b, dim(b, spec.query, 0), [&](ImplicitLocOpBuilder &b, Value bi) {
    forEach(b, cst(b, queryType.getDimSize(1)), [&](ImplicitLocOpBuilder &b,
                                                    Value h) {
      Value kvHead = arith::DivUIOp::create(b, h, cst(b, group));
      Value maskHead = broadcastMask ? cst(b, 0) : h;
      forEach(b, dim(b, spec.query, 2), [&](ImplicitLocOpBuilder &b, Value i) {
        Value n = spec.numKeys(b, bi, i);
        Value negInf = cstF32(b, -std::numeric_limits<float>::infinity());
        // Pass 1: scores and their max.
        Value max = forLoop(b, cst(b, 0), n, negInf,
                            [&](ImplicitLocOpBuilder &b, Value j,
                                ValueRange iters) -> SmallVector<Value> {
                              Value dot = forLoop(
                                  b, cst(b, 0), headDim, zero,
                                  [&](ImplicitLocOpBuilder &b, Value d,
                                      ValueRange sum) -> SmallVector<Value> {
                                    Value q = toF32(
                                        b, load(b, spec.query, {bi, h, i, d}));
                                    Value k = toF32(
                                        b, load(b, spec.keys, {bi, kvHead, j, d}));
                                    Value qk = arith::MulFOp::create(b, q, k);
                                    return {arith::AddFOp::create(b, sum[0], qk)};
                                  })[0];
                              Value s = arith::MulFOp::create(
                                  b, dot, cstF32(b, spec.scale));
                              if (spec.mask)
                                s = arith::AddFOp::create(
                                    b, s,
                                    toF32(b, load(b, spec.mask,
                                                  {bi, maskHead, i, j})));
                              memref::StoreOp::create(b, s, scores, j);
                              return {arith::MaximumFOp::create(b, iters[0], s)};
                            })[0];
        // Pass 2: probabilities (unnormalized) and their sum.
        Value sum = forLoop(b, cst(b, 0), n, zero,
                            [&](ImplicitLocOpBuilder &b, Value j,
                                ValueRange iters) -> SmallVector<Value> {
                              Value s = load(b, scores, j);
                              Value p = math::ExpOp::create(
                                  b, arith::SubFOp::create(b, s, max));
                              memref::StoreOp::create(b, p, scores, j);
                              return {arith::AddFOp::create(b, iters[0], p)};
                            })[0];
        // Pass 3: the weighted sum of values.
        forEach(b, headDim, [&](ImplicitLocOpBuilder &b, Value d) {
          memref::StoreOp::create(b, zero, acc, d);
        });
        forEach(b, n, [&](ImplicitLocOpBuilder &b, Value j) {
          Value p = load(b, scores, j);
          forEach(b, headDim, [&](ImplicitLocOpBuilder &b, Value d) {
            Value v = toF32(b, load(b, spec.values, {bi, kvHead, j, d}));
            Value pv = arith::MulFOp::create(b, p, v);
            memref::StoreOp::create(
                b, arith::AddFOp::create(b, load(b, acc, d), pv), acc, d);
          });
        });
        Value empty = arith::CmpIOp::create(b, arith::CmpIPredicate::sle, n,
                                            cst(b, 0));
        forEach(b, headDim, [&](ImplicitLocOpBuilder &b, Value d) {
          Value o = arith::DivFOp::create(b, load(b, acc, d), sum);
          o = arith::SelectOp::create(b, empty, zero, o);
          memref::StoreOp::create(b, fromF32(b, o, elementType), spec.out,
                                  ValueRange{bi, h, i, d});
        });
      });
    });
  });
}

//===----------------------------------------------------------------------===//
// Patterns
//===----------------------------------------------------------------------===//

struct AttentionLowering : OpConversionPattern<AttentionOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult
  matchAndRewrite(AttentionOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    AttentionSpec spec;
    spec.query = toBuffer(b, adaptor.getQuery());
    spec.keys = toBuffer(b, adaptor.getKey());
    spec.values = toBuffer(b, adaptor.getValue());
    spec.mask = adaptor.getMask() ? toBuffer(b, adaptor.getMask()) : Value();
    spec.out = allocLike(b, adaptor.getQuery());
    spec.scale = op.getScaleOrDefault();
    Value numKeys = dim(b, spec.keys, 2);
    bool causal = op.getCausal();
    spec.numKeys = [&](ImplicitLocOpBuilder &b, Value, Value row) -> Value {
      if (!causal)
        return numKeys;
      Value upTo = arith::AddIOp::create(b, row, cst(b, 1));
      return arith::MinUIOp::create(b, upTo, numKeys);
    };
    emitAttention(b, spec);
    rewriter.replaceOp(op, toTensor(b, spec.out, op.getType()));
    return success();
  }
};

struct DecodeAttentionLowering : OpConversionPattern<DecodeAttentionOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult
  matchAndRewrite(DecodeAttentionOp op, OneToNOpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    CacheBuffers cache(adaptor.getCache());
    Value query = adaptor.getQuery().front();
    Value positions = toBuffer(b, adaptor.getPositions().front());
    AttentionSpec spec;
    spec.query = toBuffer(b, query);
    spec.keys = cache.keys;
    spec.values = cache.values;
    spec.out = allocLike(b, query);
    spec.scale = op.getScaleOrDefault();
    // Row t of sequence s stands at positions[s] + t and sees the cache rows
    // up to and including its own, among those written.
    spec.numKeys = [&](ImplicitLocOpBuilder &b, Value batch,
                       Value row) -> Value {
      Value position =
          arith::AddIOp::create(b, loadIndex(b, positions, batch), row);
      Value upTo = arith::AddIOp::create(b, position, cst(b, 1));
      return arith::MinSIOp::create(b, upTo,
                                    loadIndex(b, cache.lengths, batch));
    };
    emitAttention(b, spec);
    rewriter.replaceOp(op, toTensor(b, spec.out, op.getType()));
    return success();
  }
};

struct CacheAllocLowering : OpConversionPattern<CacheAllocOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult
  matchAndRewrite(CacheAllocOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    CacheType type = op.getType();
    ValueRange sizes = adaptor.getDynamicSizes();
    Value keys = memref::AllocOp::create(b, getRowsType(type), sizes);
    Value values = memref::AllocOp::create(b, getRowsType(type), sizes);
    ValueRange batchSize =
        type.getBatch() == ShapedType::kDynamic ? sizes.take_front() : ValueRange();
    Value lengths =
        memref::AllocOp::create(b, getLengthsMemRefType(type), batchSize);
    Value zero = arith::ConstantOp::create(b, b.getI32IntegerAttr(0));
    linalg::FillOp::create(b, zero, lengths);
    rewriter.replaceOpWithMultiple(op, {{keys, values, lengths}});
    return success();
  }
};

/// This lowering allocates and never frees: ownership-based buffer
/// deallocation, which runs after bufferization, frees every buffer after its
/// last use and refuses IR that already holds `memref.dealloc`. So the end of
/// a cache's life lowers to nothing here.
struct CacheDeallocLowering : OpConversionPattern<CacheDeallocOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult
  matchAndRewrite(CacheDeallocOp op, OneToNOpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    rewriter.eraseOp(op);
    return success();
  }
};

struct CacheLengthLowering : OpConversionPattern<CacheLengthOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult
  matchAndRewrite(CacheLengthOp op, OneToNOpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    CacheBuffers cache(adaptor.getCache());
    // A snapshot: later appends must not change the returned tensor.
    SmallVector<Value> sizes;
    if (op.getType().isDynamicDim(0))
      sizes.push_back(dim(b, cache.lengths, 0));
    Value copy = memref::AllocOp::create(
        b, getLengthsMemRefType(op.getCache().getType()), sizes);
    linalg::CopyOp::create(b, cache.lengths, copy);
    rewriter.replaceOp(op, toTensor(b, copy, op.getType()));
    return success();
  }
};

/// Writes the `rows` key rows of sequence `s` at `position` onward, each
/// rotated to its position (rotate-half convention, f32 arithmetic).
void rotateRows(ImplicitLocOpBuilder &b, Value from, Value to, Value s,
                Value position, Value rows, double theta) {
  auto type = cast<MemRefType>(from.getType());
  int64_t half = type.getDimSize(3) / 2;
  // f_i = theta^(-2i/D) = exp(i * (-2 ln(theta) / D)).
  float exponent = -2.0 * std::log(theta) / type.getDimSize(3);
  forEach(b, dim(b, from, 1), [&](ImplicitLocOpBuilder &b, Value h) {
    forEach(b, rows, [&](ImplicitLocOpBuilder &b, Value t) {
      Value row = arith::AddIOp::create(b, position, t);
      Value p = arith::SIToFPOp::create(
          b, b.getF32Type(),
          arith::IndexCastOp::create(b, b.getI64Type(), row));
      forEach(b, cst(b, half), [&](ImplicitLocOpBuilder &b, Value i) {
        Value fi = arith::SIToFPOp::create(
            b, b.getF32Type(), arith::IndexCastOp::create(b, b.getI64Type(), i));
        Value freq = math::ExpOp::create(
            b, arith::MulFOp::create(b, fi, cstF32(b, exponent)));
        Value angle = arith::MulFOp::create(b, p, freq);
        Value c = math::CosOp::create(b, angle);
        Value sn = math::SinOp::create(b, angle);
        Value j = arith::AddIOp::create(b, i, cst(b, half));
        Value x1 = toF32(b, load(b, from, {s, h, t, i}));
        Value x2 = toF32(b, load(b, from, {s, h, t, j}));
        Value y1 = arith::SubFOp::create(b, arith::MulFOp::create(b, x1, c),
                                         arith::MulFOp::create(b, x2, sn));
        Value y2 = arith::AddFOp::create(b, arith::MulFOp::create(b, x2, c),
                                         arith::MulFOp::create(b, x1, sn));
        Type element = type.getElementType();
        memref::StoreOp::create(b, fromF32(b, y1, element), to,
                                ValueRange{s, h, row, i});
        memref::StoreOp::create(b, fromF32(b, y2, element), to,
                                ValueRange{s, h, row, j});
      });
    });
  });
}

struct CacheAppendLowering : OpConversionPattern<CacheAppendOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult
  matchAndRewrite(CacheAppendOp op, OneToNOpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    CacheBuffers cache(adaptor.getCache());
    Value positions = toBuffer(b, adaptor.getPositions().front());
    Value keys = toBuffer(b, adaptor.getKey().front());
    Value values = toBuffer(b, adaptor.getValue().front());
    Value rows = dim(b, keys, 2);
    Value capacity = dim(b, cache.keys, 2);
    forEach(b, dim(b, keys, 0), [&](ImplicitLocOpBuilder &b, Value s) {
      Value position = loadIndex(b, positions, s);
      Value length = loadIndex(b, cache.lengths, s);
      Value end = arith::AddIOp::create(b, position, rows);
      auto check = [&](arith::CmpIPredicate pred, Value lhs, Value rhs,
                       StringRef message) {
        Value ok = arith::CmpIOp::create(b, pred, lhs, rhs);
        cf::AssertOp::create(b, ok, b.getStringAttr(message));
      };
      check(arith::CmpIPredicate::sge, position, cst(b, 0),
            "kvc.cache.append: negative position");
      check(arith::CmpIPredicate::sle, position, length,
            "kvc.cache.append: position past the sequence length would leave "
            "unwritten rows");
      check(arith::CmpIPredicate::sle, end, capacity,
            "kvc.cache.append: rows past the cache capacity");
      auto copyRows = [&](Value from, Value to) {
        auto sourceType = cast<MemRefType>(from.getType());
        SmallVector<OpFoldResult> fromOffsets = {s, b.getIndexAttr(0),
                                                 b.getIndexAttr(0),
                                                 b.getIndexAttr(0)};
        SmallVector<OpFoldResult> toOffsets = {s, b.getIndexAttr(0), position,
                                               b.getIndexAttr(0)};
        SmallVector<OpFoldResult> sizes = {
            b.getIndexAttr(1),
            b.getIndexAttr(sourceType.getDimSize(1)), rows,
            b.getIndexAttr(sourceType.getDimSize(3))};
        SmallVector<OpFoldResult> strides(4, b.getIndexAttr(1));
        Value src =
            memref::SubViewOp::create(b, from, fromOffsets, sizes, strides);
        Value dst = memref::SubViewOp::create(b, to, toOffsets, sizes, strides);
        linalg::CopyOp::create(b, src, dst);
      };
      if (FloatAttr theta = op.getRotaryThetaAttr())
        rotateRows(b, keys, cache.keys, s, position, rows,
                   theta.getValueAsDouble());
      else
        copyRows(keys, cache.keys);
      copyRows(values, cache.values);
      Value newLength =
          arith::IndexCastOp::create(b, b.getI32Type(), end);
      memref::StoreOp::create(b, newLength, cache.lengths, s);
    });
    rewriter.eraseOp(op);
    return success();
  }
};

struct CacheTruncateLowering : OpConversionPattern<CacheTruncateOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult
  matchAndRewrite(CacheTruncateOp op, OneToNOpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    CacheBuffers cache(adaptor.getCache());
    Value lengths = toBuffer(b, adaptor.getLengths().front());
    forEach(b, dim(b, lengths, 0), [&](ImplicitLocOpBuilder &b, Value s) {
      Value length = memref::LoadOp::create(b, lengths, s);
      Value current = memref::LoadOp::create(b, cache.lengths, s);
      Value zero = arith::ConstantOp::create(b, b.getI32IntegerAttr(0));
      Value ok = arith::AndIOp::create(
          b, arith::CmpIOp::create(b, arith::CmpIPredicate::sge, length, zero),
          arith::CmpIOp::create(b, arith::CmpIPredicate::sle, length, current));
      cf::AssertOp::create(
          b, ok,
          b.getStringAttr("kvc.cache.truncate: length outside [0, current "
                          "length]"));
      memref::StoreOp::create(b, length, cache.lengths, s);
    });
    rewriter.eraseOp(op);
    return success();
  }
};

struct ConvertKVCToCPUPass
    : kvc::impl::ConvertKVCToCPUPassBase<ConvertKVCToCPUPass> {
  void runOnOperation() override {
    MLIRContext *context = &getContext();
    TypeConverter typeConverter;
    typeConverter.addConversion([](Type type) { return type; });
    populateKVCToCPUTypeConversions(typeConverter);

    ConversionTarget target(*context);
    configureKVCToCPULegality(target);
    RewritePatternSet patterns(context);
    populateKVCToCPUConversionPatterns(typeConverter, patterns);

    populateCacheBoundaryConversions(typeConverter, patterns, target);

    if (failed(applyPartialConversion(getOperation(), target,
                                      std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace

void mlir::kvc::populateKVCToCPUTypeConversions(TypeConverter &typeConverter) {
  typeConverter.addConversion(
      [](CacheType type, SmallVectorImpl<Type> &results) -> LogicalResult {
        results.push_back(getRowsType(type));
        results.push_back(getRowsType(type));
        results.push_back(getLengthsMemRefType(type));
        return success();
      });
}

void mlir::kvc::populateKVCToCPUConversionPatterns(
    const TypeConverter &typeConverter, RewritePatternSet &patterns) {
  patterns.add<AttentionLowering, DecodeAttentionLowering, CacheAllocLowering,
               CacheDeallocLowering, CacheLengthLowering, CacheAppendLowering,
               CacheTruncateLowering>(
      typeConverter, patterns.getContext());
}

void mlir::kvc::configureKVCToCPULegality(ConversionTarget &target) {
  target.addIllegalDialect<KVCDialect>();
  target.addLegalDialect<arith::ArithDialect, bufferization::BufferizationDialect,
                         cf::ControlFlowDialect, linalg::LinalgDialect,
                         math::MathDialect, memref::MemRefDialect,
                         scf::SCFDialect, tensor::TensorDialect>();
}
