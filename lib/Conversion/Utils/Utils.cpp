//===- Utils.cpp - shared by the kvc lowerings -----------------------------===//
#include "kvc/Conversion/Utils.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Linalg/Transforms/Transforms.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Func/Transforms/FuncConversions.h"
#include "mlir/Dialect/SCF/Transforms/Patterns.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Transforms/DialectConversion.h"

using namespace mlir;

LogicalResult mlir::kvc::generalizeNamedOps(ArrayRef<linalg::LinalgOp> ops,
                                            StringRef message) {
  for (linalg::LinalgOp op : ops) {
    IRRewriter rewriter(op);
    if (failed(linalg::generalizeNamedOp(rewriter, op)))
      return op->emitOpError(message);
  }
  return success();
}

void mlir::kvc::addGridDependencyPrologue(gpu::GPUFuncOp func) {
  // A kernel that places its own wait (after loads that depend on nothing
  // before it) keeps it.
  if (!func.getOps<NVVM::GriddepcontrolOp>().empty())
    return;
  OpBuilder b = OpBuilder::atBlockBegin(&func.getBody().front());
  NVVM::GriddepcontrolOp::create(b, func.getLoc(),
                                 NVVM::GridDepActionKind::wait);
  NVVM::GriddepcontrolOp::create(b, func.getLoc(),
                                 NVVM::GridDepActionKind::launch_dependents);
}

void mlir::kvc::populateCacheBoundaryConversions(TypeConverter &typeConverter,
                                                 RewritePatternSet &patterns,
                                                 ConversionTarget &target) {
  populateFunctionOpInterfaceTypeConversionPattern<func::FuncOp>(
      patterns, typeConverter);
  populateCallOpTypeConversionPattern(patterns, typeConverter);
  populateReturnOpTypeConversionPattern(patterns, typeConverter);
  scf::populateSCFStructuralTypeConversionsAndLegality(typeConverter, patterns,
                                                       target);
  target.addDynamicallyLegalOp<func::FuncOp>([&](func::FuncOp op) {
    return typeConverter.isSignatureLegal(op.getFunctionType()) &&
           typeConverter.isLegal(&op.getBody());
  });
  target.addDynamicallyLegalOp<func::CallOp, func::ReturnOp>(
      [&](Operation *op) { return typeConverter.isLegal(op); });
}

Value mlir::kvc::rootOf(Value buffer) {
  while (auto view = buffer.getDefiningOp<ViewLikeOpInterface>())
    buffer = view.getViewSource();
  return buffer;
}

Value mlir::kvc::pointerOf(ImplicitLocOpBuilder &b, Value memref) {
  Value index = memref::ExtractAlignedPointerAsIndexOp::create(b, memref);
  Value address = arith::IndexCastOp::create(b, b.getI64Type(), index);
  return LLVM::IntToPtrOp::create(b, LLVM::LLVMPointerType::get(b.getContext()),
                                  address);
}

ValueRange mlir::kvc::callRuntime(ImplicitLocOpBuilder &b, Operation *op,
                                  StringRef name, ValueRange args,
                                  TypeRange results) {
  auto module = op->getParentOfType<ModuleOp>();
  if (!SymbolTable::lookupSymbolIn(module, name)) {
    OpBuilder builder(module.getBodyRegion());
    func::FuncOp::create(builder, module.getLoc(), name,
                         b.getFunctionType(args.getTypes(), results))
        .setPrivate();
  }
  return func::CallOp::create(b, name, results, args).getResults();
}

Value mlir::kvc::toBuffer(ImplicitLocOpBuilder &b, Value tensor) {
  auto type = cast<RankedTensorType>(tensor.getType());
  auto memrefType = MemRefType::get(type.getShape(), type.getElementType());
  return bufferization::ToBufferOp::create(b, memrefType, tensor,
                                           /*read_only=*/true);
}

Value mlir::kvc::allocLike(ImplicitLocOpBuilder &b, Value like) {
  auto type = cast<RankedTensorType>(like.getType());
  SmallVector<Value> sizes;
  for (int64_t i = 0; i < type.getRank(); ++i)
    if (type.isDynamicDim(i))
      sizes.push_back(tensor::DimOp::create(b, like, i));
  return memref::AllocOp::create(
      b, MemRefType::get(type.getShape(), type.getElementType()), sizes);
}

Value mlir::kvc::toTensor(ImplicitLocOpBuilder &b, Value buffer,
                          Type tensorType) {
  return bufferization::ToTensorOp::create(b, tensorType, buffer,
                                           /*restrict=*/b.getUnitAttr(),
                                           /*writable=*/b.getUnitAttr());
}
