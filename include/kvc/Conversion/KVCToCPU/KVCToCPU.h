//===- KVCToCPU.h - kvc to loops over memrefs -------------------*- C++ -*-===//
#ifndef KVC_CONVERSION_KVCTOCPU_KVCTOCPU_H
#define KVC_CONVERSION_KVCTOCPU_KVCTOCPU_H

namespace mlir {
class ConversionTarget;
class RewritePatternSet;
class TypeConverter;

namespace kvc {
/// Converts `!kvc.cache` to its three memrefs: keys, values, lengths.
void populateKVCToCPUTypeConversions(TypeConverter &typeConverter);
/// Lowers every kvc op to scf loops over memrefs.
void populateKVCToCPUConversionPatterns(const TypeConverter &typeConverter,
                                        RewritePatternSet &patterns);
/// Marks the kvc dialect illegal and the dialects the lowering emits legal.
void configureKVCToCPULegality(ConversionTarget &target);
} // namespace kvc
} // namespace mlir

#endif // KVC_CONVERSION_KVCTOCPU_KVCTOCPU_H
