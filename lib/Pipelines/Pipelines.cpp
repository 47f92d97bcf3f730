//===- Pipelines.cpp - kvc pass pipelines ----------------------------------===//
#include "kvc/Pipelines/Pipelines.h"
#include "kvc/Conversion/Passes.h"

#include "mlir/Conversion/Passes.h"
#include "mlir/Dialect/Bufferization/Pipelines/Passes.h"
#include "mlir/Dialect/Bufferization/Transforms/Passes.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/GPU/Transforms/Passes.h"
#include "mlir/Dialect/Linalg/Passes.h"
#include "mlir/Dialect/MemRef/Transforms/Passes.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

using namespace mlir;

void mlir::kvc::buildCPUPipeline(OpPassManager &pm) {
  pm.addPass(createConvertKVCToCPUPass());
  // Elementwise arith/math on whole tensors, as models write RMSNorm or SiLU.
  pm.addNestedPass<func::FuncOp>(createConvertElementwiseToLinalgPass());

  bufferization::OneShotBufferizePassOptions bufferize;
  bufferize.bufferizeFunctionBoundaries = true;
  // Generation loops carry fresh logits and tokens from step to step.
  bufferize.allowReturnAllocsFromLoops = true;
  bufferize.functionBoundaryTypeConversion =
      bufferization::LayoutMapOption::IdentityLayoutMap;
  pm.addPass(bufferization::createOneShotBufferizePass(bufferize));
  bufferization::BufferDeallocationPipelineOptions dealloc;
  bufferization::buildBufferDeallocationPipeline(pm, dealloc);
  pm.addPass(createConvertBufferizationToMemRefPass());

  pm.addNestedPass<func::FuncOp>(createConvertLinalgToLoopsPass());
  pm.addPass(createConvertVectorToSCFPass());
  pm.addPass(memref::createExpandStridedMetadataPass());
  pm.addPass(createLowerAffinePass());
  pm.addPass(createSCFToControlFlowPass());
  pm.addPass(createConvertVectorToLLVMPass());
  pm.addPass(createConvertToLLVMPass());
  pm.addPass(createReconcileUnrealizedCastsPass());
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());
}

void mlir::kvc::buildGPUPipeline(OpPassManager &pm, const std::string &format) {
  GpuNVVMAttachTargetOptions target;
  target.chip = "sm_90a";
  target.optLevel = 3;
  pm.addPass(createGpuNVVMAttachTarget(target));
  OpPassManager &kernels = pm.nest<gpu::GPUModuleOp>();
  kernels.addPass(createConvertNVGPUToNVVMPass());
  kernels.addPass(createSCFToControlFlowPass());
  kernels.addPass(memref::createExpandStridedMetadataPass());
  kernels.addPass(createConvertGpuOpsToNVVMOps());
  kernels.addPass(createCanonicalizerPass());
  kernels.addPass(createCSEPass());
  kernels.addPass(createReconcileUnrealizedCastsPass());
  GpuModuleToBinaryPassOptions binary;
  binary.compilationTarget = format;
  pm.addPass(createGpuModuleToBinaryPass(binary));
}

void mlir::kvc::registerKVCPipelines() {
  PassPipelineRegistration<>(
      "kvc-gpu-pipeline",
      "lower gpu.modules (kvc's kernels) to NVVM for sm_90a and embed their "
      "cubins in gpu.binary ops",
      [](OpPassManager &pm) { buildGPUPipeline(pm); });
  PassPipelineRegistration<>(
      "kvc-cpu-pipeline",
      "lower kvc, tensor and linalg IR to the LLVM dialect through the CPU "
      "reference lowering",
      [](OpPassManager &pm) { buildCPUPipeline(pm); });
}
