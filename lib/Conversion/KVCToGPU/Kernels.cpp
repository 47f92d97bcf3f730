//===- Kernels.cpp - the GPU kernels kvc ops lower to ---------------------===//
//
// Each kernel is written out as gpu-dialect text, specialized (head dim,
// query group, element type) and unrolled where registers must hold state per
// query row, then parsed. Text keeps the kernels readable next to what they
// lower to; the parser checks them like any other input. This file names the
// kernels and assembles the library; the generators live beside it.
//
//===----------------------------------------------------------------------===//
#include "KernelWriter.h"

#include "kvc/Conversion/Utils.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Parser/Parser.h"
#include "llvm/ADT/Twine.h"
#include "llvm/Support/raw_ostream.h"


using namespace mlir;
using namespace mlir::kvc::kernels;
using namespace mlir::kvc::kernels::detail;
using llvm::Twine;

StringRef mlir::kvc::kernels::getName(ElementType type) {
  switch (type) {
  case ElementType::F16:
    return "f16";
  case ElementType::BF16:
    return "bf16";
  case ElementType::F32:
    return "f32";
  }
  llvm_unreachable("unknown element type");
}

int64_t mlir::kvc::kernels::getQueriesPerBlock(int64_t group) {
  int64_t q = std::min<int64_t>(group, 4);
  while (group % q)
    --q;
  return q;
}

std::string mlir::kvc::kernels::getAppendName(const KernelKey &key) {
  return ("kvc_append_d" + Twine(key.headDim) + "_" + getName(key.elementType))
      .str();
}

std::string mlir::kvc::kernels::getAppendRotaryName(const KernelKey &key) {
  return ("kvc_append_rope_d" + Twine(key.headDim) + "_" +
          getName(key.elementType))
      .str();
}

std::string mlir::kvc::kernels::getSetLengthsName() { return "kvc_set_lengths"; }

std::string mlir::kvc::kernels::getGemvName(const GemvKey &key) {
  return ("kvc_gemv_" + getName(key.inputType) + "_" + getName(key.outputType))
      .str();
}

std::string mlir::kvc::kernels::getGemm16Name(const GemvKey &key) {
  return ("kvc_gemm16_" + getName(key.inputType) + "_" +
          getName(key.outputType))
      .str();
}

std::string mlir::kvc::kernels::getArgmaxName(ElementType type) {
  return ("kvc_argmax_" + getName(type)).str();
}

std::string mlir::kvc::kernels::getDecodeSplitName(const KernelKey &key,
                                                  bool single) {
  return ((single ? "kvc_decode_split1_d" : "kvc_decode_split_d") +
          Twine(key.headDim) + "_g" + Twine(key.group) + "_" +
          getName(key.elementType))
      .str();
}

std::string mlir::kvc::kernels::getDecodeMmaName(const KernelKey &key) {
  return ("kvc_decode_mma_d" + Twine(key.headDim) + "_g" + Twine(key.group) +
          "_" + getName(key.elementType))
      .str();
}

std::string mlir::kvc::kernels::getPrefillName(const KernelKey &key) {
  return ("kvc_prefill_d" + Twine(key.headDim) + "_g" + Twine(key.group) +
          "_" + getName(key.elementType))
      .str();
}

std::string mlir::kvc::kernels::getDecodeCombineName(const KernelKey &key) {
  return ("kvc_decode_combine_d" + Twine(key.headDim) + "_" +
          getName(key.elementType))
      .str();
}

LogicalResult mlir::kvc::kernels::addKernels(ModuleOp module,
                                         ArrayRef<KernelKey> keys,
                                         ArrayRef<GemvKey> gemvs) {
  MLIRContext *context = module.getContext();
  context->loadDialect<::mlir::gpu::GPUDialect, ::mlir::NVVM::NVVMDialect>();
  OpBuilder builder(context);
  auto kernels = dyn_cast_or_null<::mlir::gpu::GPUModuleOp>(
      SymbolTable::lookupSymbolIn(module, "kvc_kernels"));
  if (!kernels) {
    builder.setInsertionPointToEnd(module.getBody());
    kernels = ::mlir::gpu::GPUModuleOp::create(builder, module.getLoc(),
                                               "kvc_kernels");
    module->setAttr(::mlir::gpu::GPUDialect::getContainerModuleAttrName(),
                    builder.getUnitAttr());
  }
  SymbolTable symbols(kernels);
  std::string text;
  auto want = [&](const std::string &name, auto &&generate) {
    if (!symbols.lookup(name) && text.find("@" + name + "(") == std::string::npos)
      text += generate();
  };
  want(getSetLengthsName(), [] { return setLengthsKernel(); });
  // Greedy decoding picks tokens on the device from f32 or bf16 logits.
  for (ElementType type : {ElementType::F32, ElementType::BF16})
    want(getArgmaxName(type), [&] { return argmaxKernel(type); });
  for (const KernelKey &key : keys) {
    if (key.headDim % kVectorWidth || key.headDim > kWarp * kVectorWidth ||
        key.group < 1 || (key.group > 8 && key.group % 8))
      return module.emitError()
             << "kvc GPU kernels need a head dim that is a multiple of 8 up to "
             << kWarp * kVectorWidth
             << " and a query group of at most 8 or a multiple of 8; found "
                "head dim "
             << key.headDim << ", group " << key.group;
    want(getAppendName(key), [&] { return appendKernel(key, false); });
    want(getAppendRotaryName(key), [&] { return appendKernel(key, true); });
    for (bool single : {false, true})
      want(getDecodeSplitName(key, single),
           [&] { return decodeSplitKernel(key, single); });
    want(getDecodeCombineName(key), [&] { return decodeCombineKernel(key); });
    // The tensor-core kernels take 16 columns of the head dim per product;
    // prefill's tiles are 64-column slices (Warpgroup.h).
    if (key.elementType != ElementType::F32 && key.headDim % 16 == 0)
      want(getDecodeMmaName(key), [&] { return decodeMmaKernel(key); });
    if (key.elementType != ElementType::F32 && key.headDim % 64 == 0)
      want(getPrefillName(key), [&] { return prefillKernel(key); });
  }
  for (const GemvKey &key : gemvs) {
    want(getGemvName(key), [&] { return gemvKernel(key); });
    want(getGemm16Name(key), [&] { return gemm16Kernel(key); });
  }
  if (text.empty())
    return success();
  std::string source = "gpu.module @kvc_kernels_new {\n" + text + "}\n";
  ParserConfig config(context);
  OwningOpRef<ModuleOp> parsed = parseSourceString<ModuleOp>(source, config);
  if (!parsed)
    return module.emitError("kvc: a generated GPU kernel does not parse");
  auto fresh = *parsed->getOps<::mlir::gpu::GPUModuleOp>().begin();
  for (auto func : fresh.getOps<::mlir::gpu::GPUFuncOp>())
    addGridDependencyPrologue(func);
  for (Operation &op : llvm::make_early_inc_range(fresh.getBody()->getOperations()))
    op.moveBefore(kernels.getBody(), kernels.getBody()->end());
  return success();
}
