//===- Utils.h - shared by the kvc lowerings --------------------*- C++ -*-===//
#ifndef KVC_CONVERSION_UTILS_H
#define KVC_CONVERSION_UTILS_H

#include "mlir/IR/ImplicitLocOpBuilder.h"
#include "mlir/IR/Value.h"

namespace mlir {
namespace linalg {
class LinalgOp;
} // namespace linalg
class ConversionTarget;
namespace gpu {
class GPUFuncOp;
} // namespace gpu
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

/// Rewrites each of `ops` (named linalg ops) as a linalg.generic in place;
/// an op that cannot be gets the error `message` and the result is failure.
LogicalResult generalizeNamedOps(ArrayRef<linalg::LinalgOp> ops,
                                 StringRef message);

/// The allocation (or function argument) a buffer views.
Value rootOf(Value buffer);

/// The aligned pointer of a memref's data as `!llvm.ptr`: what the kvc
/// runtime's entry points take for device buffers.
Value pointerOf(ImplicitLocOpBuilder &b, Value memref);
/// Calls runtime entry point `name` with `args`, declaring it (private) in
/// the module of `op` on first use.
ValueRange callRuntime(ImplicitLocOpBuilder &b, Operation *op, StringRef name,
                       ValueRange args, TypeRange results = {});

/// Starts kernel `func` with `nvvm.griddepcontrol wait` (nothing of the
/// kernels launched before it is read before they finish) and
/// `launch_dependents` (the kernel after it may be scheduled now). The kvc
/// runtime launches every kvc kernel as a programmatic dependent launch, so
/// a kernel's launch and set-up overlap the tail of the one before; a
/// kernel without this prologue would race with its predecessor. A kernel
/// that already has the two ops in its entry block (kvc_gemv: its first
/// loads of weights come before the wait) is left as it is.
void addGridDependencyPrologue(gpu::GPUFuncOp func);

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
