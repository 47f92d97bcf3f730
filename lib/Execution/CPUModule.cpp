//===- CPUModule.cpp - JIT-compiled kvc modules on the CPU -----------------===//
#include "kvc/Execution/CPUModule.h"
#include "kvc/InitAll.h"
#include "kvc/Pipelines/Pipelines.h"

#include "mlir/ExecutionEngine/OptUtils.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/ExecutionEngine/Orc/JITTargetMachineBuilder.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Support/raw_ostream.h"

using namespace mlir;
using namespace mlir::kvc;

std::unique_ptr<CPUModule> CPUModule::compile(llvm::StringRef source,
                                              std::string &error) {
  static const bool nativeTargetReady = [] {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
    return true;
  }();
  (void)nativeTargetReady;

  std::unique_ptr<CPUModule> result(new CPUModule());
  DialectRegistry registry;
  registerAllDialects(registry);
  result->context_ = std::make_unique<MLIRContext>(registry);
  MLIRContext *context = result->context_.get();
  llvm::raw_string_ostream diagnostics(error);
  ScopedDiagnosticHandler handler(context, [&](Diagnostic &diag) {
    diagnostics << diag.getLocation() << ": " << diag << "\n";
    return success();
  });

  OwningOpRef<ModuleOp> module =
      parseSourceString<ModuleOp>(source, context);
  if (!module)
    return nullptr;
  PassManager pm(context);
  buildCPUPipeline(pm);
  if (failed(pm.run(*module)))
    return nullptr;

  // Optimize for this host: without its target machine LLVM's vectorizers
  // assume a generic target and can pick vector types the host lacks.
  auto hostBuilder = llvm::orc::JITTargetMachineBuilder::detectHost();
  if (!hostBuilder) {
    diagnostics << llvm::toString(hostBuilder.takeError()) << "\n";
    return nullptr;
  }
  auto host = hostBuilder->createTargetMachine();
  if (!host) {
    diagnostics << llvm::toString(host.takeError()) << "\n";
    return nullptr;
  }
  result->optimize_ = makeOptimizingTransformer(/*optLevel=*/2,
                                                /*sizeLevel=*/0, host->get());
  ExecutionEngineOptions options;
  options.transformer = result->optimize_;
  auto engine = ExecutionEngine::create(*module, options, std::move(*host));
  if (!engine) {
    diagnostics << llvm::toString(engine.takeError()) << "\n";
    return nullptr;
  }
  result->engine_ = std::move(*engine);
  result->engine_->initialize();
  return result;
}
