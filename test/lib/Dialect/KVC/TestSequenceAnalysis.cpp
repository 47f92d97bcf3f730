//===- TestSequenceAnalysis.cpp - print the sequence analysis --------------===//
//
// For lit: a remark on every op of each function with a kvc.rows argument,
// saying how it relates rows and what each result dimension carries.
//
//===----------------------------------------------------------------------===//
#include "kvc/Dialect/KVC/Transforms/SequenceAnalysis.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"
#include "mlir/Pass/PassRegistry.h"

using namespace mlir;
using namespace mlir::kvc;

namespace {

StringRef kindName(OpKind kind) {
  switch (kind) {
  case OpKind::Invariant:
    return "invariant";
  case OpKind::RowLocal:
    return "row-local";
  case OpKind::Attention:
    return "attention";
  }
  llvm_unreachable("unknown op kind");
}

struct TestSequenceAnalysisPass
    : PassWrapper<TestSequenceAnalysisPass, OperationPass<ModuleOp>> {
  MLIR_DEFINE_EXPLICIT_INTERNAL_INLINE_TYPE_ID(TestSequenceAnalysisPass)

  StringRef getArgument() const final { return "test-kvc-sequence-analysis"; }
  StringRef getDescription() const final {
    return "print the kvc-incrementalize sequence analysis as remarks";
  }

  void runOnOperation() override {
    for (auto func : getOperation().getOps<func::FuncOp>()) {
      if (!isFullSequenceModel(func))
        continue;
      FailureOr<SequenceAnalysis> analysis = SequenceAnalysis::run(func);
      if (failed(analysis))
        return signalPassFailure();
      for (Operation &op : func.getBody().front()) {
        if (op.hasTrait<OpTrait::IsTerminator>())
          continue;
        InFlightDiagnostic remark = op.emitRemark(kindName(analysis->getKind(&op)));
        for (Value result : op.getResults()) {
          std::string text;
          llvm::raw_string_ostream os(text);
          ArrayRef<DimRole> roles = analysis->getRoles(result);
          if (roles.empty())
            continue;
          os << " [";
          llvm::interleaveComma(roles, os,
                                [&](const DimRole &r) { printRole(os, r); });
          os << "]";
          remark << text;
        }
      }
    }
  }
};

} // namespace

namespace mlir::kvc {
void registerTestSequenceAnalysisPass() {
  PassRegistration<TestSequenceAnalysisPass>();
}
} // namespace mlir::kvc
