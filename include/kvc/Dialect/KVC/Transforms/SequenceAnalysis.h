//===- SequenceAnalysis.h - which values carry the sequence -----*- C++ -*-===//
//
// The analysis behind kvc-incrementalize: for a function in full-sequence
// form, which tensor dimensions carry the batch and sequence of its inputs,
// and a proof that every op but causal attention is row-local along the
// sequence (output row t depends on input row t only).
//
//===----------------------------------------------------------------------===//
#ifndef KVC_DIALECT_KVC_TRANSFORMS_SEQUENCEANALYSIS_H
#define KVC_DIALECT_KVC_TRANSFORMS_SEQUENCEANALYSIS_H

#include "kvc/Dialect/KVC/IR/KVCOps.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/SmallVector.h"

namespace mlir::kvc {

/// The argument attribute marking inputs laid out `[batch, sequence, ...]`.
constexpr llvm::StringLiteral kRowsAttrName = "kvc.rows";
/// The argument attribute marking the `[batch, sequence]` integer positions.
constexpr llvm::StringLiteral kPositionsAttrName = "kvc.positions";

/// An input axis a dimension can carry.
enum class Axis : uint8_t { Batch, Seq };

/// What one tensor dimension (or one `index` size) stands for: the product of
/// these input axes, outermost first. Empty: an axis the inputs do not carry,
/// such as heads or the hidden size. A collapse of `[batch, seq]` into one
/// dimension gives `{Batch, Seq}`.
using DimRole = llvm::SmallVector<Axis, 2>;

/// How an op relates rows of the sequence.
enum class OpKind {
  /// Reads nothing that carries the sequence (weights, constants, shapes).
  Invariant,
  /// Output row t depends on input row t only.
  RowLocal,
  /// Causal attention: the one op that mixes positions; its keys and values
  /// go to a cache.
  Attention,
};

class SequenceAnalysis {
public:
  /// Analyzes `func`, whose arguments marked `kvc.rows` or `kvc.positions`
  /// are laid out `[batch, sequence, ...]`. On failure, emits an error at the
  /// first op that mixes positions or is not understood, saying why.
  static FailureOr<SequenceAnalysis> run(func::FuncOp func);

  /// The roles of each dimension of a tensor, or the single role of an
  /// `index` value; empty for anything the inputs' rows do not reach.
  llvm::ArrayRef<DimRole> getRoles(Value value) const;
  /// Whether some dimension of `value` carries the sequence.
  bool carriesSequence(Value value) const;
  OpKind getKind(Operation *op) const;

  /// The causal attentions, in program order: one cache each.
  llvm::ArrayRef<AttentionOp> getAttentions() const { return attentions; }
  /// The argument marked `kvc.positions`, if any.
  BlockArgument getPositions() const { return positions; }

private:
  SequenceAnalysis() = default;
  friend class SequenceAnalysisBuilder;

  llvm::DenseMap<Value, llvm::SmallVector<DimRole>> roles;
  llvm::DenseMap<Operation *, OpKind> kinds;
  llvm::SmallVector<AttentionOp> attentions;
  BlockArgument positions;
};

/// Whether `func` is in full-sequence form for kvc-incrementalize: some
/// argument is marked `kvc.rows` or `kvc.positions`.
bool isFullSequenceModel(func::FuncOp func);

/// Prints a role as `b`, `s`, `bs` or `_`.
void printRole(llvm::raw_ostream &os, const DimRole &role);

} // namespace mlir::kvc

#endif // KVC_DIALECT_KVC_TRANSFORMS_SEQUENCEANALYSIS_H
