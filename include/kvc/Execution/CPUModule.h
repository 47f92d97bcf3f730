//===- CPUModule.h - JIT-compiled kvc modules on the CPU --------*- C++ -*-===//
#ifndef KVC_EXECUTION_CPUMODULE_H
#define KVC_EXECUTION_CPUMODULE_H

#include "mlir/ExecutionEngine/ExecutionEngine.h"
#include "mlir/IR/MLIRContext.h"
#include "llvm/ADT/StringRef.h"

#include <functional>
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
  CPUModule() = default;

  std::unique_ptr<MLIRContext> context_;
  /// The LLVM optimization pipeline. ExecutionEngineOptions holds it by
  /// reference (a function_ref), so it lives as long as the engine.
  std::function<llvm::Error(llvm::Module *)> optimize_;
  std::unique_ptr<ExecutionEngine> engine_;
};
} // namespace mlir::kvc

#endif // KVC_EXECUTION_CPUMODULE_H
