//===- CacheBoundaries.h - caches across function boundaries ----*- C++ -*-===//
#ifndef KVC_CONVERSION_CACHEBOUNDARIES_H
#define KVC_CONVERSION_CACHEBOUNDARIES_H

namespace mlir {
class ConversionTarget;
class RewritePatternSet;
class TypeConverter;

namespace kvc {
/// Caches cross function boundaries and structured control flow: converts
/// func signatures, calls, returns and scf ops whose types `typeConverter`
/// changes, and makes them legal only once converted. Shared by every
/// lowering that changes what a `!kvc.cache` is.
void populateCacheBoundaryConversions(TypeConverter &typeConverter,
                                      RewritePatternSet &patterns,
                                      ConversionTarget &target);
} // namespace kvc
} // namespace mlir

#endif // KVC_CONVERSION_CACHEBOUNDARIES_H
