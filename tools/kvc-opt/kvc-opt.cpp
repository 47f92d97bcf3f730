//===- kvc-opt.cpp - the kvc optimizer driver ------------------------------===//
//
// mlir-opt with the kvc dialect, passes and pipelines registered.
//
//===----------------------------------------------------------------------===//

#include "kvc/InitAll.h"

#include "mlir/IR/DialectRegistry.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"

int main(int argc, char **argv) {
  mlir::DialectRegistry registry;
  mlir::kvc::registerAllDialects(registry);
  mlir::kvc::registerAllPasses();
  return mlir::asMainReturnCode(mlir::MlirOptMain(
      argc, argv, "kvc optimizer driver: runs kvc and MLIR passes on IR\n",
      registry));
}
