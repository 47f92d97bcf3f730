//===- Preparation.cpp - linalg made ready for the model lowerings ---------===//
//
// kvc-fuse-elementwise: fuses all-parallel producers into their one
// all-parallel consumer (fewer kernels and round trips through memory);
// contractions and reductions are left whole so that they still match
// their kernels (cuBLASLt, the row reduction).
// kvc-lower-memref-copy: memref.copy as a linalg.generic, so that copies
// become loops (CPU) or kernels (GPU) like every other op, with no runtime
// library call.
//
//===----------------------------------------------------------------------===//
#include "kvc/Conversion/Passes.h"
#include "kvc/Conversion/Utils.h"

#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Linalg/Transforms/Transforms.h"
#include "mlir/Dialect/Linalg/Utils/Utils.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace mlir::kvc {
#define GEN_PASS_DEF_KVCFUSEELEMENTWISEPASS
#define GEN_PASS_DEF_KVCLOWERMEMREFCOPYPASS
#include "kvc/Conversion/Passes.h.inc"
} // namespace mlir::kvc

using namespace mlir;

namespace {

bool allParallel(Operation *op) {
  auto linalgOp = dyn_cast_or_null<linalg::LinalgOp>(op);
  return linalgOp && linalgOp.getNumLoops() == linalgOp.getNumParallelLoops();
}

struct KVCFuseElementwisePass
    : kvc::impl::KVCFuseElementwisePassBase<KVCFuseElementwisePass> {
  void runOnOperation() override {
    // Named ops (transposes) fuse as generics; fills stay named, and each
    // user gets its own, right before it: bufferization then fills in place
    // and a projection keeps its zero fill next to it.
    IRRewriter rewriter(&getContext());
    SmallVector<linalg::LinalgOp> named;
    SmallVector<linalg::FillOp> fills;
    getOperation()->walk([&](linalg::LinalgOp op) {
      if (auto fill = dyn_cast<linalg::FillOp>(*op))
        fills.push_back(fill);
      else if (!isa<linalg::GenericOp>(*op))
        named.push_back(op);
    });
    if (failed(kvc::generalizeNamedOps(named,
                                       "cannot be generalized for fusion")))
      return signalPassFailure();
    for (linalg::FillOp fill : fills) {
      if (!fill.hasPureTensorSemantics())
        continue;
      for (OpOperand &use : llvm::make_early_inc_range(fill->getUses())) {
        rewriter.setInsertionPoint(use.getOwner());
        use.set(rewriter.clone(*fill)->getResult(0));
      }
      rewriter.eraseOp(fill);
    }

    RewritePatternSet patterns(&getContext());
    linalg::populateElementwiseOpsFusionPatterns(
        patterns, [](OpOperand *operand) {
          Operation *producer = operand->get().getDefiningOp();
          return allParallel(producer) && allParallel(operand->getOwner()) &&
                 producer->hasOneUse();
        });
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

struct KVCLowerMemRefCopyPass
    : kvc::impl::KVCLowerMemRefCopyPassBase<KVCLowerMemRefCopyPass> {
  void runOnOperation() override {
    SmallVector<memref::CopyOp> copies;
    getOperation()->walk([&](memref::CopyOp op) { copies.push_back(op); });
    for (memref::CopyOp op : copies) {
      OpBuilder b(op);
      linalg::makeMemRefCopyOp(b, op.getLoc(), op.getSource(), op.getTarget());
      op.erase();
    }
  }
};

} // namespace
