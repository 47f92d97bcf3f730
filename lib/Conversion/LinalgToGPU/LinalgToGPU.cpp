//===- LinalgToGPU.cpp - a model's linalg ops on the GPU -------------------===//
//
// After bufferization, each linalg op of a model's host function becomes
// either a cuBLASLt matmul (a runtime call) or a launch of a kernel generated
// from the op: one thread per point of an all-parallel op, or one block per
// output point of an op with one reduction loop (threads stride the loop,
// or hold a short row of known size in registers, then combine through warp
// shuffles and shared memory). Kernels that come
// out identical (every layer's RMSNorm) are generated once.
//
//===----------------------------------------------------------------------===//
#include "kvc/Conversion/KVCToGPU/KVCToGPU.h"
#include "kvc/Conversion/KVCToGPU/Kernels.h"
#include "kvc/Conversion/Passes.h"
#include "kvc/Conversion/Utils.h"

#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Linalg/Transforms/Transforms.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/SCF/Utils/Utils.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/RegionUtils.h"
#include "llvm/ADT/StringMap.h"

namespace mlir::kvc {
#define GEN_PASS_DEF_CONVERTLINALGTOKVCGPUPASS
#include "kvc/Conversion/Passes.h.inc"
} // namespace mlir::kvc

using namespace mlir;
using namespace mlir::kvc;

namespace {

constexpr int64_t kThreads = 256;
/// Threads of a row kernel: a row is a few thousand points, and at small
/// batch there are few rows, so each gets a big block (fewer serial loads
/// per thread).
constexpr int64_t kRowThreads = 1024;
constexpr int64_t kWarpSize = 32;
/// How far a row kernel's strided loops are unrolled.
constexpr int64_t kUnroll = 4;
/// Points per thread up to which a row kernel holds its row in registers.
constexpr int64_t kHeldPoints = 8;
constexpr StringLiteral kModuleName = "kvc_model_kernels";

Value index(ImplicitLocOpBuilder &b, int64_t v) {
  return arith::ConstantIndexOp::create(b, v);
}

Value i64(ImplicitLocOpBuilder &b, Value v) {
  return arith::IndexCastOp::create(b, b.getI64Type(), v);
}

Value materialize(ImplicitLocOpBuilder &b, OpFoldResult ofr) {
  if (auto v = dyn_cast<Value>(ofr))
    return v;
  return index(b, cast<IntegerAttr>(cast<Attribute>(ofr)).getInt());
}

/// The loop sizes of `op`, as index values built at `b`.
SmallVector<Value> loopSizes(ImplicitLocOpBuilder &b, linalg::LinalgOp op) {
  SmallVector<Value> sizes;
  for (Range range : op.createLoopRanges(b, b.getLoc()))
    sizes.push_back(materialize(b, range.size));
  return sizes;
}

Value product(ImplicitLocOpBuilder &b, ArrayRef<Value> values) {
  Value p = index(b, 1);
  for (Value v : values)
    p = arith::MulIOp::create(b, p, v);
  return p;
}

/// Splits `linear` into coordinates over `sizes`, the last fastest.
SmallVector<Value> delinearize(ImplicitLocOpBuilder &b, Value linear,
                               ArrayRef<Value> sizes) {
  SmallVector<Value> coords(sizes.size());
  for (size_t i = sizes.size(); i-- > 0;) {
    if (i == 0) {
      coords[i] = linear;
      break;
    }
    coords[i] = arith::RemUIOp::create(b, linear, sizes[i]);
    linear = arith::DivUIOp::create(b, linear, sizes[i]);
  }
  return coords;
}

/// The indices `map` gives at loop coordinates `ivs`.
SmallVector<Value> applyMap(ImplicitLocOpBuilder &b, AffineMap map,
                            ArrayRef<Value> ivs) {
  SmallVector<Value> indices;
  for (AffineExpr expr : map.getResults()) {
    if (auto dim = dyn_cast<AffineDimExpr>(expr)) {
      indices.push_back(ivs[dim.getPosition()]);
      continue;
    }
    indices.push_back(affine::AffineApplyOp::create(
        b, AffineMap::get(map.getNumDims(), 0, expr), ivs));
  }
  return indices;
}

/// Loads the operand of `op` at coordinates `ivs` (scalars are themselves).
Value loadOperand(ImplicitLocOpBuilder &b, linalg::GenericOp op,
                  OpOperand &operand, ArrayRef<Value> ivs) {
  Value v = operand.get();
  if (!isa<MemRefType>(v.getType()))
    return v;
  return memref::LoadOp::create(
      b, v, applyMap(b, op.getMatchingIndexingMap(&operand), ivs));
}

/// Clones the body of `op` at coordinates `ivs`, block arguments mapped
/// already; returns the yielded values.
SmallVector<Value> cloneBody(ImplicitLocOpBuilder &b, linalg::GenericOp op,
                             IRMapping &mapping, ArrayRef<Value> ivs) {
  for (Operation &inner : op.getBody()->without_terminator()) {
    if (auto idx = dyn_cast<linalg::IndexOp>(inner)) {
      mapping.map(idx.getResult(), ivs[idx.getDim()]);
      continue;
    }
    b.clone(inner, mapping);
  }
  SmallVector<Value> yielded;
  for (Value v : op.getBody()->getTerminator()->getOperands())
    yielded.push_back(mapping.lookupOrDefault(v));
  return yielded;
}

/// Computes `op` at loop coordinates `ivs`: loads its operands (`row`, if
/// given, stands for every read of `rowBuffer`), runs its body, stores its
/// results.
void computeAt(ImplicitLocOpBuilder &b, linalg::GenericOp op,
               ArrayRef<Value> ivs, Value rowBuffer = nullptr,
               Value row = nullptr) {
  IRMapping mapping;
  for (OpOperand &operand : op->getOpOperands()) {
    BlockArgument arg = op.getMatchingBlockArgument(&operand);
    if (arg.use_empty())
      continue;
    mapping.map(arg, rowBuffer && operand.get() == rowBuffer
                         ? row
                         : loadOperand(b, op, operand, ivs));
  }
  SmallVector<Value> yielded = cloneBody(b, op, mapping, ivs);
  for (auto [out, value] : llvm::zip(op.getDpsInitsMutable(), yielded))
    memref::StoreOp::create(b, value, out.get(),
                            applyMap(b, op.getMatchingIndexingMap(&out), ivs));
}

/// A buffer's values at a row kernel's points, stored there through `map`.
struct Held {
  AffineMap map;
  SmallVector<Value> values;
};

/// Loads what `op` reads at each of `points` (every load first: they are in
/// flight together), except what `known` holds at the same positions; the
/// reads of buffers in `skip` are left unmapped.
SmallVector<IRMapping> loadAt(ImplicitLocOpBuilder &b, linalg::GenericOp op,
                              ArrayRef<SmallVector<Value>> points,
                              const DenseMap<Value, Held> &known,
                              ArrayRef<Value> skip = {}) {
  SmallVector<IRMapping> mappings(points.size());
  for (OpOperand *operand : op.getDpsInputOperands()) {
    BlockArgument arg = op.getMatchingBlockArgument(operand);
    if (arg.use_empty() || llvm::is_contained(skip, operand->get()))
      continue;
    auto it = known.find(operand->get());
    bool same = it != known.end() &&
                it->second.map == op.getMatchingIndexingMap(operand);
    for (auto [k, ivs] : llvm::enumerate(points))
      mappings[k].map(arg, same ? it->second.values[k]
                                : loadOperand(b, op, *operand, ivs));
  }
  return mappings;
}

/// Computes all-parallel `op` (one result) at each of `points` from
/// `mappings` (loadAt), stores the results, and returns them.
SmallVector<Value> computeHeld(ImplicitLocOpBuilder &b, linalg::GenericOp op,
                               ArrayRef<SmallVector<Value>> points,
                               MutableArrayRef<IRMapping> mappings) {
  SmallVector<Value> values;
  for (auto [k, ivs] : llvm::enumerate(points))
    values.push_back(cloneBody(b, op, mappings[k], ivs).front());
  OpOperand &out = op.getDpsInitsMutable()[0];
  for (auto [k, ivs] : llvm::enumerate(points))
    memref::StoreOp::create(
        b, values[k], out.get(),
        applyMap(b, op.getMatchingIndexingMap(&out), ivs));
  return values;
}

/// The combiner of a one-output reduction: the yielded op that takes the
/// output's block argument, with a neutral element. Null if there is none.
Operation *reductionCombiner(linalg::GenericOp op) {
  if (op.getNumDpsInits() != 1)
    return nullptr;
  BlockArgument acc = op.getBody()->getArguments().back();
  Operation *yield = op.getBody()->getTerminator();
  Operation *combiner = yield->getOperand(0).getDefiningOp();
  if (!combiner || combiner->getNumOperands() != 2 ||
      combiner->getNumResults() != 1 || !acc.hasOneUse() ||
      *acc.getUsers().begin() != combiner ||
      !arith::getNeutralElement(combiner) ||
      !combiner->getResult(0).getType().isF32())
    return nullptr;
  return combiner;
}

Value combine(ImplicitLocOpBuilder &b, Operation *combiner, Value lhs,
              Value rhs) {
  OperationState state(b.getLoc(), combiner->getName());
  state.addOperands({lhs, rhs});
  state.addTypes(lhs.getType());
  state.addAttributes(combiner->getAttrs());
  return b.create(state)->getResult(0);
}

/// What makes two ops the same kernel: their maps, iterators and operand
/// types, the body with values numbered by position (kernel operands,
/// captured constants, block arguments, results in order), and the captured
/// constants' values. Every layer's RMSNorm has the same key.
std::string kernelKey(ArrayRef<linalg::GenericOp> ops, ArrayRef<Value> operands,
                      ArrayRef<Operation *> constants) {
  std::string key;
  llvm::raw_string_ostream os(key);
  llvm::DenseMap<Value, std::string> names;
  for (auto [i, v] : llvm::enumerate(operands)) {
    names[v] = "o" + std::to_string(i);
    os << v.getType() << ";";
  }
  for (auto [i, c] : llvm::enumerate(constants)) {
    names[c->getResult(0)] = "c" + std::to_string(i);
    os << c->getName() << c->getAttrDictionary()
       << c->getPropertiesAsAttribute() << ";";
  }
  unsigned results = 0;
  for (linalg::GenericOp op : ops) {
    os << "(";
    for (Value v : op->getOperands())
      os << names.lookup(v) << ",";
    os << ")";
    for (BlockArgument arg : op.getBody()->getArguments())
      names[arg] = "a" + std::to_string(arg.getArgNumber());
    os << op.getIndexingMapsAttr() << op.getIteratorTypesAttr()
       << op.getNumDpsInputs() << "{";
    for (Operation &inner : *op.getBody()) {
      os << inner.getName() << "(";
      for (Value v : inner.getOperands())
        os << names.lookup(v) << ",";
      os << ")" << inner.getAttrDictionary()
         << inner.getPropertiesAsAttribute();
      for (Value r : inner.getResults()) {
        names[r] = "r" + std::to_string(results++);
        os << r.getType();
      }
      os << ";";
    }
    os << "}";
  }
  return key;
}

/// Builds kernels from generic ops, one per distinct kernelKey.
class KernelLibrary {
public:
  explicit KernelLibrary(ModuleOp module) : module(module) {}

  /// Replaces `op` with a launch of a kernel computing it.
  /// `start`, if given, is the value the reduction output starts from (the
  /// fill it replaces); else the output buffer's value. `consumer`, if
  /// given, is an all-parallel op over the reduction's loops that reads its
  /// result at the row's point: the same block computes it after the
  /// reduction, its threads striding the reduction loop again (RMSNorm in
  /// one kernel).
  /// `producer`, if given, is an all-parallel op over the same loops whose
  /// result the reduction reads: the block computes it first, each thread
  /// the points it reduces next (a residual add before RMSNorm).
  LogicalResult outline(linalg::GenericOp op, Value start = nullptr,
                        linalg::GenericOp consumer = nullptr,
                        linalg::GenericOp producer = nullptr);

private:
  gpu::GPUModuleOp kernels();
  /// Builds the kernel computing `op` from `operands` (the constants it
  /// captures cloned in) as `name`.
  void build(linalg::GenericOp op, linalg::GenericOp consumer,
             linalg::GenericOp producer, Operation *combiner, bool hasStart,
             ArrayRef<Value> operands, ArrayRef<unsigned> lateOperands,
             ArrayRef<Operation *> constants, StringRef name);
  void buildParallel(ImplicitLocOpBuilder &b, linalg::GenericOp op);
  void buildReduction(ImplicitLocOpBuilder &b, linalg::GenericOp op,
                      Operation *combiner, BlockArgument scratch, Value start,
                      linalg::GenericOp consumer, linalg::GenericOp producer,
                      ArrayRef<Value> late);

  ModuleOp module;
  gpu::GPUModuleOp module_;
  llvm::StringMap<StringAttr> byKey;
};

gpu::GPUModuleOp KernelLibrary::kernels() {
  if (module_)
    return module_;
  OpBuilder b(module.getBodyRegion());
  b.setInsertionPointToEnd(module.getBody());
  module_ = gpu::GPUModuleOp::create(b, module.getLoc(), kModuleName);
  module->setAttr(gpu::GPUDialect::getContainerModuleAttrName(),
                  b.getUnitAttr());
  return module_;
}

void KernelLibrary::buildParallel(ImplicitLocOpBuilder &b,
                                  linalg::GenericOp op) {
  SmallVector<Value> sizes = loopSizes(b, op);
  Value id = arith::AddIOp::create(
      b,
      arith::MulIOp::create(b, gpu::BlockIdOp::create(b, gpu::Dimension::x),
                            index(b, kThreads)),
      gpu::ThreadIdOp::create(b, gpu::Dimension::x));
  Value inside = arith::CmpIOp::create(b, arith::CmpIPredicate::ult, id,
                                       product(b, sizes));
  auto ifOp = scf::IfOp::create(b, inside, /*withElseRegion=*/false);
  b.setInsertionPointToStart(&ifOp.getThenRegion().front());
  computeAt(b, op, delinearize(b, id, sizes));
}

/// `late`: buffers the consumer reads that view what the kernel writes
/// (read only after the barrier).
void KernelLibrary::buildReduction(ImplicitLocOpBuilder &b,
                                   linalg::GenericOp op, Operation *combiner,
                                   BlockArgument scratch, Value start,
                                   linalg::GenericOp consumer,
                                   linalg::GenericOp producer,
                                   ArrayRef<Value> late) {
  SmallVector<Value> sizes = loopSizes(b, op);
  SmallVector<unsigned> parallel;
  op.getParallelDims(parallel);
  SmallVector<unsigned> reduction;
  op.getReductionDims(reduction);
  SmallVector<Value> parallelSizes;
  for (unsigned d : parallel)
    parallelSizes.push_back(sizes[d]);
  SmallVector<Value> point = delinearize(
      b, gpu::BlockIdOp::create(b, gpu::Dimension::x), parallelSizes);
  SmallVector<Value> ivs(sizes.size(), index(b, 0));
  for (auto [d, v] : llvm::zip(parallel, point))
    ivs[d] = v;
  Value tid = gpu::ThreadIdOp::create(b, gpu::Dimension::x);
  Value neutral = arith::ConstantOp::create(
      b, *arith::getNeutralElement(combiner));
  unsigned r = reduction.front();

  // `generic` at the points of the row this thread reduces.
  auto strided = [&](linalg::GenericOp generic, Value rowBuffer, Value row) {
    OpBuilder::InsertionGuard guard(b);
    auto loop = scf::ForOp::create(b, tid, sizes[r], index(b, kRowThreads));
    b.setInsertionPointToStart(loop.getBody());
    SmallVector<Value> where = ivs;
    where[r] = loop.getInductionVar();
    computeAt(b, generic, where, rowBuffer, row);
  };
  // A row of a known size that is a few points per thread stays in
  // registers: the producer's values feed the reduction and the consumer
  // without a round trip through memory, and every load of a phase is in
  // flight at once (the consumer's own inputs, a norm's weights, are loaded
  // first of all).
  std::optional<int64_t> rowSize = getConstantIntValue(sizes[r]);
  bool held = rowSize && *rowSize % kRowThreads == 0 &&
              *rowSize / kRowThreads <= kHeldPoints;
  SmallVector<SmallVector<Value>> points;
  DenseMap<Value, Held> known;
  SmallVector<IRMapping> consumerLoads;
  Value producerOut =
      producer ? producer.getDpsInitsMutable()[0].get() : Value();
  Value acc;
  if (held) {
    for (int64_t k = 0; k < *rowSize / kRowThreads; ++k) {
      points.push_back(ivs);
      points.back()[r] =
          arith::AddIOp::create(b, tid, index(b, k * kRowThreads));
    }
    // What this kernel writes the consumer reads after the barrier.
    if (consumer) {
      SmallVector<Value> written(late);
      written.append({producerOut, op.getDpsInitsMutable()[0].get()});
      consumerLoads = loadAt(b, consumer, points, known, written);
    }
    if (producer) {
      SmallVector<IRMapping> loads = loadAt(b, producer, points, known);
      OpOperand &out = producer.getDpsInitsMutable()[0];
      known[producerOut] = {producer.getMatchingIndexingMap(&out),
                            computeHeld(b, producer, points, loads)};
    }
    SmallVector<IRMapping> loads = loadAt(b, op, points, known);
    acc = neutral;
    for (auto [k, where] : llvm::enumerate(points)) {
      loads[k].map(op.getBody()->getArguments().back(), acc);
      acc = cloneBody(b, op, loads[k], where).front();
    }
  } else {
    // The producer first: each thread reads back only what it wrote itself.
    if (producer)
      strided(producer, nullptr, nullptr);

    // Each thread folds every kRowThreads-th point of the reduction loop.
    auto loop = scf::ForOp::create(b, tid, sizes[r], index(b, kRowThreads),
                                   ValueRange{neutral});
    {
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPointToStart(loop.getBody());
      SmallVector<Value> at = ivs;
      at[r] = loop.getInductionVar();
      IRMapping mapping;
      for (OpOperand *operand : op.getDpsInputOperands()) {
        BlockArgument arg = op.getMatchingBlockArgument(operand);
        if (!arg.use_empty())
          mapping.map(arg, loadOperand(b, op, *operand, at));
      }
      mapping.map(op.getBody()->getArguments().back(),
                  loop.getRegionIterArgs().front());
      scf::YieldOp::create(b, cloneBody(b, op, mapping, at));
    }
    acc = loop.getResult(0);
  }

  auto warpReduce = [&](Value v) {
    for (int32_t offset = kWarpSize / 2; offset > 0; offset /= 2) {
      Value other = gpu::ShuffleOp::create(b, v, offset, kWarpSize,
                                           gpu::ShuffleMode::XOR)
                        .getShuffleResult();
      v = combine(b, combiner, v, other);
    }
    return v;
  };
  acc = warpReduce(acc);
  Value lane = arith::RemUIOp::create(b, tid, index(b, kWarpSize));
  Value warp = arith::DivUIOp::create(b, tid, index(b, kWarpSize));
  Value zero = index(b, 0);
  Value firstLane =
      arith::CmpIOp::create(b, arith::CmpIPredicate::eq, lane, zero);
  auto store = scf::IfOp::create(b, firstLane, false);
  {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(&store.getThenRegion().front());
    memref::StoreOp::create(b, acc, scratch, ValueRange{warp});
  }
  gpu::BarrierOp::create(b);
  Value firstWarp =
      arith::CmpIOp::create(b, arith::CmpIPredicate::eq, warp, zero);
  auto last = scf::IfOp::create(b, firstWarp, false);
  b.setInsertionPointToStart(&last.getThenRegion().front());
  int64_t warps = kRowThreads / kWarpSize;
  Value slot = arith::MinUIOp::create(b, lane, index(b, warps - 1));
  Value partial = memref::LoadOp::create(b, scratch, ValueRange{slot});
  Value valid = arith::CmpIOp::create(b, arith::CmpIPredicate::ult, lane,
                                      index(b, warps));
  Value total =
      warpReduce(arith::SelectOp::create(b, valid, partial, neutral));
  auto write = scf::IfOp::create(b, firstLane, false);
  b.setInsertionPointToStart(&write.getThenRegion().front());
  OpOperand &init = op.getDpsInitsMutable()[0];
  SmallVector<Value> at = applyMap(b, op.getMatchingIndexingMap(&init), ivs);
  Value old = start ? start : memref::LoadOp::create(b, init.get(), at);
  Value result = combine(b, combiner, old, total);
  memref::StoreOp::create(b, result, init.get(), at);
  if (!consumer)
    return;

  // The consumer, with the row's result from shared memory.
  memref::StoreOp::create(b, result, scratch, ValueRange{zero});
  b.setInsertionPointAfter(last);
  gpu::BarrierOp::create(b);
  Value row = memref::LoadOp::create(b, scratch, ValueRange{zero});
  if (!held) {
    strided(consumer, init.get(), row);
    return;
  }
  for (OpOperand *operand : consumer.getDpsInputOperands()) {
    BlockArgument arg = consumer.getMatchingBlockArgument(operand);
    Value buffer = operand->get();
    if (arg.use_empty() || (buffer != init.get() && buffer != producerOut &&
                            !llvm::is_contained(late, buffer)))
      continue;
    auto it = known.find(buffer);
    bool same = it != known.end() &&
                it->second.map == consumer.getMatchingIndexingMap(operand);
    for (auto [k, mapping] : llvm::enumerate(consumerLoads))
      mapping.map(arg, buffer == init.get() ? row
                       : same ? it->second.values[k]
                              : loadOperand(b, consumer, *operand, points[k]));
  }
  computeHeld(b, consumer, points, consumerLoads);
}

/// `lateOperands`: the operands the consumer reads that view what the
/// kernel writes.
void KernelLibrary::build(linalg::GenericOp op, linalg::GenericOp consumer,
                          linalg::GenericOp producer, Operation *combiner,
                          bool hasStart, ArrayRef<Value> operands,
                          ArrayRef<unsigned> lateOperands,
                          ArrayRef<Operation *> constants, StringRef name) {
  MLIRContext *context = op.getContext();
  OpBuilder moduleBuilder(context);
  moduleBuilder.setInsertionPointToEnd(kernels().getBody());
  auto scratchType = MemRefType::get(
      {kRowThreads / kWarpSize}, Float32Type::get(context), AffineMap(),
      gpu::AddressSpaceAttr::get(context, gpu::AddressSpace::Workgroup));
  SmallVector<Type> workgroup;
  if (combiner)
    workgroup.push_back(scratchType);
  auto func = gpu::GPUFuncOp::create(
      moduleBuilder, op.getLoc(), name,
      FunctionType::get(context, ValueRange(operands).getTypes(), {}),
      workgroup);
  func->setAttr(gpu::GPUDialect::getKernelFuncAttrName(),
                UnitAttr::get(context));
  func.setKnownBlockSizeAttr(
      DenseI32ArrayAttr::get(
          context, {int32_t(combiner ? kRowThreads : kThreads), 1, 1}));

  addGridDependencyPrologue(func);
  ImplicitLocOpBuilder b(op.getLoc(), context);
  b.setInsertionPointToEnd(&func.getBody().front());
  IRMapping mapping;
  for (auto [v, arg] : llvm::zip(operands, func.getArguments()))
    mapping.map(v, arg);
  for (Operation *c : constants)
    b.clone(*c, mapping);
  auto clone = cast<linalg::GenericOp>(b.clone(*op, mapping));
  auto cloneOf = [&](linalg::GenericOp generic) {
    return generic ? cast<linalg::GenericOp>(b.clone(*generic, mapping))
                   : linalg::GenericOp();
  };
  linalg::GenericOp consumerClone = cloneOf(consumer),
                    producerClone = cloneOf(producer);
  if (combiner) {
    Operation *clonedCombiner =
        clone.getBody()->getTerminator()->getOperand(0).getDefiningOp();
    SmallVector<Value> late;
    for (unsigned i : lateOperands)
      late.push_back(func.getArgument(i));
    buildReduction(b, clone, clonedCombiner,
                   func.getWorkgroupAttributions().front(),
                   hasStart ? func.getArgument(operands.size() - 1) : Value(),
                   consumerClone, producerClone, late);
  } else {
    buildParallel(b, clone);
  }
  b.setInsertionPointToEnd(&func.getBody().front());
  gpu::ReturnOp::create(b);
  for (linalg::GenericOp c : {consumerClone, producerClone})
    if (c)
      c.erase();
  clone.erase();
  // A thread's strided loads are independent: unrolled, several are in
  // flight at once instead of one memory latency per point.
  SmallVector<scf::ForOp> loops;
  func.walk([&](scf::ForOp loop) { loops.push_back(loop); });
  for (scf::ForOp loop : loops)
    (void)loopUnrollByFactor(loop, kUnroll);
}

LogicalResult KernelLibrary::outline(linalg::GenericOp op, Value start,
                                     linalg::GenericOp consumer,
                                     linalg::GenericOp producer) {
  if (!op.hasPureBufferSemantics())
    return op.emitOpError("kvc GPU lowering: expected buffers (run one-shot "
                          "bufferization first)");
  SmallVector<unsigned> reduction;
  op.getReductionDims(reduction);
  Operation *combiner = nullptr;
  if (!reduction.empty()) {
    combiner = reductionCombiner(op);
    if (reduction.size() != 1 || !combiner)
      return op.emitOpError(
          "kvc GPU lowering: a reduction must have one reduction loop and one "
          "f32 output combined by an op with a neutral element (add, max, "
          "...)");
  }

  // Kernel arguments: the operands, then what the body captures (constants
  // are cloned in).
  SetVector<Value> captured;
  getUsedValuesDefinedAbove(op.getRegion(), captured);
  SetVector<Value> operandSet;
  operandSet.insert(op->getOperands().begin(), op->getOperands().end());
  for (linalg::GenericOp other : {consumer, producer}) {
    if (!other)
      continue;
    operandSet.insert(other->getOperands().begin(), other->getOperands().end());
    getUsedValuesDefinedAbove(other.getRegion(), captured);
  }
  SmallVector<Value> operands(operandSet.begin(), operandSet.end());
  SmallVector<Operation *> constants;
  for (Value v : captured) {
    if (operandSet.contains(v))
      continue;
    Operation *def = v.getDefiningOp();
    if (def && def->hasTrait<OpTrait::ConstantLike>())
      constants.push_back(def);
    else
      operands.push_back(v);
  }

  if (start)
    operands.push_back(start);
  SmallVector<linalg::GenericOp> ops;
  for (linalg::GenericOp generic : {producer, op, consumer})
    if (generic)
      ops.push_back(generic);
  std::string key = kernelKey(ops, operands, constants);
  if (start)
    key += "start";
  // Operands the consumer reads through another view of what the kernel
  // writes (read after the barrier).
  SmallVector<unsigned> lateOperands;
  if (consumer) {
    SmallVector<Value> written = {op.getDpsInits()[0]};
    if (producer)
      written.push_back(producer.getDpsInits()[0]);
    for (unsigned i = 0; i < operands.size(); ++i) {
      Value v = operands[i];
      if (llvm::is_contained(consumer.getDpsInputs(), v) &&
          llvm::any_of(written, [&](Value out) {
            return v != out && kvc::rootOf(v) == kvc::rootOf(out);
          })) {
        lateOperands.push_back(i);
        key += " late" + std::to_string(i);
      }
    }
  }
  MLIRContext *context = op.getContext();
  StringAttr &name = byKey[key];
  if (!name) {
    name = StringAttr::get(context,
                           "kvc_model_" + std::to_string(byKey.size() - 1));
    build(op, consumer, producer, combiner, static_cast<bool>(start), operands,
          lateOperands, constants, name);
  }

  // The launch, sized on the host, where the consumer's output exists.
  ImplicitLocOpBuilder host(op.getLoc(), consumer ? consumer : op);
  SmallVector<Value> sizes = loopSizes(host, op);
  Value grid;
  if (combiner) {
    SmallVector<unsigned> parallel;
    op.getParallelDims(parallel);
    SmallVector<Value> parallelSizes;
    for (unsigned d : parallel)
      parallelSizes.push_back(sizes[d]);
    grid = product(host, parallelSizes);
  } else {
    grid = arith::CeilDivUIOp::create(host, product(host, sizes),
                                      index(host, kThreads));
  }
  Value one = index(host, 1);
  gpu::LaunchFuncOp::create(
      host,
      SymbolRefAttr::get(StringAttr::get(context, kModuleName),
                         {FlatSymbolRefAttr::get(name)}),
      gpu::KernelDim3{grid, one, one},
      gpu::KernelDim3{index(host, combiner ? kRowThreads : kThreads), one,
                      one},
      /*dynamicSharedMemorySize=*/Value(), operands,
      /*asyncObject=*/Value());
  for (linalg::GenericOp other : {consumer, producer})
    if (other)
      other.erase();
  op.erase();
  return success();
}

/// `out[..., n] = sum_k x[..., k] * w[n, k]` with x, w, out contiguous,
/// out zero-filled just before: the cuBLASLt call. The element types of x
/// and w agree (f32, f16 or bf16, widened in the body); out is theirs or
/// f32.
struct Matmul {
  Value x, w, out;
  linalg::FillOp fill;
  /// The op rounding the f32 result to x's type, if that is all that reads
  /// it: cuBLASLt writes the rounded result and the op goes away.
  linalg::GenericOp round;
};

/// The generic right after `matmul` (in what touches `sum`) that only rounds
/// `sum` (f32) into a buffer of `type`, if nothing reads `sum` after it
/// (bufferization reuses buffers: the next op touching it must overwrite or
/// free it).
linalg::GenericOp roundingOf(Value sum, Operation *matmul, Type type) {
  auto touches = [&](Operation &op) {
    return llvm::is_contained(op.getOperands(), sum);
  };
  Operation *op = matmul->getNextNode();
  while (op && !touches(*op))
    op = op->getNextNode();
  auto round = dyn_cast_or_null<linalg::GenericOp>(op);
  if (!round || round.getNumDpsInputs() != 1 || round.getNumDpsInits() != 1 ||
      round.getDpsInputs()[0] != sum ||
      !llvm::all_of(round.getIndexingMapsArray(),
                    [](AffineMap m) { return m.isIdentity(); }))
    return nullptr;
  Block *body = round.getBody();
  auto trunc = dyn_cast<arith::TruncFOp>(&body->front());
  if (!trunc || trunc.getIn() != body->getArgument(0) ||
      body->getTerminator()->getOperand(0) != trunc.getResult() ||
      trunc.getType() != type ||
      !cast<MemRefType>(round.getDpsInits()[0].getType())
           .getLayout()
           .isIdentity())
    return nullptr;
  Operation *next = round->getNextNode();
  while (next && !touches(*next))
    next = next->getNextNode();
  auto fill = dyn_cast_or_null<linalg::FillOp>(next);
  if (next && !isa<memref::DeallocOp>(next) &&
      !(fill && fill.getOutputs()[0] == sum))
    return nullptr;
  return round;
}

std::optional<Matmul> matchMatmul(linalg::GenericOp op) {
  if (op.getNumDpsInputs() != 2 || op.getNumDpsInits() != 1 ||
      !op.hasPureBufferSemantics())
    return std::nullopt;
  unsigned loops = op.getNumLoops();
  SmallVector<utils::IteratorType> iterators = op.getIteratorTypesArray();
  if (loops < 3)
    return std::nullopt;
  for (unsigned i = 0; i + 1 < loops; ++i)
    if (iterators[i] != utils::IteratorType::parallel)
      return std::nullopt;
  if (iterators.back() != utils::IteratorType::reduction)
    return std::nullopt;
  MLIRContext *ctx = op.getContext();
  auto dims = [&](ArrayRef<unsigned> ds) {
    SmallVector<AffineExpr> exprs;
    for (unsigned d : ds)
      exprs.push_back(getAffineDimExpr(d, ctx));
    return AffineMap::get(loops, 0, exprs, ctx);
  };
  SmallVector<unsigned> xDims, outDims;
  for (unsigned i = 0; i + 2 < loops; ++i) {
    xDims.push_back(i);
    outDims.push_back(i);
  }
  xDims.push_back(loops - 1);
  outDims.push_back(loops - 2);
  SmallVector<AffineMap> maps = op.getIndexingMapsArray();
  if (maps[0] != dims(xDims) || maps[1] != dims({loops - 2, loops - 1}) ||
      maps[2] != dims(outDims))
    return std::nullopt;

  // yield addf(acc, mulf(widen(a), widen(b))).
  Block *body = op.getBody();
  auto add =
      body->getTerminator()->getOperand(0).getDefiningOp<arith::AddFOp>();
  if (!add)
    return std::nullopt;
  Value acc = body->getArgument(2), product;
  if (add.getLhs() == acc)
    product = add.getRhs();
  else if (add.getRhs() == acc)
    product = add.getLhs();
  else
    return std::nullopt;
  auto mul = product.getDefiningOp<arith::MulFOp>();
  if (!mul)
    return std::nullopt;
  auto unwiden = [](Value v) {
    if (auto ext = v.getDefiningOp<arith::ExtFOp>())
      return ext.getIn();
    return v;
  };
  Value a = unwiden(mul.getLhs()), bv = unwiden(mul.getRhs());
  if (!((a == body->getArgument(0) && bv == body->getArgument(1)) ||
        (a == body->getArgument(1) && bv == body->getArgument(0))))
    return std::nullopt;
  if (std::distance(body->begin(), body->end()) >
      static_cast<long>(3 + (mul.getLhs() != a) + (mul.getRhs() != bv)))
    return std::nullopt;

  Matmul m{op.getDpsInputs()[0], op.getDpsInputs()[1], op.getDpsInits()[0],
           nullptr, nullptr};
  for (Value v : {m.x, m.w, m.out}) {
    auto type = cast<MemRefType>(v.getType());
    if (!type.getLayout().isIdentity())
      return std::nullopt;
  }
  Type in = cast<MemRefType>(m.x.getType()).getElementType();
  Type outType = cast<MemRefType>(m.out.getType()).getElementType();
  if (in != cast<MemRefType>(m.w.getType()).getElementType() ||
      !(in.isF32() || in.isF16() || in.isBF16()) ||
      !(outType == in || outType.isF32()))
    return std::nullopt;
  // The zero fill of out, the op right before.
  auto fill = dyn_cast_or_null<linalg::FillOp>(op->getPrevNode());
  if (!fill || fill.getOutputs()[0] != m.out)
    return std::nullopt;
  auto zero = fill.getInputs()[0].getDefiningOp<arith::ConstantOp>();
  auto value = zero ? dyn_cast<FloatAttr>(zero.getValue()) : nullptr;
  if (!value || !value.getValue().isZero())
    return std::nullopt;
  m.fill = fill;
  if (outType.isF32() && !in.isF32())
    m.round = roundingOf(m.out, op, in);
  return m;
}

int32_t typeCode(Type t) { return t.isF16() ? 0 : t.isBF16() ? 1 : 2; }

/// Returns the element type the call writes.
Type lowerMatmul(linalg::GenericOp op, Matmul m) {
  ImplicitLocOpBuilder b(op.getLoc(), op);
  if (m.round) {
    // The rounded buffer is written where the sum was; it must exist here.
    Value rounded = m.round.getDpsInits()[0];
    Operation *def = rounded.getDefiningOp();
    auto after = [&](Operation *d) {
      return d && d->getBlock() == op->getBlock() && op->isBeforeInBlock(d);
    };
    if (after(def) && llvm::any_of(def->getOperands(), [&](Value v) {
          return after(v.getDefiningOp());
        }))
      m.round = nullptr;
    else if (after(def))
      def->moveBefore(op);
    if (m.round)
      m.out = rounded;
  }
  auto outType = cast<MemRefType>(m.out.getType());
  SmallVector<Value> rows;
  for (int64_t d = 0; d + 1 < outType.getRank(); ++d)
    rows.push_back(memref::DimOp::create(b, m.out, d).getResult());
  Value k = memref::DimOp::create(b, m.x, outType.getRank() - 1);
  Value n = memref::DimOp::create(b, m.out, outType.getRank() - 1);
  Type in = cast<MemRefType>(m.x.getType()).getElementType();
  SmallVector<Value> args = {
      pointerOf(b, m.x), pointerOf(b, m.w), pointerOf(b, m.out),
      i64(b, product(b, rows)),
      i64(b, n), i64(b, k),
      arith::ConstantOp::create(b, b.getI32IntegerAttr(typeCode(in))),
      arith::ConstantOp::create(
          b, b.getI32IntegerAttr(typeCode(outType.getElementType())))};
  callRuntime(b, op, rt::kMatmul, args);
  m.fill.erase();
  if (m.round)
    m.round.erase();
  op.erase();
  return outType.getElementType();
}

/// The all-parallel op right after reduction `op` (allocations aside) that
/// runs over the same loops (it reads one of op's inputs through the same
/// permutation map) and reads op's result only at the row's point: it can
/// run in the reduction's kernel.
linalg::GenericOp rowConsumer(linalg::GenericOp op) {
  Operation *next = op->getNextNode();
  while (next && isa<memref::AllocOp>(next))
    next = next->getNextNode();
  auto consumer = dyn_cast_or_null<linalg::GenericOp>(next);
  if (!consumer || consumer.getNumLoops() != op.getNumLoops() ||
      consumer.getNumReductionLoops() != 0)
    return nullptr;
  Value result = op.getDpsInits()[0];
  AffineMap resultMap = op.getIndexingMapsArray().back();
  bool sameLoops = false, readsResult = false;
  for (OpOperand &operand : consumer->getOpOperands()) {
    AffineMap map = consumer.getMatchingIndexingMap(&operand);
    if (operand.get() == result) {
      if (consumer.isDpsInit(&operand) || map != resultMap)
        return nullptr;
      readsResult = true;
    }
    for (OpOperand *input : op.getDpsInputOperands())
      if (input->get() == operand.get() && map.isPermutation() &&
          map == op.getMatchingIndexingMap(input))
        sameLoops = true;
  }
  for (Value out : consumer.getDpsInits())
    if (llvm::is_contained(op->getOperands(), out))
      return nullptr;
  return sameLoops && readsResult ? consumer : nullptr;
}

/// The all-parallel op right before reduction `op` (allocations aside) whose
/// one output `op` reads through the permutation it writes it with: each
/// thread can compute the points it then reduces.
linalg::GenericOp rowProducer(linalg::GenericOp op) {
  Operation *prev = op->getPrevNode();
  while (prev && isa<memref::AllocOp>(prev))
    prev = prev->getPrevNode();
  auto producer = dyn_cast_or_null<linalg::GenericOp>(prev);
  if (!producer || producer.getNumLoops() != op.getNumLoops() ||
      producer.getNumReductionLoops() != 0 || producer.getNumDpsInits() != 1)
    return nullptr;
  OpOperand &out = producer.getDpsInitsMutable()[0];
  AffineMap map = producer.getMatchingIndexingMap(&out);
  if (!map.isPermutation() || llvm::is_contained(producer.getDpsInputs(),
                                                 out.get()))
    return nullptr;
  for (OpOperand *input : op.getDpsInputOperands())
    if (input->get() == out.get() && op.getMatchingIndexingMap(input) == map)
      return producer;
  return nullptr;
}

struct ConvertLinalgToKVCGPUPass
    : kvc::impl::ConvertLinalgToKVCGPUPassBase<ConvertLinalgToKVCGPUPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    // Matmuls first, while their zero fills are still named ops.
    SmallVector<std::pair<linalg::GenericOp, Matmul>> matmuls;
    module.walk([&](func::FuncOp f) {
      f.walk([&](linalg::GenericOp op) {
        if (std::optional<Matmul> m = matchMatmul(op))
          matmuls.push_back({op, *m});
      });
    });
    // The runtime runs batch-1 projections of f16/bf16 with kvc's own kernel
    // where cuBLASLt is slow; the kernel library gets one per type pair.
    SmallVector<kernels::GemvKey> gemvs;
    for (auto &[op, m] : matmuls) {
      Type in = cast<MemRefType>(m.x.getType()).getElementType();
      Type out = lowerMatmul(op, m);
      kernels::GemvKey key{static_cast<kernels::ElementType>(typeCode(in)),
                           static_cast<kernels::ElementType>(typeCode(out))};
      if (!in.isF32() && llvm::none_of(gemvs, [&](kernels::GemvKey k) {
            return k.inputType == key.inputType &&
                   k.outputType == key.outputType;
          }))
        gemvs.push_back(key);
    }
    if (!gemvs.empty() && failed(kernels::addKernels(module, {}, gemvs)))
      return signalPassFailure();

    // A reduction's output filled right before starts from the fill's value
    // in the kernel: one launch less.
    DenseMap<Operation *, Value> starts;
    module.walk([&](linalg::GenericOp op) {
      auto fill = dyn_cast_or_null<linalg::FillOp>(op->getPrevNode());
      if (op.getNumReductionLoops() == 1 && op.getNumDpsInits() == 1 && fill &&
          fill.getOutputs()[0] == op.getDpsInits()[0] &&
          reductionCombiner(op)) {
        starts[op] = fill.getInputs()[0];
        fill.erase();
      }
    });

    SmallVector<linalg::LinalgOp> named;
    module.walk([&](func::FuncOp f) {
      f.walk([&](linalg::LinalgOp op) {
        if (!isa<linalg::GenericOp>(op))
          named.push_back(op);
      });
    });
    if (failed(kvc::generalizeNamedOps(
            named, "kvc GPU lowering: cannot generalize this op")))
      return signalPassFailure();
    WalkResult copies = module.walk([](memref::CopyOp op) {
      op.emitOpError("kvc GPU lowering: run kvc-lower-memref-copy first");
      return WalkResult::interrupt();
    });
    if (copies.wasInterrupted())
      return signalPassFailure();

    KernelLibrary library(module);
    // Row kernels first: a reduction with the op that feeds it and the op
    // that reads its result.
    struct Row {
      linalg::GenericOp op, consumer, producer;
    };
    SmallVector<Row> rows;
    DenseSet<Operation *> fused;
    module.walk([&](func::FuncOp f) {
      f.walk([&](linalg::GenericOp op) {
        if (op.getNumReductionLoops() != 1 || !reductionCombiner(op))
          return;
        Row row{op, rowConsumer(op), rowProducer(op)};
        if (row.producer && fused.contains(row.producer))
          row.producer = nullptr;
        for (linalg::GenericOp g : {row.op, row.consumer, row.producer})
          if (g)
            fused.insert(g);
        rows.push_back(row);
      });
    });
    for (const Row &row : rows)
      if (failed(library.outline(row.op, starts.lookup(row.op), row.consumer,
                                 row.producer)))
        return signalPassFailure();
    SmallVector<linalg::GenericOp> generics;
    module.walk([&](linalg::GenericOp op) { generics.push_back(op); });
    for (linalg::GenericOp op : generics)
      if (failed(library.outline(op, starts.lookup(op))))
        return signalPassFailure();
  }
};

} // namespace
