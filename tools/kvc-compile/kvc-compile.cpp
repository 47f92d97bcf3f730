//===- kvc-compile.cpp - compile a Hugging Face model with kvc -------------===//
//
// Reads a Llama config.json, writes the model in full-sequence form, makes
// it incremental, lowers it for the CPU or the GPU and writes an artifact
// directory for kvc-run (kvc/Execution/Artifact.h). --emit=mlir prints the
// IR at the stage --stage names instead.
//
//===----------------------------------------------------------------------===//
#include "kvc/Execution/Artifact.h"
#include "kvc/InitAll.h"
#include "kvc/Models/Llama.h"
#include "kvc/Pipelines/Pipelines.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/FileUtilities.h"
#include "mlir/Transforms/Passes.h"
#include "kvc/Dialect/KVC/Transforms/Passes.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/WithColor.h"

using namespace mlir;
namespace cl = llvm::cl;

static cl::OptionCategory category("kvc-compile options");
static cl::opt<std::string> configPath(cl::Positional,
                                       cl::cat(category), cl::desc("<config.json>"),
                                       cl::Required);
static cl::opt<std::string>
    emit("emit",
         cl::cat(category), cl::desc("what to write: artifact (default: a directory for "
                  "kvc-run, -o names it), mlir (the IR at --stage) or "
                  "manifest (JSON: the weights the model expects)"),
         cl::init("artifact"));
static cl::opt<std::string>
    stage("stage",
          cl::cat(category), cl::desc("for --emit=mlir: model (the full-sequence model), "
                   "incremental (default: after kvc-incrementalize, "
                   "@model_prefill and @model_decode) or lowered (after the "
                   "--target pipeline)"),
          cl::init("incremental"));
static cl::opt<std::string>
    target("target", cl::cat(category), cl::desc("cuda (default: sm_90a kernels and host code "
                              "calling the kvc runtime) or cpu"),
           cl::init("cuda"));
static cl::opt<std::string>
    dtype("dtype", cl::cat(category), cl::desc("element type of weights and activations: f32 "
                            "or bf16 (default: config.json's torch_dtype, "
                            "else f32)"),
          cl::init(""));
static cl::opt<std::string> output("o", cl::cat(category), cl::desc("output file or directory"),
                                   cl::value_desc("path"), cl::init("-"));

/// The weights @model takes, in order, as JSON: what kvc-run checks a
/// checkpoint against; and the model's vocabulary and logits type.
static llvm::json::Object manifestOf(ModuleOp module) {
  auto model = module.lookupSymbol<func::FuncOp>("model");
  llvm::json::Array weights;
  for (BlockArgument arg : model.getArguments()) {
    auto name = model.getArgAttrOfType<StringAttr>(arg.getArgNumber(),
                                                   "kvc.weight");
    if (!name)
      continue;
    auto type = cast<RankedTensorType>(arg.getType());
    llvm::json::Array shape;
    for (int64_t d : type.getShape())
      shape.push_back(d);
    std::string dtype;
    llvm::raw_string_ostream(dtype) << type.getElementType();
    llvm::json::Object entry{{"name", name.getValue()},
                             {"dtype", dtype == "f32"    ? "F32"
                                       : dtype == "bf16" ? "BF16"
                                                         : "F16"},
                             {"shape", std::move(shape)}};
    // A weight packed from checkpoint tensors stacked along the rows.
    auto parts = model.getArgAttrOfType<ArrayAttr>(arg.getArgNumber(),
                                                   "kvc.parts");
    auto rows = model.getArgAttrOfType<DenseI64ArrayAttr>(arg.getArgNumber(),
                                                          "kvc.part_rows");
    if (parts && rows) {
      llvm::json::Array list;
      for (auto [part, n] : llvm::zip(parts, rows.asArrayRef()))
        list.push_back(llvm::json::Object{
            {"name", cast<StringAttr>(part).getValue()},
            {"shape", llvm::json::Array{n, type.getShape().back()}}});
      entry["parts"] = std::move(list);
    }
    weights.push_back(std::move(entry));
  }
  auto logits = cast<RankedTensorType>(model.getResultTypes()[0]);
  return llvm::json::Object{
      {"format", kvc::kArtifactFormat},
      {"entry_points",
       llvm::json::Array{kvc::kPrefillEntry, kvc::kDecodeEntry}},
      {"vocab_size", logits.getShape().back()},
      {"logits_dtype", logits.getElementType().isF32() ? "F32" : "BF16"},
      {"weights", std::move(weights)}};
}

static int fail(const llvm::Twine &message) {
  llvm::WithColor::error(llvm::errs(), "kvc-compile") << message << "\n";
  return 1;
}

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  cl::HideUnrelatedOptions(category);
  cl::ParseCommandLineOptions(
      argc, argv,
      "kvc-compile: a Llama config.json to kvc IR (prefill and decode)\n");
  if (emit != "artifact" && emit != "mlir" && emit != "manifest")
    return fail("--emit=" + emit +
                " is not available (artifact, mlir, manifest)");
  if (stage != "model" && stage != "incremental" && stage != "lowered")
    return fail("--stage must be model, incremental or lowered, found '" +
                stage + "'");
  if (target != "cuda" && target != "cpu")
    return fail("--target must be cuda or cpu, found '" + target + "'");
  auto file = llvm::MemoryBuffer::getFile(configPath);
  if (!file)
    return fail("cannot read " + configPath + ": " + file.getError().message());
  llvm::Expected<kvc::LlamaConfig> config =
      kvc::parseLlamaConfig((*file)->getBuffer());
  if (!config)
    return fail(configPath + ": " + llvm::toString(config.takeError()));
  if (!dtype.empty()) {
    if (dtype != "f32" && dtype != "bf16")
      return fail("--dtype must be f32 or bf16, found '" + dtype + "'");
    config->dtype = dtype;
  }

  if (emit == "artifact" && output == "-")
    return fail("an artifact is a directory: name it with -o");

  DialectRegistry registry;
  kvc::registerAllDialects(registry);
  MLIRContext context(registry);
  std::string source = kvc::buildLlamaModel(*config);
  OwningOpRef<ModuleOp> module = parseSourceString<ModuleOp>(source, &context);
  if (!module)
    return fail("the generated model does not parse (a kvc bug)");
  llvm::json::Object manifest = manifestOf(*module);
  if (emit != "mlir" || stage != "model") {
    PassManager pm(&context);
    pm.addPass(kvc::createKVCIncrementalizePass());
    pm.addPass(createCanonicalizerPass());
    pm.addPass(createCSEPass());
    if (failed(pm.run(*module)))
      return 1;
  }
  if (emit == "artifact" || stage == "lowered") {
    // @model is the reference the incremental functions were made from.
    module->lookupSymbol<func::FuncOp>("model").erase();
    PassManager pm(&context);
    if (target == "cuda")
      kvc::buildGPUModelPipeline(pm);
    else
      kvc::buildCPUPipeline(pm);
    if (failed(pm.run(*module)))
      return 1;
  }
  if (emit == "artifact")
    return failed(kvc::writeArtifact(*module, target, std::move(manifest),
                                     output));
  std::string error;
  auto out = openOutputFile(output, &error);
  if (!out)
    return fail(error);
  if (emit == "manifest")
    out->os() << llvm::formatv("{0:2}",
                               llvm::json::Value(std::move(manifest)))
              << "\n";
  else
    module->print(out->os());
  out->keep();
  return 0;
}
