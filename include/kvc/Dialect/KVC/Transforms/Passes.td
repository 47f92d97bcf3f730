//===- Passes.td - kvc dialect transforms ------------------*- tablegen -*-===//
#ifndef KVC_DIALECT_KVC_TRANSFORMS_PASSES_TD
#define KVC_DIALECT_KVC_TRANSFORMS_PASSES_TD

include "mlir/Pass/PassBase.td"

def KVCIncrementalizePass : Pass<"kvc-incrementalize", "ModuleOp"> {
  let summary = "rewrite full-sequence attention into prefill and query-only "
                "decode over key/value caches";
  let description = [{
    Takes every function with an argument marked `kvc.rows`: a model in
    full-sequence form, where each marked argument is laid out
    `[batch, sequence, ...]` with a dynamic sequence dimension (token ids or
    hidden states), at most one argument marked `kvc.positions` holds the
    `[batch, sequence]` integer position of every row (rotary embeddings
    read it), the other arguments are weights, and every result is laid out
    `[batch, sequence, ...]`.

    A dataflow analysis over the sequence dimension proves that every op is
    row-local (output row t reads input row t only) except causal
    `kvc.attention`, whose keys and values are all it reads from earlier
    rows. Anything else that mixes positions (non-causal or masked attention,
    a reduction, scan or contraction over the sequence, a slice or
    concatenation that moves rows, a table indexed by row number) fails the
    pass with an error at that op that says why. `test-kvc-sequence-analysis`
    prints the analysis.

    For `@f` it adds two functions next to it (`@f` itself is kept: it is
    the reference the generated functions are tested against):

    ```
    func @f_prefill(<args of @f but kvc.positions>, %lengths: tensor<Bxi32>,
                    %capacity: index)
        -> (<each result of @f at row lengths[b] - 1: [B, 1, ...]>,
            !kvc.cache (one per attention, in program order)...)
    func @f_decode(<args of @f but kvc.positions>, %positions: tensor<Bxi32>,
                   !kvc.cache (one per attention)...)
        -> (<results of @f for the T new rows: [B, T, ...]>)
    ```

    Prefill runs `@f` on prompts padded to S rows at positions 0..S-1, appends
    every layer's keys and values to a new cache of `%capacity` rows, and
    truncates sequence b to its `lengths[b]` rows (1 <= lengths[b] <= S,
    checked at run time). With `all-positions`, it returns every row instead
    of the last. Decode runs the same body on T >= 1 new rows per sequence,
    the rows of sequence b standing at positions `positions[b] + t`: q, k and
    v of the new rows only, `kvc.cache.append` of k and v at those
    positions, and `kvc.decode_attention` of q over the cache. Q is never
    stored.
  }];
  let options = [
    Option<"allPositions", "all-positions", "bool", /*default=*/"false",
           "prefill returns the results at every row, not only each "
           "sequence's last">,
  ];
  let dependentDialects = ["::mlir::arith::ArithDialect",
                           "::mlir::cf::ControlFlowDialect",
                           "::mlir::kvc::KVCDialect",
                           "::mlir::linalg::LinalgDialect",
                           "::mlir::tensor::TensorDialect"];
}

def KVCCountFlopsPass : Pass<"kvc-count-flops", "ModuleOp"> {
  let summary = "count the floating-point work of generating with and "
                "without key/value caches";
  let description = [{
    For every function kvc-incrementalize would take (an argument marked
    `kvc.rows`), counts its floating-point operations as
    `per_call + per_row * R + per_pair * P` for R rows and P (row, attended
    key) pairs, from the sequence analysis: a linalg op costs the float ops
    of its body times its iterations (a loop along the sequence counts R),
    an elementwise tensor op one per element, an attention `4 * Hq * D` per
    pair (q.k and p.v, the usual convention; softmax is not counted). Counts
    are per sequence: a dynamic batch counts one.

    It prints to stdout the coefficients and, for each number of generated
    tokens N after a prompt of `prompt-tokens`, the work of greedy
    generation two ways: recomputing the whole sequence at every step (N
    calls of `@f` on P+i rows: quadratic in N, cubic in attention) and
    prefill plus N-1 decode steps of one row (what kvc-incrementalize
    generates: the same body on the new rows, attention over the cache).
    The IR is left unchanged.
  }];
  let options = [
    Option<"promptTokens", "prompt-tokens", "int64_t", /*default=*/"16",
           "prompt length before generation">,
    ListOption<"generatedTokens", "generated-tokens", "int64_t",
               "numbers of generated tokens to tabulate (default 64,256,1024)">,
  ];
}

#endif // KVC_DIALECT_KVC_TRANSFORMS_PASSES_TD
