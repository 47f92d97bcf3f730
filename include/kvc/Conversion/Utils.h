//===- Utils.h - shared by the kvc lowerings --------------------*- C++ -*-===//
#ifndef KVC_CONVERSION_UTILS_H
#define KVC_CONVERSION_UTILS_H

#include "mlir/IR/ImplicitLocOpBuilder.h"
#include "mlir/IR/Value.h"

namespace mlir {
class ConversionTarget;
class RewritePatternSet;
class TypeConverter;

namespace kvc {
/// The read-only buffer of a tensor operand (`bufferization.to_buffer`);
/// one-shot bufferization resolves it.
Value toBuffer(ImplicitLocOpBuilder &b, Value tensor);
/// A fresh identity-layout buffer shaped like the tensor `like`.
Value allocLike(ImplicitLocOpBuilder &b, Value like);
/// A result tensor over a buffer the lowering filled
/// (`bufferization.to_tensor restrict writable`).
Value toTensor(ImplicitLocOpBuilder &b, Value buffer, Type tensorType);

/// The aligned pointer of a memref's data as `!llvm.ptr`: what the kvc
/// runtime's entry points take for device buffers.
Value pointerOf(ImplicitLocOpBuilder &b, Value memref);
/// Calls runtime entry point `name` with `args`, declaring it (private) in
/// the module of `op` on first use.
ValueRange callRuntime(ImplicitLocOpBuilder &b, Operation *op, StringRef name,
                       ValueRange args, TypeRange results = {});

/// Caches cross function boundaries and structured control flow: converts
/// func signatures, calls, returns and scf ops whose types `typeConverter`
/// changes, and makes them legal only once converted. Shared by every
/// lowering that changes what a `!kvc.cache` is.
void populateCacheBoundaryConversions(TypeConverter &typeConverter,
                                      RewritePatternSet &patterns,
                                      ConversionTarget &target);
} // namespace kvc
} // namespace mlir

#endif // KVC_CONVERSION_UTILS_H
