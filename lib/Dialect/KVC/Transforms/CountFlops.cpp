//===- CountFlops.cpp - the work of generating with and without caches ----===//
#include "kvc/Dialect/KVC/Transforms/Passes.h"
#include "kvc/Dialect/KVC/Transforms/SequenceAnalysis.h"

#include "mlir/Dialect/Math/IR/Math.h"
#include "llvm/Support/Format.h"

namespace mlir::kvc {
#define GEN_PASS_DEF_KVCCOUNTFLOPSPASS
#include "kvc/Dialect/KVC/Transforms/Passes.h.inc"
} // namespace mlir::kvc

using namespace mlir;
using namespace mlir::kvc;

namespace {

/// Floating-point operations of one call on R rows with P (row, key) pairs.
struct Cost {
  double perCall = 0, perRow = 0, perPair = 0;
  double at(double rows, double pairs) const {
    return perCall + perRow * rows + perPair * pairs;
  }
};

bool isFlop(Operation &op) {
  if (op.getNumResults() != 1 || !isa<FloatType>(op.getResult(0).getType()))
    return false;
  return isa<math::MathDialect>(op.getDialect()) ||
         isa<arith::AddFOp, arith::SubFOp, arith::MulFOp, arith::DivFOp,
             arith::RemFOp, arith::NegFOp, arith::MaximumFOp,
             arith::MinimumFOp, arith::MaxNumFOp, arith::MinNumFOp>(op);
}

bool hasSeq(ArrayRef<Axis> role) { return llvm::is_contained(role, Axis::Seq); }

/// Adds `flops` per iteration of an iteration space whose dimensions have
/// these sizes and roles to `cost`.
LogicalResult addWork(Operation *op, Cost &cost, double flops,
                      ArrayRef<int64_t> sizes, ArrayRef<DimRole> roles) {
  bool perRow = false;
  for (auto [size, role] : llvm::zip(sizes, roles)) {
    if (!ShapedType::isDynamic(size)) {
      flops *= size;
      continue;
    }
    if (hasSeq(role)) {
      perRow = true;
      continue;
    }
    if (role.empty())
      return op->emitOpError("has a dynamic size that is neither the batch "
                             "nor the sequence: its work cannot be counted");
  }
  (perRow ? cost.perRow : cost.perCall) += flops;
  return success();
}

FailureOr<Cost> countFlops(func::FuncOp func, const SequenceAnalysis &analysis) {
  Cost cost;
  for (Operation &op : func.getBody().front()) {
    if (auto attention = dyn_cast<AttentionOp>(op)) {
      auto query = attention.getQuery().getType();
      cost.perPair += 4.0 * query.getDimSize(1) * query.getDimSize(3);
      continue;
    }
    if (auto linalgOp = dyn_cast<linalg::LinalgOp>(op)) {
      double flops = 0;
      for (Operation &inner : linalgOp.getBlock()->getOperations())
        flops += isFlop(inner);
      if (flops == 0)
        continue;
      SmallVector<int64_t> sizes = linalgOp.getStaticLoopRanges();
      SmallVector<DimRole> loopRoles(sizes.size());
      for (OpOperand &operand : op.getOpOperands()) {
        if (!isa<RankedTensorType>(operand.get().getType()))
          continue;
        ArrayRef<DimRole> roles = analysis.getRoles(operand.get());
        AffineMap map = linalgOp.getMatchingIndexingMap(&operand);
        for (auto [r, expr] : llvm::enumerate(map.getResults()))
          if (auto dim = dyn_cast<AffineDimExpr>(expr))
            if (r < roles.size() && !roles[r].empty())
              loopRoles[dim.getPosition()] = roles[r];
      }
      if (failed(addWork(&op, cost, flops, sizes, loopRoles)))
        return failure();
      continue;
    }
    if (op.hasTrait<OpTrait::Elementwise>() && op.getNumResults() == 1)
      if (auto type = dyn_cast<RankedTensorType>(op.getResult(0).getType()))
        if (isa<FloatType>(type.getElementType())) {
          SmallVector<DimRole> roles(analysis.getRoles(op.getResult(0)));
          roles.resize(type.getRank());
          if (failed(addWork(&op, cost, 1, type.getShape(), roles)))
            return failure();
        }
  }
  return cost;
}

struct KVCCountFlopsPass : kvc::impl::KVCCountFlopsPassBase<KVCCountFlopsPass> {
  using Base::Base;

  void runOnOperation() override {
    SmallVector<int64_t> generated(generatedTokens.begin(),
                                   generatedTokens.end());
    if (generated.empty())
      generated = {64, 256, 1024};
    if (promptTokens < 1 || llvm::any_of(generated, [](int64_t n) {
          return n < 1;
        })) {
      getOperation().emitError("kvc-count-flops: prompt-tokens and "
                               "generated-tokens must be at least 1");
      return signalPassFailure();
    }
    for (auto func : getOperation().getOps<func::FuncOp>()) {
      if (!isFullSequenceModel(func))
        continue;
      FailureOr<SequenceAnalysis> analysis = SequenceAnalysis::run(func);
      if (failed(analysis))
        return signalPassFailure();
      FailureOr<Cost> cost = countFlops(func, *analysis);
      if (failed(cost))
        return signalPassFailure();
      print(func, *cost, generated);
    }
  }

  void print(func::FuncOp func, const Cost &cost, ArrayRef<int64_t> generated) {
    llvm::raw_ostream &os = llvm::outs();
    double prompt = promptTokens;
    os << "@" << func.getName() << ": " << llvm::format("%.0f", cost.perRow)
       << " FLOPs per row, " << llvm::format("%.0f", cost.perPair)
       << " per (row, attended key), " << llvm::format("%.0f", cost.perCall)
       << " per call\n";
    os << "greedy generation after a " << promptTokens
       << "-token prompt, one sequence, FLOPs:\n";
    os << llvm::format("%10s %16s %16s %8s\n", "generated", "recompute",
                       "prefill+decode", "ratio");
    for (int64_t n : generated) {
      // Recompute: step i runs @f on the P + i rows seen so far.
      double recompute = 0;
      for (int64_t i = 0; i < n; ++i) {
        double rows = prompt + i;
        recompute += cost.at(rows, rows * (rows + 1) / 2);
      }
      // Prefill on P rows, then step i feeds one row at position P + i - 1,
      // which attends to P + i keys.
      double incremental = cost.at(prompt, prompt * (prompt + 1) / 2);
      for (int64_t i = 1; i < n; ++i)
        incremental += cost.at(1, prompt + i);
      os << llvm::format("%10lld %16.4g %16.4g %7.1fx\n",
                         static_cast<long long>(n), recompute, incremental,
                         recompute / incremental);
    }
  }
};

} // namespace
