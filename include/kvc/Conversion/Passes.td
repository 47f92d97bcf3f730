//===- Passes.td - kvc conversion passes -------------------*- tablegen -*-===//
#ifndef KVC_CONVERSION_PASSES_TD
#define KVC_CONVERSION_PASSES_TD

include "mlir/Pass/PassBase.td"

def ConvertKVCToCPUPass : Pass<"convert-kvc-to-cpu", "ModuleOp"> {
  let summary = "lower kvc ops to loops over memrefs: the CPU reference";
  let description = [{
    Lowers every kvc op to scf loops, memref and arith/math ops. It is the
    reference every other lowering of kvc is checked against, so it is
    written for clarity: one loop nest per attention row, a numerically
    stable two-pass softmax (max, then exp and sum) and f32 arithmetic for
    f16/bf16 inputs.

    Input invariant: tensors everywhere but in kvc caches. A `!kvc.cache`
    becomes three memrefs, the keys and values `[batch, kv_heads, capacity,
    head_dim]` and the lengths `[batch] x i32`, in function signatures, calls
    and returns too. Tensor operands reach the loops through
    `bufferization.to_buffer` and results leave through
    `bufferization.to_tensor restrict`, so one-shot bufferization must run
    next (`kvc-cpu-pipeline` does).

    `kvc.cache.append` checks at run time that each position lies in
    `[0, length]` and that the rows fit in the capacity (`cf.assert`).

    Before:
    ```mlir
    %o = kvc.decode_attention %q, %c[%pos]
        : tensor<1x4x1x64xf32>, !kvc.cache<1x2x128x64xf32>
    ```
    After (abridged):
    ```mlir
    %qb = bufferization.to_buffer %q read_only : ... to memref<1x4x1x64xf32>
    %ob = memref.alloc() : memref<1x4x1x64xf32>
    scf.for %b ... { scf.for %h ... { scf.for %t ... {
      // scores over rows [0, min(pos + t + 1, len)), max, exp, sum, weighted V
    } } }
    %o = bufferization.to_tensor %ob restrict writable : ...
    ```
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect",
                           "::mlir::bufferization::BufferizationDialect",
                           "::mlir::cf::ControlFlowDialect",
                           "::mlir::linalg::LinalgDialect",
                           "::mlir::math::MathDialect",
                           "::mlir::memref::MemRefDialect",
                           "::mlir::scf::SCFDialect"];
}

def ConvertKVCToGPUPass : Pass<"convert-kvc-to-gpu", "ModuleOp"> {
  let summary = "lower kvc ops to calls of the kvc GPU runtime and add the "
                "GPU kernels they launch";
  let description = [{
    Replaces each kvc op (cache ops, `kvc.decode_attention`, and causal
    unmasked `kvc.attention` in f16 or bf16: prefill) with a call of the
    kvc runtime (`kvc_rt_op_*`, declared here, defined in runtime/), which
    plans and launches kvc's GPU kernels on the current device, and adds
    those kernels, specialized for the op's head dim, query group and element
    type, to `gpu.module @kvc_kernels`. `kvc-gpu-pipeline` then compiles the
    kernels to a cubin for sm_90a.

    A `!kvc.cache` becomes the runtime's cache handle (`!llvm.ptr`), in
    function signatures, calls and returns too. Tensors reach the runtime as
    the aligned pointers of their buffers (`bufferization.to_buffer`), which
    must be device memory; results are fresh buffers
    (`bufferization.to_tensor restrict`), so one-shot bufferization must run
    next. Launch shapes (the split count of a decode) are the runtime's:
    they depend on the GPU's multiprocessors and on the kernels' occupancy.

    Attention that is not causal or is masked has no GPU kernel: the pass
    fails on it, naming the op and why. Causal f32 attention has no
    tensor-core kernel; the runtime runs it as decode attention over the
    whole sequence (a cache of capacity S holding S rows).

    Before:
    ```mlir
    kvc.cache.append %c[%pos], %k, %v : !kvc.cache<?x8x?x128xbf16>, tensor<?x8x1x128xbf16>
    ```
    After (abridged):
    ```mlir
    %kb = bufferization.to_buffer %k read_only : tensor<?x8x1x128xbf16> to memref<?x8x1x128xbf16>
    %kp = memref.extract_aligned_pointer_as_index %kb : memref<?x8x1x128xbf16> -> index
    ...
    call @kvc_rt_op_append(%c, %kptr, %vptr, %pptr, %rows) : (!llvm.ptr, !llvm.ptr, !llvm.ptr, !llvm.ptr, i64) -> ()
    gpu.module @kvc_kernels { gpu.func @kvc_append_d128_bf16(...) kernel { ... } ... }
    ```
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect",
                           "::mlir::bufferization::BufferizationDialect",
                           "::mlir::func::FuncDialect",
                           "::mlir::gpu::GPUDialect",
                           "::mlir::LLVM::LLVMDialect",
                           "::mlir::memref::MemRefDialect",
                           "::mlir::NVVM::NVVMDialect",
                           "::mlir::tensor::TensorDialect"];
}

def ConvertLinalgToKVCGPUPass : Pass<"convert-linalg-to-kvc-gpu", "ModuleOp"> {
  let summary = "lower a model's linalg ops on buffers to cuBLASLt calls and "
                "generated GPU kernels";
  let description = [{
    Runs after bufferization on the host functions of a model (what
    `kvc-compile --target=cuda` builds). Each linalg op becomes:

    - a call of `kvc_rt_op_matmul` (cuBLASLt, f32 accumulation) if it is
      `out[..., n] = sum_k x[..., k] * w[n, k]` on contiguous buffers, out
      zero-filled right before (the fill goes away), x and w of one type
      (f32, f16, bf16; widened with `arith.extf` in the body) and out of
      theirs or f32 -- the form of a projection with weights laid out as
      Hugging Face stores them;
    - else a `gpu.launch_func` of a kernel built from the op, in
      `gpu.module @kvc_model_kernels`: one thread per iteration point if all
      loops are parallel (256 per block); one 256-thread block per output
      point if there is one reduction loop (1024 threads), its threads striding the loop and
      combining through warp shuffles and shared memory. The reduction's
      output must be f32 and its combiner an op with a neutral element
      (`arith.addf`, `arith.maximumf`, ...). Values the body captures
      become kernel arguments, constants are cloned in.

    Kernels that come out identical are generated once (a model's layers
    share theirs). Named ops are generalized first; `memref.copy` must have
    been lowered (`kvc-lower-memref-copy`). Anything else is an error at the
    op.
  }];
  let dependentDialects = ["::mlir::affine::AffineDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::func::FuncDialect",
                           "::mlir::gpu::GPUDialect",
                           "::mlir::LLVM::LLVMDialect",
                           "::mlir::memref::MemRefDialect",
                           "::mlir::NVVM::NVVMDialect",
                           "::mlir::scf::SCFDialect"];
}

def KVCOrderGridDependencyWaitPass : Pass<"kvc-order-grid-dependency-wait"> {
  let summary = "write nvvm.griddepcontrol wait as PTX with a memory clobber";
  let description = [{
    The `llvm.nvvm.griddepcontrol.wait` intrinsic is declared to touch no
    memory, so LLVM may move loads across it; a kernel launched as a
    programmatic dependent launch must read what the kernels before it wrote
    only after it, and may read weights before it. Each wait becomes
    `llvm.inline_asm has_side_effects "griddepcontrol.wait;", "~{memory}"`,
    which no memory access crosses. Part of `kvc-gpu-pipeline`.
  }];
  let dependentDialects = ["::mlir::LLVM::LLVMDialect"];
}

def KVCFuseLaunchesPass : Pass<"kvc-fuse-launches", "ModuleOp"> {
  let summary = "merge consecutive independent kernel launches into one";
  let description = [{
    A decode step at small batch is a chain of small kernels whose time is
    mostly the latency of each one; kernels that do not depend on each other
    need not wait for each other. In each block of host code, a run of
    `gpu.launch_func` ops (only pure ops and allocations between them) whose
    kernels read nothing another one writes, and write nothing another one
    touches (buffers compared by the allocation they view), becomes one
    launch of a merged kernel: its grid is the sum of theirs, and block `b`
    runs the member whose range holds `b`, with `gpu.block_id x` and
    `gpu.grid_dim x` rebased to that member. Members must use the same block
    size, a one-dimensional grid, no workgroup memory and no async tokens.
    Merged kernels are generated once per list of members; kernels no
    launch uses any more are erased. For example the rotary embedding of q,
    that of k, and the transpose of v, which all read the q/k/v projection,
    become one kernel.
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect",
                           "::mlir::gpu::GPUDialect",
                           "::mlir::NVVM::NVVMDialect",
                           "::mlir::scf::SCFDialect"];
}

def KVCFuseElementwisePass : Pass<"kvc-fuse-elementwise"> {
  let summary = "fuse all-parallel linalg producers into their one "
                "all-parallel consumer";
  let description = [{
    Upstream elementwise fusion (`linalg::populateElementwiseOpsFusionPatterns`)
    restricted so that contractions and reductions stay whole: a producer is
    fused only if all its loops are parallel, it has one use, and the
    consumer's loops are all parallel too. Named ops other than fills are
    generalized first (so transposes fuse); each user of a tensor fill gets
    its own, right before it (so that bufferization fills in place and a
    projection keeps its zero fill next to it). A model's RMSNorm scaling, rotary
    embedding, transposes, SiLU-times-up and residual adds then become few
    kernels, while its projections still match cuBLASLt.
  }];
  let dependentDialects = ["::mlir::linalg::LinalgDialect"];
}

def KVCLowerMemRefCopyPass : Pass<"kvc-lower-memref-copy"> {
  let summary = "rewrite memref.copy as a linalg.generic copy";
  let description = [{
    So that copies (from bufferized concats and slices) become loops or
    kernels like every other op, without the `memrefCopy` runtime function
    of MLIR's C runner utilities.
  }];
  let dependentDialects = ["::mlir::linalg::LinalgDialect"];
}

#endif // KVC_CONVERSION_PASSES_TD
