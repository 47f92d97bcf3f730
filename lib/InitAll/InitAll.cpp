//===- InitAll.cpp - kvc and upstream registrations ------------------------===//
#include "kvc/InitAll.h"
#include "kvc/Conversion/Passes.h"
#include "kvc/Dialect/KVC/IR/KVCDialect.h"
#include "kvc/Dialect/KVC/Transforms/Passes.h"
#include "kvc/Pipelines/Pipelines.h"

#include "mlir/IR/DialectRegistry.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/InitAllPasses.h"
#include "mlir/Target/LLVMIR/Dialect/All.h"

void mlir::kvc::registerAllDialects(DialectRegistry &registry) {
  registry.insert<KVCDialect>();
  mlir::registerAllDialects(registry);
  mlir::registerAllExtensions(registry);
  mlir::registerAllToLLVMIRTranslations(registry);
}

void mlir::kvc::registerAllPasses() {
  mlir::registerAllPasses();
  registerKVCConversionPasses();
  registerKVCTransformsPasses();
  registerKVCPipelines();
}
