//===- GPUBinary.cpp - cubins and PTX of kvc's GPU kernels -----------------===//
#include "kvc/Execution/GPUBinary.h"
#include "kvc/Pipelines/Pipelines.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Pass/PassManager.h"

using namespace mlir;
using namespace mlir::kvc;

FailureOr<std::string> mlir::kvc::serializeGPUModule(ModuleOp module,
                                                     GPUFormat format) {
  PassManager pm(module.getContext());
  buildGPUPipeline(pm, format == GPUFormat::PTX ? "isa" : "bin");
  if (failed(pm.run(module)))
    return failure();
  auto binary = dyn_cast_or_null<gpu::BinaryOp>(
      SymbolTable::lookupSymbolIn(module, "kvc_kernels"));
  if (!binary || binary.getObjects().size() != 1)
    return module.emitError("kvc: no gpu.binary @kvc_kernels with one object "
                            "after the GPU pipeline");
  auto object = cast<gpu::ObjectAttr>(binary.getObjects()[0]);
  return object.getObject().str();
}
