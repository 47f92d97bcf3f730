//===- SequenceAnalysis.cpp - which values carry the sequence --------------===//
//
// A forward walk over the single block of a full-sequence function. Every
// value gets the roles of its dimensions, derived from the marked arguments
// through each op's indexing. An op whose output rows could read another
// row's input is rejected with the reason, unless it is causal attention.
//
//===----------------------------------------------------------------------===//
#include "kvc/Dialect/KVC/Transforms/SequenceAnalysis.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Matchers.h"
#include "mlir/Interfaces/CallInterfaces.h"
#include "mlir/Transforms/RegionUtils.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace mlir::kvc;

void mlir::kvc::printRole(raw_ostream &os, const DimRole &role) {
  if (role.empty())
    os << '_';
  for (Axis axis : role)
    os << (axis == Axis::Batch ? 'b' : 's');
}

bool mlir::kvc::isFullSequenceModel(func::FuncOp func) {
  return llvm::any_of(func.getArguments(), [&](BlockArgument arg) {
    unsigned i = arg.getArgNumber();
    return func.getArgAttr(i, kRowsAttrName) ||
           func.getArgAttr(i, kPositionsAttrName);
  });
}

static bool hasSeq(const DimRole &role) {
  return llvm::is_contained(role, Axis::Seq);
}

/// The role without its batch axes: a static batch of one leaves no trace in
/// shapes, so only the sequence must match exactly.
static DimRole seqPart(const DimRole &role) {
  DimRole result;
  llvm::copy_if(role, std::back_inserter(result),
                [](Axis axis) { return axis == Axis::Seq; });
  return result;
}

static std::string roleString(const DimRole &role) {
  std::string text;
  llvm::raw_string_ostream os(text);
  printRole(os, role);
  return text;
}

static std::string rolesString(ArrayRef<DimRole> roles) {
  std::string text = "[";
  llvm::raw_string_ostream os(text);
  llvm::interleaveComma(roles, os,
                        [&](const DimRole &role) { printRole(os, role); });
  os << "]";
  return text;
}

/// Merges two descriptions of one dimension. Batch is tracked where shapes
/// show it; the sequence must agree.
static std::optional<DimRole> merge(const DimRole &a, const DimRole &b) {
  if (a == b)
    return a;
  if (seqPart(a) != seqPart(b))
    return std::nullopt;
  return a.size() >= b.size() ? a : b;
}

static constexpr llvm::StringLiteral kWhyNoCache =
    "only causal kvc.attention may mix positions, because the keys and "
    "values of earlier rows are all it reads from them and a cache can hold "
    "those";

namespace mlir::kvc {

class SequenceAnalysisBuilder {
public:
  explicit SequenceAnalysisBuilder(SequenceAnalysis &result) : a(result) {}

  LogicalResult run(func::FuncOp func);

private:
  using Roles = SmallVector<DimRole>;

  /// The roles of `value`, one per dimension (one for a scalar), all empty
  /// when it is invariant.
  Roles rolesOf(Value value) {
    auto it = a.roles.find(value);
    if (it != a.roles.end())
      return it->second;
    auto shaped = dyn_cast<ShapedType>(value.getType());
    return Roles(shaped && shaped.hasRank() ? shaped.getRank() : 1);
  }
  bool tagged(Value value) { return a.roles.count(value); }
  void set(Value value, Roles roles) {
    if (llvm::any_of(roles, [](const DimRole &r) { return !r.empty(); }))
      a.roles[value] = std::move(roles);
  }

  LogicalResult visit(Operation *op);
  LogicalResult visitAttention(AttentionOp op);
  LogicalResult visitReturn(func::ReturnOp op);
  LogicalResult visitLinalg(linalg::LinalgOp op);
  LogicalResult visitElementwise(Operation *op);
  LogicalResult visitExpand(tensor::ExpandShapeOp op);
  LogicalResult visitExtractSlice(tensor::ExtractSliceOp op);
  LogicalResult visitInsertSlice(tensor::InsertSliceOp op);
  LogicalResult visitConcat(tensor::ConcatOp op);
  LogicalResult visitOther(Operation *op);
  /// Checks that a slice takes the whole of each tagged dimension.
  LogicalResult checkFull(Operation *op, ArrayRef<DimRole> roles,
                          ArrayRef<OpFoldResult> offsets,
                          ArrayRef<OpFoldResult> sizes,
                          ArrayRef<OpFoldResult> strides, ShapedType type);
  LogicalResult checkCaptures(Operation *op);

  SequenceAnalysis &a;
};

} // namespace mlir::kvc

LogicalResult SequenceAnalysisBuilder::run(func::FuncOp func) {
  if (func.isExternal() || !func.getBody().hasOneBlock())
    return func.emitOpError("must have a body of one block to be made "
                            "incremental");
  bool anyMarked = false;
  for (BlockArgument arg : func.getArguments()) {
    unsigned i = arg.getArgNumber();
    bool rows = static_cast<bool>(func.getArgAttr(i, kRowsAttrName));
    bool positions = static_cast<bool>(func.getArgAttr(i, kPositionsAttrName));
    if (!rows && !positions)
      continue;
    anyMarked = true;
    auto type = dyn_cast<RankedTensorType>(arg.getType());
    if (rows && positions)
      return func.emitOpError() << "argument #" << i << " is marked both "
                                << kRowsAttrName << " and "
                                << kPositionsAttrName;
    if (!type || type.getRank() < 2)
      return func.emitOpError()
             << "argument #" << i << " marked "
             << (rows ? kRowsAttrName : kPositionsAttrName)
             << " must be a tensor [batch, sequence, ...], found "
             << arg.getType();
    if (!type.isDynamicDim(1))
      return func.emitOpError()
             << "the sequence dimension (1) of argument #" << i
             << " must be dynamic, found " << type
             << ": prefill and decode run one body on S and T rows";
    if (positions) {
      if (type.getRank() != 2 || !type.getElementType().isSignlessInteger())
        return func.emitOpError()
               << "argument #" << i << " marked " << kPositionsAttrName
               << " must be a [batch, sequence] integer tensor, found "
               << type;
      if (a.positions)
        return func.emitOpError() << "arguments #"
                                  << a.positions.getArgNumber() << " and #"
                                  << i << " are both marked "
                                  << kPositionsAttrName;
      a.positions = arg;
    }
    Roles roles(type.getRank());
    roles[0] = {Axis::Batch};
    roles[1] = {Axis::Seq};
    set(arg, roles);
  }
  if (!anyMarked)
    return func.emitOpError() << "has no argument marked " << kRowsAttrName
                              << ": nothing says which dimension holds the "
                                 "sequence";
  for (Operation &op : func.getBody().front())
    if (failed(visit(&op)))
      return failure();
  if (a.attentions.empty())
    return func.emitOpError()
           << "has no causal kvc.attention: there is nothing to cache";
  return success();
}

LogicalResult SequenceAnalysisBuilder::visit(Operation *op) {
  LogicalResult result =
      TypeSwitch<Operation *, LogicalResult>(op)
          .Case([&](AttentionOp op) { return visitAttention(op); })
          .Case([&](func::ReturnOp op) { return visitReturn(op); })
          .Case([&](tensor::DimOp op) -> LogicalResult {
            std::optional<int64_t> index = op.getConstantIndex();
            if (!index) {
              if (tagged(op.getSource()))
                return op.emitOpError("reads a dimension chosen at run time "
                                      "of a value that carries the sequence");
              return success();
            }
            set(op.getResult(), {rolesOf(op.getSource())[*index]});
            return success();
          })
          .Case([&](arith::MulIOp op) -> LogicalResult {
            if (!op.getType().isIndex() ||
                (!tagged(op.getLhs()) && !tagged(op.getRhs())))
              return visitOther(op);
            // The size of a collapsed dimension.
            DimRole role = rolesOf(op.getLhs())[0];
            llvm::append_range(role, rolesOf(op.getRhs())[0]);
            set(op.getResult(), {role});
            return success();
          })
          .Case([&](tensor::EmptyOp op) -> LogicalResult {
            Roles roles;
            unsigned next = 0;
            for (int64_t size : op.getType().getShape())
              roles.push_back(ShapedType::isDynamic(size)
                                  ? rolesOf(op.getDynamicSizes()[next++])[0]
                                  : DimRole());
            set(op.getResult(), roles);
            return success();
          })
          .Case([&](tensor::CastOp op) -> LogicalResult {
            if (!tagged(op.getSource()))
              return success();
            auto type = dyn_cast<RankedTensorType>(op.getType());
            if (!type)
              return op.emitOpError("erases the rank of a value that carries "
                                    "the sequence");
            Roles roles = rolesOf(op.getSource());
            for (auto [i, role] : llvm::enumerate(roles))
              if (hasSeq(role) && !type.isDynamicDim(i))
                return op.emitOpError()
                       << "casts the sequence dimension " << i
                       << " to a static size: decode runs on another number "
                          "of rows";
            set(op.getResult(), roles);
            return success();
          })
          .Case([&](tensor::CollapseShapeOp op) -> LogicalResult {
            Roles source = rolesOf(op.getSrc()), roles;
            for (ReassociationIndices group : op.getReassociationIndices()) {
              DimRole role;
              for (int64_t i : group)
                llvm::append_range(role, source[i]);
              roles.push_back(role);
            }
            set(op.getResult(), roles);
            return success();
          })
          .Case([&](tensor::ExpandShapeOp op) { return visitExpand(op); })
          .Case([&](tensor::ExtractSliceOp op) { return visitExtractSlice(op); })
          .Case([&](tensor::InsertSliceOp op) { return visitInsertSlice(op); })
          .Case([&](tensor::ConcatOp op) { return visitConcat(op); })
          .Case([&](linalg::LinalgOp op) { return visitLinalg(op); })
          .Default([&](Operation *op) -> LogicalResult {
            if (op->hasTrait<OpTrait::Elementwise>() &&
                llvm::all_of(op->getResultTypes(), llvm::IsaPred<TensorType>))
              return visitElementwise(op);
            return visitOther(op);
          });
  if (failed(result))
    return failure();
  auto carries = [&](Value v) { return tagged(v); };
  if (!a.kinds.count(op))
    a.kinds[op] = llvm::any_of(op->getOperands(), carries) ||
                          llvm::any_of(op->getResults(), carries)
                      ? OpKind::RowLocal
                      : OpKind::Invariant;
  return success();
}

LogicalResult SequenceAnalysisBuilder::visitAttention(AttentionOp op) {
  if (!op.getCausal())
    return op.emitOpError()
           << "mixes positions: attention without a causal mask lets every "
              "row see later rows, which decode has not computed; "
           << kWhyNoCache;
  if (op.getMask())
    return op.emitOpError()
           << "mixes positions: an additive mask over [query, key] positions "
              "is a full-sequence value decode cannot slice; "
           << kWhyNoCache;
  for (auto [name, value] : {std::pair<StringRef, Value>{"query", op.getQuery()},
                             {"key", op.getKey()},
                             {"value", op.getValue()}}) {
    Roles roles = rolesOf(value);
    if (roles[2] != DimRole{Axis::Seq} || hasSeq(roles[0]) ||
        !roles[1].empty() || !roles[3].empty())
      return op.emitOpError()
             << "expects its " << name
             << " laid out [batch, heads, sequence, head_dim], found roles "
             << rolesString(roles) << " (b: batch, s: sequence)";
  }
  set(op.getResult(), rolesOf(op.getQuery()));
  a.kinds[op] = OpKind::Attention;
  a.attentions.push_back(op);
  return success();
}

LogicalResult SequenceAnalysisBuilder::visitReturn(func::ReturnOp op) {
  for (auto [i, value] : llvm::enumerate(op.getOperands())) {
    Roles roles = rolesOf(value);
    bool ok = isa<RankedTensorType>(value.getType()) && roles.size() >= 2 &&
              !hasSeq(roles[0]) && roles[1] == DimRole{Axis::Seq} &&
              llvm::all_of(llvm::drop_begin(roles, 2),
                           [](const DimRole &r) { return r.empty(); });
    if (!ok)
      return op.emitOpError()
             << "result #" << i
             << " must be laid out [batch, sequence, ...] like the inputs, "
                "found roles "
             << rolesString(roles) << " (b: batch, s: sequence)";
  }
  return success();
}

LogicalResult SequenceAnalysisBuilder::visitLinalg(linalg::LinalgOp op) {
  if (!op.hasPureTensorSemantics())
    return visitOther(op);
  unsigned numLoops = op.getNumLoops();
  SmallVector<std::optional<DimRole>> loopRoles(numLoops);
  // The first operand that indexes each loop without carrying its rows.
  SmallVector<std::optional<unsigned>> plainUse(numLoops);
  for (OpOperand &operand : op->getOpOperands()) {
    unsigned number = operand.getOperandNumber();
    if (!isa<RankedTensorType>(operand.get().getType())) {
      if (tagged(operand.get()))
        return op.emitOpError() << "takes a size of the sequence as scalar "
                                   "operand #"
                                << number;
      continue;
    }
    AffineMap map = op.getMatchingIndexingMap(&operand);
    Roles roles = rolesOf(operand.get());
    for (auto [r, expr] : llvm::enumerate(map.getResults())) {
      auto dimExpr = dyn_cast<AffineDimExpr>(expr);
      if (roles[r].empty()) {
        if (dimExpr && !plainUse[dimExpr.getPosition()])
          plainUse[dimExpr.getPosition()] = number;
        continue;
      }
      if (!dimExpr) {
        std::string exprText;
        llvm::raw_string_ostream(exprText) << expr;
        return op.emitOpError()
               << "mixes positions: operand #" << number << " indexes its "
               << roleString(roles[r]) << " dimension " << r << " with `"
               << exprText << "`, so output row t reads another input row";
      }
      std::optional<DimRole> &loop = loopRoles[dimExpr.getPosition()];
      std::optional<DimRole> merged = loop ? merge(*loop, roles[r]) : roles[r];
      if (!merged)
        return op.emitOpError()
               << "mixes positions: operand #" << number << " dimension " << r
               << " (" << roleString(roles[r]) << ") meets a "
               << roleString(*loop) << " dimension on loop d"
               << dimExpr.getPosition() << "; " << kWhyNoCache;
      loop = merged;
    }
  }
  std::optional<unsigned> seqLoop;
  SmallVector<utils::IteratorType> iterators = op.getIteratorTypesArray();
  for (unsigned l = 0; l < numLoops; ++l) {
    if (!loopRoles[l] || !hasSeq(*loopRoles[l]))
      continue;
    if (seqLoop)
      return op.emitOpError()
             << "mixes positions: the sequence runs along loops d" << *seqLoop
             << " and d" << l
             << ", so each output element combines rows of two positions; "
             << kWhyNoCache;
    seqLoop = l;
    if (plainUse[l])
      return op.emitOpError()
             << "operand #" << *plainUse[l]
             << " does not carry the sequence but is indexed by loop d" << l
             << ", which does: a table read by row number shifts when decode "
                "rows stand at later positions; index it by a "
             << kPositionsAttrName << " value";
    if (iterators[l] == utils::IteratorType::reduction)
      return op.emitOpError()
             << "mixes positions: loop d" << l
             << " runs along the sequence and is a reduction (a sum, "
                "contraction or scan across positions), and decode sees only "
                "the new rows; "
             << kWhyNoCache;
  }
  if (seqLoop) {
    WalkResult walk = op->walk([&](linalg::IndexOp index) {
      if (index.getDim() != *seqLoop)
        return WalkResult::advance();
      index.emitOpError()
          << "reads the row number of the sequence loop d" << *seqLoop
          << ", but decode rows stand at other positions: take positions "
             "from the argument marked "
          << kPositionsAttrName;
      return WalkResult::interrupt();
    });
    if (walk.wasInterrupted())
      return failure();
  }
  if (failed(checkCaptures(op)))
    return failure();
  for (OpOperand &init : op.getDpsInitsMutable()) {
    AffineMap map = op.getMatchingIndexingMap(&init);
    Roles roles;
    for (AffineExpr expr : map.getResults()) {
      auto dimExpr = dyn_cast<AffineDimExpr>(expr);
      roles.push_back(dimExpr && loopRoles[dimExpr.getPosition()]
                          ? *loopRoles[dimExpr.getPosition()]
                          : DimRole());
    }
    set(op.getTiedOpResult(&init), roles);
  }
  return success();
}

LogicalResult SequenceAnalysisBuilder::visitElementwise(Operation *op) {
  std::optional<Roles> roles;
  for (OpOperand &operand : op->getOpOperands()) {
    if (!isa<RankedTensorType>(operand.get().getType())) {
      if (tagged(operand.get()))
        return op->emitOpError()
               << "uses a size of the sequence as a value (operand #"
               << operand.getOperandNumber() << ")";
      continue;
    }
    Roles these = rolesOf(operand.get());
    if (!roles) {
      roles = these;
      continue;
    }
    for (auto [i, role] : llvm::enumerate(these)) {
      std::optional<DimRole> merged = merge((*roles)[i], role);
      if (!merged)
        return op->emitOpError()
               << "combines operand #" << operand.getOperandNumber()
               << " with roles " << rolesString(these)
               << " elementwise with roles " << rolesString(*roles)
               << ": a value that does not carry the sequence cannot match "
                  "one that does";
      (*roles)[i] = *merged;
    }
  }
  if (roles)
    for (Value result : op->getResults())
      set(result, *roles);
  return success();
}

LogicalResult SequenceAnalysisBuilder::visitExpand(tensor::ExpandShapeOp op) {
  Roles source = rolesOf(op.getSrc());
  Roles roles;
  SmallVector<OpFoldResult> shape = op.getMixedOutputShape();
  for (auto [i, group] : llvm::enumerate(op.getReassociationIndices())) {
    DimRole product;
    for (int64_t d : group) {
      auto value = dyn_cast<Value>(shape[d]);
      roles.push_back(value ? rolesOf(value)[0] : DimRole());
      llvm::append_range(product, roles.back());
    }
    if (seqPart(product) != seqPart(source[i]))
      return op.emitOpError()
             << "splits source dimension " << i << " ("
             << roleString(source[i])
             << ") into sizes that do not show which one carries the "
                "sequence: take the output sizes from tensor.dim of the "
                "input rows";
  }
  set(op.getResult(), roles);
  return success();
}

LogicalResult SequenceAnalysisBuilder::checkFull(
    Operation *op, ArrayRef<DimRole> roles, ArrayRef<OpFoldResult> offsets,
    ArrayRef<OpFoldResult> sizes, ArrayRef<OpFoldResult> strides,
    ShapedType type) {
  for (auto [i, role] : llvm::enumerate(roles)) {
    if (!hasSeq(role))
      continue;
    auto sizeValue = dyn_cast<Value>(sizes[i]);
    bool full = isConstantIntValue(offsets[i], 0) &&
                isConstantIntValue(strides[i], 1) && sizeValue &&
                seqPart(rolesOf(sizeValue)[0]) == seqPart(role);
    if (!full)
      return op->emitOpError()
             << "mixes positions: it slices the sequence dimension " << i
             << " of " << type
             << ", so row t of the result is not row t of the input; "
             << kWhyNoCache;
  }
  return success();
}

LogicalResult
SequenceAnalysisBuilder::visitExtractSlice(tensor::ExtractSliceOp op) {
  Roles source = rolesOf(op.getSource());
  if (failed(checkFull(op, source, op.getMixedOffsets(), op.getMixedSizes(),
                       op.getMixedStrides(), op.getSourceType())))
    return failure();
  llvm::SmallBitVector dropped = op.getDroppedDims();
  Roles roles;
  for (auto [i, role] : llvm::enumerate(source))
    if (!dropped.test(i))
      roles.push_back(role);
  set(op.getResult(), roles);
  return success();
}

LogicalResult
SequenceAnalysisBuilder::visitInsertSlice(tensor::InsertSliceOp op) {
  Roles dest = rolesOf(op.getDest());
  if (failed(checkFull(op, dest, op.getMixedOffsets(), op.getMixedSizes(),
                       op.getMixedStrides(), op.getDestType())))
    return failure();
  Roles source = rolesOf(op.getSource());
  llvm::SmallBitVector dropped = op.getDroppedDims();
  unsigned next = 0;
  for (auto [i, role] : llvm::enumerate(dest)) {
    if (dropped.test(i))
      continue;
    if (seqPart(source[next++]) != seqPart(role))
      return op.emitOpError()
             << "inserts rows that carry the sequence differently from its "
                "destination (source roles "
             << rolesString(source) << ", destination " << rolesString(dest)
             << ")";
  }
  set(op.getResult(), dest);
  return success();
}

LogicalResult SequenceAnalysisBuilder::visitConcat(tensor::ConcatOp op) {
  uint64_t axis = op.getDim();
  Roles roles = rolesOf(op.getInputs().front());
  for (Value input : op.getInputs()) {
    Roles these = rolesOf(input);
    if (hasSeq(these[axis]))
      return op.emitOpError()
             << "mixes positions: it concatenates along the sequence "
                "dimension "
             << axis << ", so the rows of one input move to other positions; "
             << kWhyNoCache;
    for (auto [i, role] : llvm::enumerate(these)) {
      std::optional<DimRole> merged = merge(roles[i], role);
      if (!merged)
        return op.emitOpError()
               << "concatenates a value that carries the sequence with one "
                  "that does not (roles "
               << rolesString(roles) << " and " << rolesString(these) << ")";
      roles[i] = *merged;
    }
  }
  set(op.getResult(), roles);
  return success();
}

LogicalResult SequenceAnalysisBuilder::checkCaptures(Operation *op) {
  llvm::SetVector<Value> captured;
  getUsedValuesDefinedAbove(op->getRegions(), captured);
  for (Value value : captured)
    if (tagged(value))
      return op->emitOpError()
             << "reads a value that carries the sequence from inside its "
                "region, by an index the analysis cannot follow; pass it as "
                "an operand with an indexing map";
  return success();
}

LogicalResult SequenceAnalysisBuilder::visitOther(Operation *op) {
  if (isa<KVCDialect>(op->getDialect()))
    return op->emitOpError(
        "already works on caches: kvc-incrementalize takes full-sequence "
        "causal kvc.attention only");
  if (isa<CallOpInterface>(op))
    return op->emitOpError("calls a function the analysis cannot see into: "
                           "inline it first (--inline)");
  for (OpOperand &operand : op->getOpOperands())
    if (tagged(operand.get()))
      return op->emitOpError()
             << "is not known to be row-local, and operand #"
             << operand.getOperandNumber()
             << " carries the sequence; kvc-incrementalize understands "
                "linalg ops, elementwise arith/math, tensor reshapes, slices "
                "and concatenations, and causal kvc.attention";
  return checkCaptures(op);
}

//===----------------------------------------------------------------------===//
// SequenceAnalysis
//===----------------------------------------------------------------------===//

FailureOr<SequenceAnalysis> SequenceAnalysis::run(func::FuncOp func) {
  SequenceAnalysis result;
  if (failed(SequenceAnalysisBuilder(result).run(func)))
    return failure();
  return result;
}

ArrayRef<DimRole> SequenceAnalysis::getRoles(Value value) const {
  auto it = roles.find(value);
  if (it == roles.end())
    return {};
  return it->second;
}

bool SequenceAnalysis::carriesSequence(Value value) const {
  return llvm::any_of(getRoles(value), hasSeq);
}

OpKind SequenceAnalysis::getKind(Operation *op) const {
  return kinds.lookup(op);
}
