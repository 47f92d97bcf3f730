//===- FuseLaunches.cpp - kvc-fuse-launches --------------------------------===//
//
// Consecutive kernel launches that do not depend on each other become one
// launch of a merged kernel: block ranges pick the member each block runs.
// At small batch a decode step is a chain of small kernels, each costing
// about its latency; independent ones need not wait for each other.
//
//===----------------------------------------------------------------------===//
#include "kvc/Conversion/Passes.h"
#include "kvc/Conversion/Utils.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"
#include "mlir/IR/Matchers.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "mlir/Interfaces/ViewLikeInterface.h"
#include "llvm/ADT/SetVector.h"
#include "llvm/ADT/StringMap.h"

namespace mlir::kvc {
#define GEN_PASS_DEF_KVCFUSELAUNCHESPASS
#include "kvc/Conversion/Passes.h.inc"
} // namespace mlir::kvc

using namespace mlir;

namespace {

/// Whether the kernel reads and writes through a value (an argument, or a
/// view of one inside the kernel). An op that does not say is taken to do
/// both.
void accessOf(Value value, bool &read, bool &written) {
  for (OpOperand &use : value.getUses()) {
    Operation *user = use.getOwner();
    read = true;
    if (auto view = dyn_cast<ViewLikeOpInterface>(user);
        view && view.getViewSource() == value) {
      for (Value result : user->getResults())
        accessOf(result, read, written);
      continue;
    }
    auto effects = dyn_cast<MemoryEffectOpInterface>(user);
    if (!effects || effects.getEffectOnValue<MemoryEffects::Write>(value))
      written = true;
  }
}

/// A launch that may join a merge: its kernel, and the buffers (by root) it
/// reads and writes.
struct Member {
  // Op handles: mutable, as the ops are, through a const Member.
  mutable gpu::LaunchFuncOp launch;
  mutable gpu::GPUFuncOp kernel;
  llvm::SmallPtrSet<Value, 4> reads, writes;
};

std::optional<int64_t> constantOf(Value v) {
  APInt value;
  if (!matchPattern(v, m_ConstantInt(&value)))
    return std::nullopt;
  return value.getSExtValue();
}

std::optional<Member> asMember(gpu::LaunchFuncOp launch,
                               SymbolTableCollection &symbols) {
  auto kernel = symbols.lookupNearestSymbolFrom<gpu::GPUFuncOp>(
      launch, launch.getKernel());
  if (!kernel || launch.getAsyncToken() ||
      !launch.getAsyncDependencies().empty() ||
      launch.getDynamicSharedMemorySize() || launch.hasClusterSize() ||
      kernel.getNumWorkgroupAttributions() ||
      kernel.getNumPrivateAttributions() || !kernel.getBody().hasOneBlock() ||
      constantOf(launch.getGridSizeY()) != 1 ||
      constantOf(launch.getGridSizeZ()) != 1 ||
      !constantOf(launch.getBlockSizeX()) ||
      constantOf(launch.getBlockSizeY()) != 1 ||
      constantOf(launch.getBlockSizeZ()) != 1)
    return std::nullopt;
  // A kernel that looks at grid or block ids past x cannot be rebased.
  bool multiDimensional = false;
  kernel.walk([&](Operation *op) {
    if (auto id = dyn_cast<gpu::BlockIdOp>(op))
      multiDimensional |= id.getDimension() != gpu::Dimension::x;
    if (auto dim = dyn_cast<gpu::GridDimOp>(op))
      multiDimensional |= dim.getDimension() != gpu::Dimension::x;
    if (isa<gpu::ClusterIdOp, gpu::ClusterDimOp>(op))
      multiDimensional = true;
  });
  if (multiDimensional)
    return std::nullopt;
  Member member{launch, kernel, {}, {}};
  for (auto [operand, argument] :
       llvm::zip(launch.getKernelOperands(), kernel.getArguments())) {
    if (!isa<MemRefType>(operand.getType()))
      continue;
    bool read = false, written = false;
    accessOf(argument, read, written);
    if (read)
      member.reads.insert(kvc::rootOf(operand));
    if (written)
      member.writes.insert(kvc::rootOf(operand));
  }
  return member;
}

/// Whether `b` neither reads nor writes what `a` writes, nor writes what
/// `a` reads.
bool independent(const Member &a, const Member &b) {
  for (Value w : a.writes)
    if (b.reads.contains(w) || b.writes.contains(w))
      return false;
  for (Value w : b.writes)
    if (a.reads.contains(w))
      return false;
  return true;
}

/// Ops a launch may be moved past: no memory effects but allocation.
bool movable(Operation *op) {
  if (isPure(op))
    return true;
  auto effects = dyn_cast<MemoryEffectOpInterface>(op);
  if (!effects)
    return false;
  SmallVector<MemoryEffects::EffectInstance> instances;
  effects.getEffects(instances);
  return llvm::all_of(instances, [](const MemoryEffects::EffectInstance &e) {
    return isa<MemoryEffects::Allocate>(e.getEffect());
  });
}

class Merger {
public:
  Merger(ModuleOp module) : module(module) {}

  /// Replaces the launches of `members` by one, at the last one.
  void merge(ArrayRef<Member> members) {
    gpu::LaunchFuncOp last = members.back().launch;
    ImplicitLocOpBuilder b(last.getLoc(), last);
    // Arguments: each distinct launch operand once, then the members' first
    // blocks past the first and the grid end.
    SmallVector<Value> operands;
    SmallVector<SmallVector<unsigned>> positions;
    for (const Member &m : members) {
      positions.emplace_back();
      for (Value v : m.launch.getKernelOperands()) {
        auto *it = llvm::find(operands, v);
        positions.back().push_back(it - operands.begin());
        if (it == operands.end())
          operands.push_back(v);
      }
    }
    SmallVector<Value> ends;
    Value end;
    for (const Member &m : members) {
      end = end ? arith::AddIOp::create(b, end, m.launch.getGridSizeX())
                : m.launch.getGridSizeX();
      ends.push_back(end);
    }
    operands.append(ends.begin(), ends.end());
    gpu::GPUFuncOp kernel = mergedKernel(members, positions, operands);
    Value one = arith::ConstantIndexOp::create(b, 1);
    gpu::LaunchFuncOp::create(b, kernel, {ends.back(), one, one},
                              {last.getBlockSizeX(), one, one}, Value(),
                              operands);
    for (const Member &m : members)
      m.launch.erase();
  }

  /// Erases the kernels no launch calls any more.
  void eraseUnused() {
    SymbolTableCollection symbols;
    SymbolUserMap users(symbols, module);
    for (gpu::GPUFuncOp kernel : replaced)
      if (users.getUsers(kernel).empty())
        kernel.erase();
  }

private:
  gpu::GPUFuncOp mergedKernel(ArrayRef<Member> members,
                              ArrayRef<SmallVector<unsigned>> positions,
                              ArrayRef<Value> operands) {
    // One merged kernel per list of members and sharing of operands.
    std::string key;
    llvm::raw_string_ostream os(key);
    for (auto [m, pos] : llvm::zip(members, positions)) {
      os << m.launch.getKernel() << "(";
      llvm::interleaveComma(pos, os);
      os << ")";
    }
    if (gpu::GPUFuncOp existing = byKey.lookup(key))
      return existing;

    auto gpuModule = members.front().kernel->getParentOfType<gpu::GPUModuleOp>();
    MLIRContext *context = module.getContext();
    OpBuilder moduleBuilder(context);
    moduleBuilder.setInsertionPointToEnd(gpuModule.getBody());
    SymbolTable table(gpuModule);
    std::string name = members.front().kernel.getName().str() + "_with";
    for (const Member &m : members.drop_front())
      name += "_" + m.kernel.getName().substr(
                        m.kernel.getName().find_last_of('_') + 1).str();
    auto kernel = gpu::GPUFuncOp::create(
        moduleBuilder, members.front().kernel.getLoc(), name,
        FunctionType::get(context, ValueRange(operands).getTypes(), {}));
    table.insert(kernel);
    kernel->setAttr(gpu::GPUDialect::getKernelFuncAttrName(),
                    UnitAttr::get(context));
    kernel.setKnownBlockSizeAttr(members.front().kernel.getKnownBlockSizeAttr());

    ImplicitLocOpBuilder b(kernel.getLoc(), context);
    b.setInsertionPointToStart(&kernel.getBody().front());
    Value block = gpu::BlockIdOp::create(b, gpu::Dimension::x);
    Block::BlockArgListType args = kernel.getArguments();
    ArrayRef<BlockArgument> ends = args.take_back(members.size());
    Value begin = arith::ConstantIndexOp::create(b, 0);
    for (auto [m, pos, end] : llvm::zip(members, positions, ends)) {
      Value inside =
          arith::CmpIOp::create(b, arith::CmpIPredicate::ult, block, end);
      if (&m != &members.front())
        inside = arith::AndIOp::create(
            b,
            arith::CmpIOp::create(b, arith::CmpIPredicate::uge, block, begin),
            inside);
      auto branch = scf::IfOp::create(b, inside, /*withElseRegion=*/false);
      OpBuilder inner = branch.getThenBodyBuilder();
      Value rebased = arith::SubIOp::create(inner, kernel.getLoc(), block, begin);
      Value count = arith::SubIOp::create(inner, kernel.getLoc(), end, begin);
      IRMapping mapping;
      for (auto [arg, p] : llvm::zip(m.kernel.getArguments(), pos))
        mapping.map(arg, args[p]);
      for (Operation &op : m.kernel.getBody().front().without_terminator()) {
        // The merged kernel has its own prologue.
        if (isa<NVVM::GriddepcontrolOp>(op))
          continue;
        if (auto id = dyn_cast<gpu::BlockIdOp>(op))
          mapping.map(id.getResult(), rebased);
        else if (auto dim = dyn_cast<gpu::GridDimOp>(op))
          mapping.map(dim.getResult(), count);
        else
          inner.clone(op, mapping);
      }
      begin = end;
      replaced.insert(m.kernel);
    }
    gpu::ReturnOp::create(b);
    kvc::addGridDependencyPrologue(kernel);
    byKey[key] = kernel;
    return kernel;
  }

  ModuleOp module;
  llvm::StringMap<gpu::GPUFuncOp> byKey;
  llvm::SetVector<gpu::GPUFuncOp> replaced;
};

struct KVCFuseLaunchesPass
    : kvc::impl::KVCFuseLaunchesPassBase<KVCFuseLaunchesPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    SymbolTableCollection symbols;
    // Runs of mergeable launches, in each block of host code.
    SmallVector<SmallVector<Member>> runs;
    module.walk([&](Block *block) {
      if (block->getParentOp()->getParentOfType<gpu::GPUModuleOp>() ||
          isa<gpu::GPUModuleOp>(block->getParentOp()))
        return;
      SmallVector<Member> run;
      auto close = [&] {
        if (run.size() > 1)
          runs.push_back(run);
        run.clear();
      };
      for (Operation &op : *block) {
        auto launch = dyn_cast<gpu::LaunchFuncOp>(op);
        if (!launch) {
          if (!movable(&op))
            close();
          continue;
        }
        std::optional<Member> member = asMember(launch, symbols);
        if (!member) {
          close();
          continue;
        }
        bool fits = llvm::all_of(run, [&](const Member &m) {
          return independent(m, *member) &&
                 constantOf(m.launch.getBlockSizeX()) ==
                     constantOf(launch.getBlockSizeX());
        });
        if (!fits)
          close();
        run.push_back(std::move(*member));
      }
      close();
    });
    Merger merger(module);
    for (ArrayRef<Member> run : runs)
      merger.merge(run);
    merger.eraseUnused();
  }
};

} // namespace
