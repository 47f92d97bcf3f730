//===- CPUModule.h - JIT-compiled kvc modules on the CPU --------*- C++ -*-===//
#ifndef KVC_EXECUTION_CPUMODULE_H
#define KVC_EXECUTION_CPUMODULE_H

#include "mlir/ExecutionEngine/ExecutionEngine.h"
#include "mlir/IR/MLIRContext.h"
#include "llvm/ADT/StringRef.h"

#include <memory>
#include <string>

namespace mlir::kvc {
/// A kvc module compiled through `kvc-cpu-pipeline` and JIT-compiled for this
/// CPU. Functions that carry `llvm.emit_c_interface` are called through
/// `engine().invoke`: memref arguments as pointers to `StridedMemRefType`,
/// results first, through `ExecutionEngine::result`.
class CPUModule {
public:
  /// Parses `source`, lowers it and JIT-compiles it. On failure returns null
  /// and sets `error` to the diagnostics.
  static std::unique_ptr<CPUModule> compile(llvm::StringRef source,
                                            std::string &error);

  ExecutionEngine &engine() { return *engine_; }

private:
  CPUModule(std::unique_ptr<MLIRContext> context,
            std::unique_ptr<ExecutionEngine> engine)
      : context_(std::move(context)), engine_(std::move(engine)) {}

  std::unique_ptr<MLIRContext> context_;
  std::unique_ptr<ExecutionEngine> engine_;
};
} // namespace mlir::kvc

#endif // KVC_EXECUTION_CPUMODULE_H
