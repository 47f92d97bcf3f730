//===- kvc-kernels.cpp - build kvc's GPU kernel library --------------------===//
//
// Writes the kvc GPU kernels for the given head dims, query groups and
// element types, as MLIR (--emit=mlir), PTX (--emit=ptx) or a cubin for
// sm_90a (--emit=cubin, the default): what the runtime loads.
//
//===----------------------------------------------------------------------===//
#include "kvc/Conversion/KVCToGPU/Kernels.h"
#include "kvc/Execution/GPUBinary.h"
#include "kvc/InitAll.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Support/FileUtilities.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/WithColor.h"

using namespace mlir;
namespace cl = llvm::cl;

static cl::OptionCategory category("kvc-kernels options");
static cl::list<int64_t> headDims("head-dims", cl::cat(category), cl::desc("head dims (32,64,128)"),
                                  cl::CommaSeparated);
static cl::list<int64_t> groups("groups",
                                cl::cat(category), cl::desc("query heads per kv head (1,4,6,8,32)"),
                                cl::CommaSeparated);
static cl::list<std::string>
    elementTypes("element-types", cl::cat(category), cl::desc("bf16, f16 and/or f32"),
                 cl::CommaSeparated);
static cl::opt<std::string> emit("emit", cl::cat(category), cl::desc("mlir, ptx or cubin"),
                                 cl::init("cubin"));
static cl::opt<std::string> output("o", cl::cat(category), cl::desc("output file"),
                                   cl::value_desc("file"), cl::init("-"));

static int fail(const llvm::Twine &message) {
  llvm::WithColor::error(llvm::errs(), "kvc-kernels") << message << "\n";
  return 1;
}

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  cl::HideUnrelatedOptions(category);
  cl::ParseCommandLineOptions(argc, argv, "kvc GPU kernel library builder\n");
  if (emit != "mlir" && emit != "ptx" && emit != "cubin")
    return fail("--emit must be mlir, ptx or cubin, found '" + emit + "'");
  std::vector<int64_t> dims(headDims.begin(), headDims.end());
  std::vector<int64_t> gs(groups.begin(), groups.end());
  std::vector<std::string> types(elementTypes.begin(), elementTypes.end());
  if (dims.empty())
    dims = {32, 64, 128};
  if (gs.empty())
    gs = {1, 4, 6, 8, 32};
  if (types.empty())
    types = {"bf16", "f16", "f32"};
  std::vector<kvc::kernels::KernelKey> keys;
  std::vector<kvc::kernels::GemvKey> gemvs;
  for (const std::string &name : types) {
    std::optional<kvc::kernels::ElementType> type;
    for (auto candidate : {kvc::kernels::ElementType::F16,
                           kvc::kernels::ElementType::BF16,
                           kvc::kernels::ElementType::F32})
      if (kvc::kernels::getName(candidate) == name)
        type = candidate;
    if (!type)
      return fail("unknown element type '" + name + "' (bf16, f16, f32)");
    for (int64_t d : dims)
      for (int64_t g : gs)
        keys.push_back({d, g, *type});
    // Batch-1 projections, to f32 and to the input type.
    if (*type != kvc::kernels::ElementType::F32)
      for (auto out : {kvc::kernels::ElementType::F32, *type})
        gemvs.push_back({*type, out});
  }

  DialectRegistry registry;
  kvc::registerAllDialects(registry);
  MLIRContext context(registry);
  OwningOpRef<ModuleOp> module = ModuleOp::create(UnknownLoc::get(&context));
  if (failed(kvc::kernels::addKernels(*module, keys, gemvs)))
    return 1;

  std::string error;
  auto file = openOutputFile(output, &error);
  if (!file)
    return fail(error);
  if (emit == "mlir") {
    module->print(file->os());
  } else {
    FailureOr<std::string> bytes = kvc::serializeGPUModule(
        *module, emit == "ptx" ? kvc::GPUFormat::PTX : kvc::GPUFormat::Cubin);
    if (failed(bytes))
      return 1;
    file->os() << *bytes;
  }
  file->keep();
  return 0;
}
