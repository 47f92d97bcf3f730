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

    Attention that is not causal, is masked, or is f32 has no GPU kernel:
    the pass fails on it, naming the op and why.

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
                           "::mlir::tensor::TensorDialect"];
}

#endif // KVC_CONVERSION_PASSES_TD
