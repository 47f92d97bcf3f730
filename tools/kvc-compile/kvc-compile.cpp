//===- kvc-compile.cpp - compile a Hugging Face model with kvc -------------===//
//
// Reads a Llama config.json, writes the model in full-sequence form, and
// makes it incremental. So far it stops at IR (--emit=mlir, at the stage
// --stage names); the GPU artifact comes next (issue 6).
//
//===----------------------------------------------------------------------===//
#include "kvc/InitAll.h"
#include "kvc/Models/Llama.h"

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

static cl::opt<std::string> configPath(cl::Positional,
                                       cl::desc("<config.json>"),
                                       cl::Required);
static cl::opt<std::string>
    emit("emit",
         cl::desc("what to write: mlir (the IR at --stage) or manifest (JSON: "
                  "the weights the model expects, names, dtypes, shapes)"),
         cl::init("mlir"));
static cl::opt<std::string>
    stage("stage",
          cl::desc("model: the full-sequence model; incremental (default): "
                   "after kvc-incrementalize (@model_prefill, @model_decode)"),
          cl::init("incremental"));
static cl::opt<std::string> output("o", cl::desc("output file"),
                                   cl::value_desc("file"), cl::init("-"));

/// The weights @model takes, in order, as JSON: what kvc-run checks a
/// checkpoint against.
static void writeManifest(ModuleOp module, llvm::raw_ostream &os) {
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
    weights.push_back(llvm::json::Object{
        {"name", name.getValue()},
        {"dtype", dtype == "f32" ? "F32" : dtype == "bf16" ? "BF16" : "F16"},
        {"shape", std::move(shape)}});
  }
  llvm::json::Object manifest{{"entry_points", llvm::json::Array{
                                                   "model_prefill",
                                                   "model_decode"}},
                              {"weights", std::move(weights)}};
  os << llvm::formatv("{0:2}", llvm::json::Value(std::move(manifest)))
     << "\n";
}

static int fail(const llvm::Twine &message) {
  llvm::WithColor::error(llvm::errs(), "kvc-compile") << message << "\n";
  return 1;
}

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  cl::ParseCommandLineOptions(
      argc, argv,
      "kvc-compile: a Llama config.json to kvc IR (prefill and decode)\n");
  if (emit != "mlir" && emit != "manifest")
    return fail("--emit=" + emit + " is not available (mlir, manifest)");
  if (stage != "model" && stage != "incremental")
    return fail("--stage must be model or incremental, found '" + stage + "'");
  auto file = llvm::MemoryBuffer::getFile(configPath);
  if (!file)
    return fail("cannot read " + configPath + ": " + file.getError().message());
  llvm::Expected<kvc::LlamaConfig> config =
      kvc::parseLlamaConfig((*file)->getBuffer());
  if (!config)
    return fail(configPath + ": " + llvm::toString(config.takeError()));

  DialectRegistry registry;
  kvc::registerAllDialects(registry);
  MLIRContext context(registry);
  std::string source = kvc::buildLlamaModel(*config);
  OwningOpRef<ModuleOp> module = parseSourceString<ModuleOp>(source, &context);
  if (!module)
    return fail("the generated model does not parse (a kvc bug)");
  if (stage == "incremental") {
    PassManager pm(&context);
    pm.addPass(kvc::createKVCIncrementalizePass());
    pm.addPass(createCanonicalizerPass());
    pm.addPass(createCSEPass());
    if (failed(pm.run(*module)))
      return 1;
  }
  std::string error;
  auto out = openOutputFile(output, &error);
  if (!out)
    return fail(error);
  if (emit == "manifest")
    writeManifest(*module, out->os());
  else
    module->print(out->os());
  out->keep();
  return 0;
}
