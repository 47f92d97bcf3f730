//===- kvc-opt.cpp - the kvc optimizer driver ------------------------------===//
//
// mlir-opt with the kvc dialect, passes and pipelines registered, and the
// test-only passes of test/lib.
//
//===----------------------------------------------------------------------===//

#include "kvc/InitAll.h"

#include "mlir/IR/DialectRegistry.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"

namespace mlir::kvc {
void registerTestSequenceAnalysisPass();
} // namespace mlir::kvc

int main(int argc, char **argv) {
  mlir::DialectRegistry registry;
  mlir::kvc::registerAllDialects(registry);
  mlir::kvc::registerAllPasses();
  mlir::kvc::registerTestSequenceAnalysisPass();
  return mlir::asMainReturnCode(mlir::MlirOptMain(
      argc, argv, "kvc optimizer driver: runs kvc and MLIR passes on IR\n",
      registry));
}
