//===- Artifact.cpp - a compiled model on disk -----------------------------===//
#include "kvc/Execution/Artifact.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/ExecutionEngine/OptUtils.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Target/LLVMIR/Export.h"
#include "llvm/IR/IRBuilder.h"
#include "llvm/IR/LegacyPassManager.h"
#include "llvm/IR/Module.h"
#include "llvm/MC/TargetRegistry.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/Target/TargetMachine.h"
#include "llvm/Target/TargetOptions.h"
#include "llvm/TargetParser/Host.h"

using namespace mlir;
using namespace mlir::kvc;

namespace {

/// Adds `void _kvc_<name>(void **args)`: args[i] points to the i-th
/// parameter's value, args[n] to where the result goes. Returns the number
/// of parameter and result words.
std::pair<int64_t, int64_t> addPackedWrapper(llvm::Module &module,
                                             llvm::Function *f) {
  llvm::LLVMContext &ctx = module.getContext();
  auto *ptr = llvm::PointerType::get(ctx, 0);
  auto *wrapper = llvm::Function::Create(
      llvm::FunctionType::get(llvm::Type::getVoidTy(ctx), {ptr}, false),
      llvm::GlobalValue::ExternalLinkage, "_kvc_" + f->getName(), module);
  llvm::IRBuilder<> b(llvm::BasicBlock::Create(ctx, "entry", wrapper));
  auto slot = [&](unsigned i) {
    return b.CreateLoad(ptr, b.CreateConstGEP1_64(ptr, wrapper->getArg(0), i));
  };
  llvm::SmallVector<llvm::Value *> args;
  for (llvm::Argument &arg : f->args())
    args.push_back(b.CreateLoad(arg.getType(), slot(arg.getArgNo())));
  llvm::Value *result = b.CreateCall(f, args);
  int64_t resultWords = 0;
  if (!f->getReturnType()->isVoidTy()) {
    b.CreateStore(result, slot(f->arg_size()));
    resultWords =
        module.getDataLayout().getTypeAllocSize(f->getReturnType()) / 8;
  }
  b.CreateRetVoid();
  return {static_cast<int64_t>(f->arg_size()), resultWords};
}

LogicalResult fail(ModuleOp module, const Twine &message) {
  return module.emitError("kvc: ") << message;
}

/// A target machine for position-independent code of this host.
std::unique_ptr<llvm::TargetMachine> hostMachine(std::string &error) {
  static const bool ready = [] {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
    return true;
  }();
  (void)ready;
  llvm::Triple triple(llvm::sys::getDefaultTargetTriple());
  const llvm::Target *target = llvm::TargetRegistry::lookupTarget(triple, error);
  if (!target)
    return nullptr;
  // A generic CPU: the artifact may run on another machine (the GPU's).
  // Constructors (which load the kernels) in .init_array: the dynamic
  // loader runs nothing else.
  llvm::TargetOptions options;
  options.UseInitArray = true;
  return std::unique_ptr<llvm::TargetMachine>(target->createTargetMachine(
      triple, "x86-64-v2", "", options, llvm::Reloc::PIC_));
}

/// The host code as a shared library at `path`. For cuda it only launches
/// and calls the runtime (and is replayed from a CUDA graph when it counts):
/// it is not optimized, which keeps a 22-layer model's compile short.
LogicalResult emitLibrary(ModuleOp module, StringRef target,
                          llvm::TargetMachine *machine,
                          llvm::Module &llvmModule, StringRef path) {
  std::string error;
  if (target == "cpu") {
    if (llvm::Error e = makeOptimizingTransformer(2, 0, machine)(&llvmModule))
      return fail(module, "optimizing the host code: " +
                              llvm::toString(std::move(e)));
  } else {
    machine->setOptLevel(llvm::CodeGenOptLevel::None);
  }

  std::string object = (path + ".o").str();
  {
    std::error_code ec;
    llvm::raw_fd_ostream os(object, ec);
    if (ec)
      return fail(module, "cannot write " + object + ": " + ec.message());
    llvm::legacy::PassManager codegen;
    if (machine->addPassesToEmitFile(codegen, os, nullptr,
                                     llvm::CodeGenFileType::ObjectFile))
      return fail(module, "the host target cannot emit objects");
    codegen.run(llvmModule);
  }
  llvm::ErrorOr<std::string> lld = llvm::sys::findProgramByName(
      "ld.lld", {KVC_LLVM_TOOLS_DIR});
  if (!lld)
    return fail(module, "ld.lld not found (in " KVC_LLVM_TOOLS_DIR
                        " or on PATH): it links the model library");
  std::string pathStr = path.str();
  llvm::SmallVector<StringRef> args = {*lld, "-shared", "-o", pathStr, object};
  int status = llvm::sys::ExecuteAndWait(*lld, args, std::nullopt, {}, 0, 0,
                                         &error);
  llvm::sys::fs::remove(object);
  if (status != 0)
    return fail(module, "linking " + path + " failed: " + error);
  return success();
}

LogicalResult writeFile(ModuleOp module, StringRef path, StringRef bytes) {
  std::error_code ec;
  llvm::raw_fd_ostream os(path, ec);
  if (ec)
    return fail(module, "cannot write " + path + ": " + ec.message());
  os << bytes;
  return success();
}

LogicalResult fill(ModuleOp module, StringRef target,
                   llvm::json::Object &manifest, StringRef dir) {
  if (target == "cuda") {
    // kvc's kernel library goes to its own file, for the runtime to load.
    auto binary = dyn_cast_or_null<gpu::BinaryOp>(
        SymbolTable::lookupSymbolIn(module, "kvc_kernels"));
    if (!binary || binary.getObjects().size() != 1)
      return fail(module, "no gpu.binary @kvc_kernels after the pipeline");
    if (failed(writeFile(
            module, (dir + "/kernels.cubin").str(),
            cast<gpu::ObjectAttr>(binary.getObjects()[0]).getObject())))
      return failure();
    binary.erase();
    manifest["kernels"] = "kernels.cubin";
  }

  std::string error;
  std::unique_ptr<llvm::TargetMachine> machine = hostMachine(error);
  if (!machine)
    return fail(module, "no host target: " + error);
  llvm::LLVMContext context;
  std::unique_ptr<llvm::Module> llvmModule =
      translateModuleToLLVMIR(module, context, "kvc_model");
  if (!llvmModule)
    return fail(module, "translation to LLVM IR failed");
  for (const char *entry : {kPrefillEntry, kDecodeEntry}) {
    llvm::Function *f = llvmModule->getFunction(entry);
    if (!f || f->isDeclaration())
      return fail(module, Twine("no entry point @") + entry);
  }
  // Wrappers after the data layout is set: result words depend on it.
  std::string library = (dir + "/model.so").str();
  llvmModule->setDataLayout(machine->createDataLayout());
  llvmModule->setTargetTriple(machine->getTargetTriple());
  auto [prefillWords, prefillResults] =
      addPackedWrapper(*llvmModule, llvmModule->getFunction(kPrefillEntry));
  auto [decodeWords, decodeResults] =
      addPackedWrapper(*llvmModule, llvmModule->getFunction(kDecodeEntry));
  if (failed(emitLibrary(module, target, machine.get(), *llvmModule, library)))
    return failure();
  // Logits are a rank-3 memref: 3 + 2 * 3 words; the rest are caches.
  constexpr int64_t logitsWords = 9;
  manifest["target"] = target;
  manifest["library"] = "model.so";
  manifest["entry_points"] = llvm::json::Array{kPrefillEntry, kDecodeEntry};
  manifest["prefill_words"] = prefillWords;
  manifest["decode_words"] = decodeWords;
  manifest["cache_words"] = prefillResults - logitsWords;
  if (decodeResults != logitsWords)
    return fail(module, "decode returns " + Twine(decodeResults) +
                            " words, expected the logits' " +
                            Twine(logitsWords));
  return writeFile(
      module, (dir + "/manifest.json").str(),
      llvm::formatv("{0:2}\n",
                    llvm::json::Value(llvm::json::Object(manifest)))
          .str());
}

} // namespace

LogicalResult mlir::kvc::writeArtifact(ModuleOp module, StringRef target,
                                       llvm::json::Object manifest,
                                       StringRef directory) {
  std::string tmp = (directory + ".tmp").str();
  llvm::sys::fs::remove_directories(tmp);
  if (std::error_code ec = llvm::sys::fs::create_directories(tmp))
    return fail(module, "cannot create " + tmp + ": " + ec.message());
  if (failed(fill(module, target, manifest, tmp))) {
    llvm::sys::fs::remove_directories(tmp);
    return failure();
  }
  llvm::sys::fs::remove_directories(directory);
  if (std::error_code ec = llvm::sys::fs::rename(tmp, directory)) {
    llvm::sys::fs::remove_directories(tmp);
    return fail(module, "cannot rename " + tmp + " to " + directory + ": " +
                            ec.message());
  }
  return success();
}
