//===- KVCToGPU.cpp - kvc to runtime calls and GPU kernels ----------------===//
//
// Every kvc op becomes one call of the kvc runtime on device pointers; the
// runtime plans the launch (it knows the GPU) and runs the kernels this pass
// adds to `gpu.module @kvc_kernels`.
//
//===----------------------------------------------------------------------===//
#include "kvc/Conversion/KVCToGPU/KVCToGPU.h"
#include "kvc/Conversion/KVCToGPU/Kernels.h"
#include "kvc/Conversion/Passes.h"
#include "kvc/Conversion/Utils.h"
#include "kvc/Dialect/KVC/IR/KVCOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Transforms/DialectConversion.h"

#include <set>

namespace mlir::kvc {
#define GEN_PASS_DEF_CONVERTKVCTOGPUPASS
#include "kvc/Conversion/Passes.h.inc"
} // namespace mlir::kvc

using namespace mlir;
using namespace mlir::kvc;

namespace {

using KeySet = std::set<std::tuple<int64_t, int64_t, int>>;

std::optional<kernels::ElementType> elementTypeOf(Type type) {
  if (type.isF16())
    return kernels::ElementType::F16;
  if (type.isBF16())
    return kernels::ElementType::BF16;
  if (type.isF32())
    return kernels::ElementType::F32;
  return std::nullopt;
}

Type ptrType(MLIRContext *context) {
  return LLVM::LLVMPointerType::get(context);
}

Value i64(ImplicitLocOpBuilder &b, Value index) {
  return arith::IndexCastOp::create(b, b.getI64Type(), index);
}

Value i64(ImplicitLocOpBuilder &b, int64_t value) {
  return arith::ConstantOp::create(b, b.getI64IntegerAttr(value));
}

/// The device pointer of a tensor's buffer.
Value pointerOfTensor(ImplicitLocOpBuilder &b, Value tensor) {
  return pointerOf(b, toBuffer(b, tensor));
}

Value dimAsI64(ImplicitLocOpBuilder &b, Value tensor, int64_t dim) {
  auto type = cast<RankedTensorType>(tensor.getType());
  if (!type.isDynamicDim(dim))
    return i64(b, type.getDimSize(dim));
  return i64(b, tensor::DimOp::create(b, tensor, dim));
}

/// Records the kernels an op needs; fails on types they do not cover.
LogicalResult need(Operation *op, KeySet &keys, int64_t headDim, int64_t group,
                   Type elementType) {
  std::optional<kernels::ElementType> type = elementTypeOf(elementType);
  if (!type)
    return op->emitOpError() << "has no GPU kernel for element type "
                             << elementType;
  keys.insert({headDim, group, static_cast<int>(*type)});
  return success();
}

template <typename OpTy>
struct RuntimePattern : OpConversionPattern<OpTy> {
  RuntimePattern(const TypeConverter &converter, MLIRContext *context,
                 KeySet &keys)
      : OpConversionPattern<OpTy>(converter, context), keys(keys) {}
  KeySet &keys;
};

struct CacheAllocLowering : RuntimePattern<CacheAllocOp> {
  using RuntimePattern::RuntimePattern;
  LogicalResult
  matchAndRewrite(CacheAllocOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    CacheType type = op.getCache().getType();
    std::optional<kernels::ElementType> element =
        elementTypeOf(type.getElementType());
    if (!element)
      return op.emitOpError() << "has no GPU kernels for element type "
                              << type.getElementType();
    SmallVector<Value> args;
    unsigned next = 0;
    for (int64_t size : type.getShape())
      args.push_back(ShapedType::isDynamic(size)
                         ? i64(b, adaptor.getDynamicSizes()[next++])
                         : i64(b, size));
    args.push_back(arith::ConstantOp::create(
        b, b.getI32IntegerAttr(static_cast<int>(*element))));
    rewriter.replaceOp(op, callRuntime(b, op, rt::kCacheNew, args,
                                       {ptrType(op.getContext())}));
    return success();
  }
};

struct CacheDeallocLowering : RuntimePattern<CacheDeallocOp> {
  using RuntimePattern::RuntimePattern;
  LogicalResult
  matchAndRewrite(CacheDeallocOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    callRuntime(b, op, rt::kCacheFree, {adaptor.getCache()});
    rewriter.eraseOp(op);
    return success();
  }
};

struct CacheAppendLowering : RuntimePattern<CacheAppendOp> {
  using RuntimePattern::RuntimePattern;
  LogicalResult
  matchAndRewrite(CacheAppendOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    auto key = op.getKey().getType();
    if (failed(need(op, keys, key.getDimSize(3), 1, key.getElementType())))
      return failure();
    FloatAttr theta = op.getRotaryThetaAttr();
    if (theta && key.getDimSize(3) % 16)
      return op.emitOpError() << "has no GPU kernel for rotary keys of head "
                                 "dim "
                              << key.getDimSize(3)
                              << ": it must be a multiple of 16";
    Value rotary = arith::ConstantOp::create(
        b, b.getF32FloatAttr(theta ? theta.getValueAsDouble() : 0.0));
    callRuntime(b, op, rt::kAppend,
                {adaptor.getCache(), pointerOfTensor(b, adaptor.getKey()),
                 pointerOfTensor(b, adaptor.getValue()),
                 pointerOfTensor(b, adaptor.getPositions()),
                 dimAsI64(b, adaptor.getKey(), 2), rotary});
    rewriter.eraseOp(op);
    return success();
  }
};

struct CacheTruncateLowering : RuntimePattern<CacheTruncateOp> {
  using RuntimePattern::RuntimePattern;
  LogicalResult
  matchAndRewrite(CacheTruncateOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    callRuntime(b, op, rt::kTruncate,
                {adaptor.getCache(), pointerOfTensor(b, adaptor.getLengths())});
    rewriter.eraseOp(op);
    return success();
  }
};

struct CacheLengthLowering : RuntimePattern<CacheLengthOp> {
  using RuntimePattern::RuntimePattern;
  LogicalResult
  matchAndRewrite(CacheLengthOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    RankedTensorType type = op.getType();
    SmallVector<Value> sizes;
    if (type.isDynamicDim(0)) {
      Value batch = callRuntime(b, op, rt::kCacheBatch, {adaptor.getCache()},
                                {b.getI64Type()})[0];
      sizes.push_back(arith::IndexCastOp::create(b, b.getIndexType(), batch));
    }
    Value buffer = memref::AllocOp::create(
        b, MemRefType::get(type.getShape(), type.getElementType()), sizes);
    callRuntime(b, op, rt::kLengths,
                {adaptor.getCache(), pointerOf(b, buffer)});
    rewriter.replaceOp(op, toTensor(b, buffer, type));
    return success();
  }
};

/// The transpose [B, Hq, T, D] -> [B, T, Hq, D] that is the only user of
/// `op` (the output projection's view of attention), if there is one.
linalg::TransposeOp headsLastUser(DecodeAttentionOp op) {
  if (!op->hasOneUse())
    return {};
  auto transpose = dyn_cast<linalg::TransposeOp>(*op->user_begin());
  if (!transpose || transpose.getInput() != op.getResult() ||
      !llvm::equal(transpose.getPermutation(), ArrayRef<int64_t>{0, 2, 1, 3}))
    return {};
  return transpose;
}

struct DecodeAttentionLowering : RuntimePattern<DecodeAttentionOp> {
  using RuntimePattern::RuntimePattern;
  LogicalResult
  matchAndRewrite(DecodeAttentionOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    auto query = op.getQuery().getType();
    CacheType cache = op.getCache().getType();
    int64_t group = query.getDimSize(1) / cache.getKvHeads();
    if (failed(need(op, keys, query.getDimSize(3), group,
                    query.getElementType())))
      return failure();
    // A transpose to heads last right after becomes the kernel's output
    // layout: one copy less per step.
    linalg::TransposeOp transpose = headsLastUser(op);
    RankedTensorType outType =
        transpose ? cast<RankedTensorType>(transpose.getResult()[0].getType())
                  : query;
    static constexpr int64_t kHeadsLast[] = {0, 2, 1, 3},
                             kHeadsFirst[] = {0, 1, 2, 3};
    SmallVector<Value> sizes;
    for (int64_t i : transpose ? kHeadsLast : kHeadsFirst)
      if (query.isDynamicDim(i))
        sizes.push_back(tensor::DimOp::create(b, adaptor.getQuery(), i));
    Value buffer = memref::AllocOp::create(
        b, MemRefType::get(outType.getShape(), outType.getElementType()),
        sizes);
    Value scale = arith::ConstantOp::create(
        b, b.getF32FloatAttr(op.getScaleOrDefault()));
    Value headsLast = arith::ConstantOp::create(
        b, b.getI32IntegerAttr(transpose ? 1 : 0));
    callRuntime(b, op, rt::kDecodeAttention,
                {adaptor.getCache(), pointerOfTensor(b, adaptor.getQuery()),
                 i64(b, query.getDimSize(1)),
                 dimAsI64(b, adaptor.getQuery(), 2),
                 pointerOfTensor(b, adaptor.getPositions()),
                 pointerOf(b, buffer), scale, headsLast});
    Value result = toTensor(b, buffer, outType);
    if (!transpose) {
      rewriter.replaceOp(op, result);
      return success();
    }
    rewriter.replaceOp(transpose, result);
    rewriter.eraseOp(op);
    return success();
  }
};

struct AttentionLowering : RuntimePattern<AttentionOp> {
  using RuntimePattern::RuntimePattern;
  LogicalResult
  matchAndRewrite(AttentionOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    auto query = op.getQuery().getType(), key = op.getKey().getType();
    int64_t group = query.getDimSize(1) / key.getDimSize(1);
    if (failed(need(op, keys, query.getDimSize(3), group,
                    query.getElementType())))
      return failure();
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    Value buffer = allocLike(b, adaptor.getQuery());
    Value out = pointerOf(b, buffer);
    Value scale = arith::ConstantOp::create(
        b, b.getF32FloatAttr(op.getScaleOrDefault()));
    int type = static_cast<int>(*elementTypeOf(query.getElementType()));
    callRuntime(b, op, rt::kPrefillAttention,
                {pointerOfTensor(b, adaptor.getQuery()),
                 pointerOfTensor(b, adaptor.getKey()),
                 pointerOfTensor(b, adaptor.getValue()), out,
                 dimAsI64(b, adaptor.getQuery(), 0),
                 i64(b, query.getDimSize(1)), i64(b, key.getDimSize(1)),
                 dimAsI64(b, adaptor.getQuery(), 2),
                 i64(b, query.getDimSize(3)),
                 arith::ConstantOp::create(b, b.getI32IntegerAttr(type)),
                 scale});
    rewriter.replaceOp(op, toTensor(b, buffer, query));
    return success();
  }
};

struct ConvertKVCToGPUPass
    : kvc::impl::ConvertKVCToGPUPassBase<ConvertKVCToGPUPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    MLIRContext *context = &getContext();
    // Refuse, by name, what no kernel covers, before anything changes.
    WalkResult unsupported = module.walk([](AttentionOp op) {
      if (!op.getCausal() || op.getMask()) {
        op.emitOpError("has no GPU kernel unless causal and unmasked (the "
                       "prefill kernel)");
        return WalkResult::interrupt();
      }
      return WalkResult::advance();
    });
    if (unsupported.wasInterrupted())
      return signalPassFailure();
    TypeConverter typeConverter;
    typeConverter.addConversion([](Type type) { return type; });
    typeConverter.addConversion(
        [&](CacheType) -> Type { return ptrType(context); });
    ConversionTarget target(*context);
    target.addIllegalDialect<KVCDialect>();
    target.addLegalDialect<arith::ArithDialect,
                           bufferization::BufferizationDialect,
                           func::FuncDialect, LLVM::LLVMDialect,
                           memref::MemRefDialect, tensor::TensorDialect>();
    RewritePatternSet patterns(context);
    KeySet keys;
    patterns.add<CacheAllocLowering, CacheDeallocLowering, CacheAppendLowering,
                 CacheTruncateLowering, CacheLengthLowering,
                 DecodeAttentionLowering, AttentionLowering>(typeConverter,
                                                              context, keys);
    populateCacheBoundaryConversions(typeConverter, patterns, target);
    if (failed(applyPartialConversion(module, target, std::move(patterns))))
      return signalPassFailure();

    SmallVector<kernels::KernelKey> kernelKeys;
    for (auto [headDim, group, type] : keys)
      kernelKeys.push_back(
          {headDim, group, static_cast<kernels::ElementType>(type)});
    if (failed(kernels::addKernels(module, kernelKeys)))
      signalPassFailure();
  }
};

} // namespace
