//===- Incrementalize.cpp - prefill and decode over key/value caches ------===//
//
// Clones a full-sequence function twice. The clones run the same body: prefill
// on the padded prompts, decode on the new rows only. They differ at the
// attentions (prefill appends keys and values to new caches and attends over
// the whole prompt; decode appends the new rows and attends with their
// queries over the cache), in the positions they give the rows, and in what
// they return.
//
//===----------------------------------------------------------------------===//
#include "kvc/Dialect/KVC/Transforms/Passes.h"
#include "kvc/Dialect/KVC/Transforms/SequenceAnalysis.h"

#include "kvc/Dialect/KVC/IR/KVCOps.h"
#include "kvc/Dialect/KVC/IR/KVCTypes.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"

namespace mlir::kvc {
#define GEN_PASS_DEF_KVCINCREMENTALIZEPASS
#include "kvc/Dialect/KVC/Transforms/Passes.h.inc"
} // namespace mlir::kvc

using namespace mlir;
using namespace mlir::kvc;

namespace {

CacheType getCacheType(AttentionOp attention) {
  auto key = attention.getKey().getType();
  return CacheType::get(attention.getContext(), key.getDimSize(0),
                        key.getDimSize(1), ShapedType::kDynamic,
                        key.getDimSize(3), key.getElementType());
}

/// Casts per-sequence positions to the lengths type of `cache`: the batch is
/// static in one and dynamic in the other when shapes were partly inferred.
Value castToLengths(ImplicitLocOpBuilder &b, Value positions, CacheType cache) {
  RankedTensorType type = cache.getLengthsType();
  if (positions.getType() == type)
    return positions;
  return tensor::CastOp::create(b, type, positions);
}

SmallVector<Value> getDynamicSizes(ImplicitLocOpBuilder &b, Value tensor) {
  SmallVector<Value> sizes;
  auto type = cast<RankedTensorType>(tensor.getType());
  for (int64_t i = 0; i < type.getRank(); ++i)
    if (type.isDynamicDim(i))
      sizes.push_back(tensor::DimOp::create(b, tensor, i));
  return sizes;
}

SmallVector<utils::IteratorType> parallel(unsigned n) {
  return SmallVector<utils::IteratorType>(n, utils::IteratorType::parallel);
}

/// The `[B, S]` positions of the rows of `like`: `base[b] + t`.
Value buildPositionIds(ImplicitLocOpBuilder &b, Value base, Value like,
                       RankedTensorType type) {
  Value init = tensor::EmptyOp::create(b, type, getDynamicSizes(b, like));
  MLIRContext *ctx = b.getContext();
  AffineMap identity = AffineMap::getMultiDimIdentityMap(2, ctx);
  AffineMap perSequence =
      AffineMap::get(2, 0, getAffineDimExpr(0, ctx), ctx);
  auto generic = linalg::GenericOp::create(
      b, type, ValueRange{base}, ValueRange{init},
      ArrayRef<AffineMap>{perSequence, identity}, parallel(2),
      [&](OpBuilder &nested, Location loc, ValueRange args) {
        ImplicitLocOpBuilder nb(loc, nested);
        Value row = linalg::IndexOp::create(nb, 1);
        Value start = arith::IndexCastOp::create(nb, nb.getIndexType(), args[0]);
        Value position = arith::AddIOp::create(nb, start, row);
        Value cast =
            arith::IndexCastOp::create(nb, type.getElementType(), position);
        linalg::YieldOp::create(nb, cast);
      });
  return generic.getResult(0);
}

/// `[B, 1, ...]`: the row `lengths[b] - 1` of each sequence of `rows`.
Value gatherLastRows(ImplicitLocOpBuilder &b, Value rows, Value lengths) {
  auto type = cast<RankedTensorType>(rows.getType());
  SmallVector<int64_t> shape(type.getShape());
  shape[1] = 1;
  auto resultType = RankedTensorType::get(shape, type.getElementType());
  SmallVector<Value> sizes;
  for (int64_t i = 0; i < type.getRank(); ++i)
    if (resultType.isDynamicDim(i))
      sizes.push_back(tensor::DimOp::create(b, rows, i));
  Value init = tensor::EmptyOp::create(b, resultType, sizes);
  MLIRContext *ctx = b.getContext();
  unsigned rank = type.getRank();
  AffineMap identity = AffineMap::getMultiDimIdentityMap(rank, ctx);
  AffineMap perSequence =
      AffineMap::get(rank, 0, getAffineDimExpr(0, ctx), ctx);
  auto generic = linalg::GenericOp::create(
      b, resultType, ValueRange{lengths}, ValueRange{init},
      ArrayRef<AffineMap>{perSequence, identity}, parallel(rank),
      [&](OpBuilder &nested, Location loc, ValueRange args) {
        ImplicitLocOpBuilder nb(loc, nested);
        Value length = arith::IndexCastOp::create(nb, nb.getIndexType(), args[0]);
        Value one = arith::ConstantIndexOp::create(nb, 1);
        Value nonEmpty = arith::CmpIOp::create(nb, arith::CmpIPredicate::sge,
                                               length, one);
        cf::AssertOp::create(
            nb, nonEmpty,
            nb.getStringAttr("prefill: every prompt needs at least one row"));
        SmallVector<Value> indices;
        for (unsigned d = 0; d < rank; ++d)
          indices.push_back(d == 1 ? Value(arith::SubIOp::create(nb, length, one))
                                   : Value(linalg::IndexOp::create(nb, d)));
        Value element = tensor::ExtractOp::create(nb, rows, indices);
        linalg::YieldOp::create(nb, element);
      });
  return generic.getResult(0);
}

/// Builds one generated function: its signature is `@f`'s without the
/// positions argument, followed by `extraArgs`.
class Generator {
public:
  Generator(func::FuncOp source, const SequenceAnalysis &analysis,
            StringRef suffix)
      : source(source), analysis(analysis), suffix(suffix) {}

  /// Creates the function with `extraArgs` and `resultTypes`; the caller
  /// fills the body through `clone`.
  func::FuncOp create(OpBuilder &builder, TypeRange extraArgs,
                      TypeRange resultTypes) {
    SmallVector<Type> inputs;
    for (BlockArgument arg : source.getArguments())
      if (arg != analysis.getPositions())
        inputs.push_back(arg.getType());
    numSourceArgs = inputs.size();
    llvm::append_range(inputs, extraArgs);
    auto func = func::FuncOp::create(
        builder, source.getLoc(), (source.getName() + suffix).str(),
        builder.getFunctionType(inputs, resultTypes));
    func->setDiscardableAttrs(source->getDiscardableAttrDictionary());
    func.setVisibility(source.getVisibility());
    Block *entry = func.addEntryBlock();
    unsigned next = 0;
    for (BlockArgument arg : source.getArguments()) {
      if (arg == analysis.getPositions())
        continue;
      // Argument attributes (a weight's name, say) carry over; the markers
      // of the full-sequence form do not.
      if (DictionaryAttr attrs = source.getArgAttrDict(arg.getArgNumber()))
        for (NamedAttribute attr : attrs)
          if (attr.getName() != kRowsAttrName)
            func.setArgAttr(next, attr.getName(), attr.getValue());
      mapping.map(arg, entry->getArgument(next++));
    }
    return func;
  }

  /// An argument after `@f`'s.
  Value extraArg(func::FuncOp func, unsigned i) {
    return func.getArgument(numSourceArgs + i);
  }

  /// The first argument laid out `[batch, sequence, ...]`, in the clone.
  Value rowsArg() { return mapping.lookup(sourceRowsArg()); }

  /// Gives the rows positions `base[b] + t` where `@f` reads its positions.
  void mapPositions(ImplicitLocOpBuilder &b, Value base) {
    if (BlockArgument positions = analysis.getPositions())
      mapping.map(positions,
                  buildPositionIds(b, base, rowsArg(),
                                   cast<RankedTensorType>(positions.getType())));
  }

  /// Clones `@f`'s body; `onAttention` replaces each attention. Returns the
  /// values `@f` returns.
  SmallVector<Value>
  clone(ImplicitLocOpBuilder &b,
        function_ref<Value(AttentionOp, unsigned)> onAttention) {
    unsigned layer = 0;
    for (Operation &op : source.getBody().front()) {
      if (auto ret = dyn_cast<func::ReturnOp>(op))
        return llvm::map_to_vector(ret.getOperands(), [&](Value v) {
          return mapping.lookup(v);
        });
      if (auto attention = dyn_cast<AttentionOp>(op)) {
        mapping.map(attention.getResult(), onAttention(attention, layer++));
        continue;
      }
      b.clone(op, mapping);
    }
    llvm_unreachable("a function body ends in func.return");
  }

  /// `tensor<B x i32>`, B the batch of the rows.
  RankedTensorType perSequenceType() {
    auto rows = cast<RankedTensorType>(sourceRowsArg().getType());
    return RankedTensorType::get({rows.getDimSize(0)},
                                 IntegerType::get(rows.getContext(), 32));
  }

  Value lookup(Value v) { return mapping.lookup(v); }
  Operation *cloneOp(OpBuilder &b, Operation *op) {
    return b.clone(*op, mapping);
  }

private:
  BlockArgument sourceRowsArg() {
    for (BlockArgument arg : source.getArguments())
      if (arg != analysis.getPositions() && analysis.carriesSequence(arg))
        return arg;
    llvm_unreachable("the analysis found an argument marked kvc.rows");
  }

  func::FuncOp source;
  const SequenceAnalysis &analysis;
  StringRef suffix;
  IRMapping mapping;
  unsigned numSourceArgs = 0;
};

/// Zeros of `type` (`[B] x i32`), B the batch of `rows`.
Value zerosPerSequence(ImplicitLocOpBuilder &b, Value rows,
                       RankedTensorType type) {
  SmallVector<Value> sizes;
  if (type.isDynamicDim(0))
    sizes.push_back(tensor::DimOp::create(b, rows, 0));
  Value init = tensor::EmptyOp::create(b, type, sizes);
  Value zero = arith::ConstantOp::create(b, b.getI32IntegerAttr(0));
  return linalg::FillOp::create(b, zero, init).getResult(0);
}

/// Appends `@f`'s results, each either whole or at each sequence's last row,
/// and one cache per attention.
func::FuncOp buildPrefill(OpBuilder &builder, func::FuncOp source,
                          const SequenceAnalysis &analysis, bool allPositions) {
  Generator gen(source, analysis, "_prefill");
  SmallVector<Type> results;
  for (Type type : source.getResultTypes()) {
    auto tensor = cast<RankedTensorType>(type);
    SmallVector<int64_t> shape(tensor.getShape());
    if (!allPositions)
      shape[1] = 1;
    results.push_back(RankedTensorType::get(shape, tensor.getElementType()));
  }
  SmallVector<CacheType> caches =
      llvm::map_to_vector(analysis.getAttentions(), getCacheType);
  llvm::append_range(results, caches);
  func::FuncOp func = gen.create(
      builder, {gen.perSequenceType(), builder.getIndexType()}, results);
  Value lengths = gen.extraArg(func, 0), capacity = gen.extraArg(func, 1);

  ImplicitLocOpBuilder b(source.getLoc(), builder);
  b.setInsertionPointToStart(&func.getBody().front());
  Value zeros = zerosPerSequence(b, gen.rowsArg(), gen.perSequenceType());
  gen.mapPositions(b, zeros);
  SmallVector<Value> cacheValues;
  SmallVector<Value> outputs =
      gen.clone(b, [&](AttentionOp attention, unsigned layer) -> Value {
        b.setLoc(attention.getLoc());
        Value key = gen.lookup(attention.getKey());
        SmallVector<Value> sizes;
        if (caches[layer].getBatch() == ShapedType::kDynamic)
          sizes.push_back(tensor::DimOp::create(b, key, 0));
        sizes.push_back(capacity);
        Value cache = CacheAllocOp::create(b, caches[layer], sizes);
        CacheAppendOp::create(b, cache, castToLengths(b, zeros, caches[layer]),
                              key, gen.lookup(attention.getValue()),
                              /*rotary_theta=*/FloatAttr());
        cacheValues.push_back(cache);
        return gen.cloneOp(b, attention)->getResult(0);
      });
  b.setLoc(source.getLoc());
  for (auto [cache, type] : llvm::zip(cacheValues, caches))
    CacheTruncateOp::create(b, cache, castToLengths(b, lengths, type));
  if (!allPositions)
    for (Value &output : outputs)
      output = gatherLastRows(b, output, lengths);
  llvm::append_range(outputs, cacheValues);
  func::ReturnOp::create(b, outputs);
  return func;
}

/// Runs `@f`'s body on the new rows: each attention becomes an append of the
/// new keys and values and an attention of the new queries over the cache.
func::FuncOp buildDecode(OpBuilder &builder, func::FuncOp source,
                         const SequenceAnalysis &analysis) {
  Generator gen(source, analysis, "_decode");
  SmallVector<Type> extraArgs = {gen.perSequenceType()};
  SmallVector<CacheType> caches =
      llvm::map_to_vector(analysis.getAttentions(), getCacheType);
  llvm::append_range(extraArgs, caches);
  func::FuncOp func = gen.create(builder, extraArgs, source.getResultTypes());
  Value positions = gen.extraArg(func, 0);

  ImplicitLocOpBuilder b(source.getLoc(), builder);
  b.setInsertionPointToStart(&func.getBody().front());
  gen.mapPositions(b, positions);
  SmallVector<Value> outputs =
      gen.clone(b, [&](AttentionOp attention, unsigned layer) -> Value {
        b.setLoc(attention.getLoc());
        Value cache = gen.extraArg(func, 1 + layer);
        Value cachePositions = castToLengths(b, positions, caches[layer]);
        CacheAppendOp::create(b, cache, cachePositions,
                              gen.lookup(attention.getKey()),
                              gen.lookup(attention.getValue()),
                              /*rotary_theta=*/FloatAttr());
        Value query = gen.lookup(attention.getQuery());
        return DecodeAttentionOp::create(b, query.getType(), query, cache,
                                         cachePositions,
                                         attention.getScaleAttr());
      });
  b.setLoc(source.getLoc());
  func::ReturnOp::create(b, outputs);
  return func;
}

struct KVCIncrementalizePass
    : kvc::impl::KVCIncrementalizePassBase<KVCIncrementalizePass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    SmallVector<func::FuncOp> models;
    for (auto func : module.getOps<func::FuncOp>())
      if (isFullSequenceModel(func))
        models.push_back(func);
    for (func::FuncOp model : models)
      if (failed(incrementalize(module, model)))
        return signalPassFailure();
  }

  /// Adds `@f_prefill` and `@f_decode` next to `model`. A body-less
  /// declaration of either (for callers in the same module) is replaced when
  /// its type is the generated one.
  LogicalResult incrementalize(ModuleOp module, func::FuncOp model) {
    SmallVector<func::FuncOp, 2> declarations;
    for (StringRef suffix : {"_prefill", "_decode"}) {
      std::string name = (model.getName() + suffix).str();
      Operation *existing = SymbolTable::lookupSymbolIn(module, name);
      auto declaration = dyn_cast_or_null<func::FuncOp>(existing);
      if (existing && !(declaration && declaration.isExternal()))
        return model.emitOpError()
               << "cannot be made incremental: @" << name
               << " already exists and is not a declaration";
      declarations.push_back(declaration);
    }
    FailureOr<SequenceAnalysis> analysis = SequenceAnalysis::run(model);
    if (failed(analysis))
      return failure();
    OpBuilder builder(model);
    builder.setInsertionPointAfter(model);
    func::FuncOp prefill = buildPrefill(builder, model, *analysis, allPositions);
    builder.setInsertionPointAfter(prefill);
    func::FuncOp decode = buildDecode(builder, model, *analysis);
    for (auto [declaration, built] :
         llvm::zip(declarations, std::array{prefill, decode})) {
      if (!declaration)
        continue;
      if (declaration.getFunctionType() != built.getFunctionType()) {
        InFlightDiagnostic diag = declaration.emitOpError()
                                  << "is declared as "
                                  << declaration.getFunctionType()
                                  << " but kvc-incrementalize generates "
                                  << built.getFunctionType();
        prefill.erase();
        decode.erase();
        return diag;
      }
      declaration.erase();
    }
    return success();
  }
};

} // namespace
