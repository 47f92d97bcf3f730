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

/// Tensors to buffers, with deallocation; loops may yield fresh buffers
/// (generation loops carry logits and tokens from step to step).
static void addBufferization(OpPassManager &pm) {
  bufferization::OneShotBufferizePassOptions bufferize;
  bufferize.bufferizeFunctionBoundaries = true;
  bufferize.allowReturnAllocsFromLoops = true;
  bufferize.functionBoundaryTypeConversion =
      bufferization::LayoutMapOption::IdentityLayoutMap;
  pm.addPass(bufferization::createOneShotBufferizePass(bufferize));
  bufferization::BufferDeallocationPipelineOptions dealloc;
  bufferization::buildBufferDeallocationPipeline(pm, dealloc);
  pm.addPass(createConvertBufferizationToMemRefPass());
  pm.addPass(kvc::createKVCLowerMemRefCopyPass());
}

void mlir::kvc::buildCPUPipeline(OpPassManager &pm) {
  pm.addPass(createConvertKVCToCPUPass());
  // Elementwise arith/math on whole tensors, as models write RMSNorm or SiLU.
  pm.addNestedPass<func::FuncOp>(createConvertElementwiseToLinalgPass());
  addBufferization(pm);
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
  kernels.addPass(kvc::createKVCOrderGridDependencyWaitPass());
  kernels.addPass(createConvertNVGPUToNVVMPass());
  kernels.addPass(createLowerAffinePass());
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

void mlir::kvc::buildGPUModelPipeline(OpPassManager &pm) {
  pm.addPass(kvc::createConvertKVCToGPUPass());
  pm.addNestedPass<func::FuncOp>(createConvertElementwiseToLinalgPass());
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());
  // After CSE, which would merge the fills it gives each projection.
  pm.addPass(kvc::createKVCFuseElementwisePass());
  addBufferization(pm);
  pm.addPass(kvc::createConvertLinalgToKVCGPUPass());
  pm.addPass(createCanonicalizerPass());
  pm.addPass(kvc::createKVCFuseLaunchesPass());
  buildGPUPipeline(pm);

  // The host code: buffers from the runtime (use-generic-functions makes
  // memref.alloc call _mlir_memref_to_llvm_alloc), launches through the
  // mgpu* functions the runtime provides.
  pm.addPass(memref::createExpandStridedMetadataPass());
  pm.addPass(createLowerAffinePass());
  pm.addPass(createSCFToControlFlowPass());
  FinalizeMemRefToLLVMConversionPassOptions memrefOptions;
  memrefOptions.useGenericFunctions = true;
  pm.addPass(createFinalizeMemRefToLLVMConversionPass(memrefOptions));
  pm.addPass(createGpuToLLVMConversionPass());
  pm.addPass(createConvertToLLVMPass());
  pm.addPass(createReconcileUnrealizedCastsPass());
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());
}

void mlir::kvc::registerKVCPipelines() {
  PassPipelineRegistration<>(
      "kvc-gpu-model-pipeline",
      "lower a model's host functions (kvc, tensor and linalg IR) for the "
      "GPU: runtime calls, cuBLASLt matmuls, generated kernels compiled to "
      "cubins, host code in the LLVM dialect",
      [](OpPassManager &pm) { buildGPUModelPipeline(pm); });
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
