//===- GridDependency.cpp - kvc-order-grid-dependency-wait -----------------===//
//
// `nvvm.griddepcontrol wait` becomes the intrinsic llvm.nvvm.griddepcontrol
// .wait, which LLVM takes to touch no memory: nothing stops it from moving
// a load across it. Inline PTX with a memory clobber (as CUTLASS writes it)
// keeps every load after the wait after it, and those before it (weights,
// read before the kernels ahead finish) before it.
//
//===----------------------------------------------------------------------===//
#include "kvc/Conversion/Passes.h"

#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/IR/Builders.h"

namespace mlir::kvc {
#define GEN_PASS_DEF_KVCORDERGRIDDEPENDENCYWAITPASS
#include "kvc/Conversion/Passes.h.inc"
} // namespace mlir::kvc

using namespace mlir;

namespace {
struct KVCOrderGridDependencyWaitPass
    : kvc::impl::KVCOrderGridDependencyWaitPassBase<
          KVCOrderGridDependencyWaitPass> {
  void runOnOperation() override {
    SmallVector<NVVM::GriddepcontrolOp> waits;
    getOperation()->walk([&](NVVM::GriddepcontrolOp op) {
      if (op.getKind() == NVVM::GridDepActionKind::wait)
        waits.push_back(op);
    });
    for (NVVM::GriddepcontrolOp op : waits) {
      OpBuilder b(op);
      LLVM::InlineAsmOp::create(
          b, op.getLoc(), TypeRange(), ValueRange(), "griddepcontrol.wait;",
          "~{memory}", /*has_side_effects=*/true, /*is_align_stack=*/false,
          LLVM::tailcallkind::TailCallKind::None, LLVM::AsmDialectAttr(),
          ArrayAttr());
      op.erase();
    }
  }
};
} // namespace
