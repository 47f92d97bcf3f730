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

#endif // KVC_CONVERSION_PASSES_TD
