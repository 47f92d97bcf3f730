//===- Artifact.h - a compiled model on disk ---------------------*- C++ -*-===//
//
// What kvc-compile writes and kvc-run loads: a directory holding
//   manifest.json   target, entry points and their argument words, the
//                   weights (name, dtype, shape) in argument order
//   model.so        the host code, with `_kvc_<entry>(void **args)` wrappers
//                   taking one pointer per 64-bit argument word and one to
//                   the results (for cuda it also holds the model's kernels)
//   kernels.cubin   kvc's kernel library (cuda only)
//
//===----------------------------------------------------------------------===//
#ifndef KVC_EXECUTION_ARTIFACT_H
#define KVC_EXECUTION_ARTIFACT_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Support/LLVM.h"
#include "llvm/Support/JSON.h"

#include <string>

namespace mlir::kvc {

/// The entry points every artifact has.
constexpr const char *kPrefillEntry = "model_prefill";
constexpr const char *kDecodeEntry = "model_decode";
/// The manifest's "format": raised whenever what kvc-run may assume of an
/// artifact changes (kvc-model-2: every kernel starts with
/// griddepcontrol.wait, for programmatic dependent launches). kvc-run
/// refuses others.
constexpr const char *kArtifactFormat = "kvc-model-2";

/// Writes the artifact of `module` (the host functions lowered to the LLVM
/// dialect by the CPU or GPU model pipeline) into `directory`, atomically:
/// into a temporary directory renamed at the end, removed on failure.
/// `manifest` is completed with the entry points' words and the files.
/// Errors are diagnostics on the module.
LogicalResult writeArtifact(ModuleOp module, StringRef target,
                            llvm::json::Object manifest, StringRef directory);

} // namespace mlir::kvc

#endif // KVC_EXECUTION_ARTIFACT_H
