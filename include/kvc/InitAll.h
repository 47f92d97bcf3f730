//===- InitAll.h - kvc and upstream registrations ---------------*- C++ -*-===//
#ifndef KVC_INITALL_H
#define KVC_INITALL_H

namespace mlir {
class DialectRegistry;

namespace kvc {
/// Adds kvc and every upstream dialect, with the interfaces that bufferize,
/// lower and translate them, to `registry`: what a kvc tool needs to parse a
/// model and run any kvc pipeline on it.
void registerAllDialects(DialectRegistry &registry);
/// Registers kvc's passes and pipelines and every upstream pass.
void registerAllPasses();
} // namespace kvc
} // namespace mlir

#endif // KVC_INITALL_H
