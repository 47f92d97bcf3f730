//===- KVCOps.td - kvc dialect operations ------------------*- tablegen -*-===//
#ifndef KVC_DIALECT_KVC_IR_KVCOPS_TD
#define KVC_DIALECT_KVC_IR_KVCOPS_TD

include "kvc/Dialect/KVC/IR/KVCTypes.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

def KVC_CacheResource : Resource<"::mlir::kvc::CacheResource">;

/// A 4-d `[batch, heads, seq, head_dim]` tensor of a float type attention
/// runs on.
def KVC_HeadsTensor : TensorRankOf<[F16, BF16, F32], [4]>;
/// Per-sequence positions or lengths.
def KVC_PositionsTensor : TensorRankOf<[I32], [1]>;

//===----------------------------------------------------------------------===//
// Full-sequence attention
//===----------------------------------------------------------------------===//

def KVC_AttentionOp : KVC_Op<"attention", [Pure,
    AllTypesMatch<["query", "result"]>, AllTypesMatch<["key", "value"]>]> {
  let summary = "scaled dot-product attention over whole sequences";
  let description = [{
    For every batch `b`, query head `h` and query row `i`:

    ```
    out[b, h, i] = softmax_j(scale * q[b, h, i] . k[b, h / g, j] + mask[b, h?, i, j]) . v[b, h / g]
    ```

    where `g = Hq / Hkv` query heads share one key/value head (1: multi-head,
    Hq: multi-query, otherwise grouped-query attention). With `causal`, row
    `i` attends to rows `j <= i` only, and query and key lengths must be
    equal. `scale` defaults to `1/sqrt(head_dim)`. The optional additive
    `mask` is `[B, 1 or Hq, Sq, Skv]`; a row that the mask hides entirely
    comes out NaN, as in PyTorch. Scores, softmax and the weighted sum of
    values are computed in f32 and the result is rounded to the element type.

    ```mlir
    %o = kvc.attention %q, %k, %v {causal}
        : tensor<2x32x128x64xbf16>, tensor<2x8x128x64xbf16>
    ```
  }];
  let arguments = (ins KVC_HeadsTensor:$query, KVC_HeadsTensor:$key,
                       KVC_HeadsTensor:$value, Optional<KVC_HeadsTensor>:$mask,
                       UnitAttr:$causal, OptionalAttr<F32Attr>:$scale);
  let results = (outs KVC_HeadsTensor:$result);
  let assemblyFormat = [{
    $query `,` $key `,` $value (`mask` `(` $mask^ `:` type($mask) `)`)?
    attr-dict `:` type($query) `,` type($key)
  }];
  let hasVerifier = 1;
  let hasCanonicalizer = 1;
  let extraClassDeclaration = [{
    /// The score scale: the `scale` attribute, else `1/sqrt(head_dim)`.
    float getScaleOrDefault();
  }];
}

//===----------------------------------------------------------------------===//
// Caches
//===----------------------------------------------------------------------===//

def KVC_CacheAllocOp : KVC_Op<"cache.alloc",
    [MemoryEffects<[MemAlloc<KVC_CacheResource>]>]> {
  let summary = "allocate an empty key/value cache";
  let description = [{
    Allocates a cache with every sequence's length 0. Takes one `index`
    operand per dynamic dim of the type, in order (batch, then capacity).

    ```mlir
    %c = kvc.cache.alloc(%batch, %capacity) : !kvc.cache<?x8x?x128xbf16>
    ```
  }];
  let arguments = (ins Variadic<Index>:$dynamicSizes);
  let results = (outs Res<KVC_CacheType, "", [MemAlloc<KVC_CacheResource>]>:$cache);
  let assemblyFormat = "`(` $dynamicSizes `)` attr-dict `:` qualified(type($cache))";
  let hasVerifier = 1;
  let hasCanonicalizer = 1;
}

def KVC_CacheDeallocOp : KVC_Op<"cache.dealloc"> {
  let summary = "free a key/value cache";
  let description = [{
    ```mlir
    kvc.cache.dealloc %c : !kvc.cache<?x8x?x128xbf16>
    ```
  }];
  let arguments = (ins Arg<KVC_CacheType, "", [MemFree<KVC_CacheResource>]>:$cache);
  let assemblyFormat = "$cache attr-dict `:` qualified(type($cache))";
}

def KVC_CacheAppendOp : KVC_Op<"cache.append", [
    AllTypesMatch<["key", "value"]>,
    TypesMatchWith<"positions are one i32 per sequence", "cache", "positions",
                   "::llvm::cast<::mlir::kvc::CacheType>($_self).getLengthsType()">]> {
  let summary = "write key/value rows into a cache at per-sequence positions";
  let description = [{
    For each sequence `b`, writes the `T` rows `key[b, :, t]` and
    `value[b, :, t]` at cache rows `positions[b] + t` and sets the length of
    `b` to `positions[b] + T`. Rows already there are overwritten, so a
    position below the current length rewinds the sequence. A position must
    lie in `[0, length]` (no unwritten gaps) and `positions[b] + T` may not
    exceed the capacity; lowerings check both at run time.

    With `rotary_theta`, each key row is rotated to its position
    `p = positions[b] + t` on the way in (the rotate-half convention of
    Llama models): for `i < D/2` and `f = theta^(-2i/D)`,
    `k'[i] = k[i] cos(p f) - k[i + D/2] sin(p f)` and
    `k'[i + D/2] = k[i + D/2] cos(p f) + k[i] sin(p f)`, computed in f32.
    Values are stored as given.

    ```mlir
    kvc.cache.append %c[%pos], %k, %v
        : !kvc.cache<?x8x?x128xbf16>, tensor<?x8x1x128xbf16>
    kvc.cache.append %c[%pos], %k, %v {rotary_theta = 1.0e+04 : f32}
        : !kvc.cache<?x8x?x128xbf16>, tensor<?x8x1x128xbf16>
    ```
  }];
  let arguments = (ins
    Arg<KVC_CacheType, "", [MemRead<KVC_CacheResource>, MemWrite<KVC_CacheResource>]>:$cache,
    KVC_PositionsTensor:$positions, KVC_HeadsTensor:$key, KVC_HeadsTensor:$value,
    OptionalAttr<F32Attr>:$rotary_theta);
  let assemblyFormat = [{
    $cache `[` $positions `]` `,` $key `,` $value attr-dict `:` qualified(type($cache)) `,` type($key)
  }];
  let hasVerifier = 1;
}

def KVC_CacheTruncateOp : KVC_Op<"cache.truncate", [
    TypesMatchWith<"lengths are one i32 per sequence", "cache", "lengths",
                   "::llvm::cast<::mlir::kvc::CacheType>($_self).getLengthsType()">]> {
  let summary = "shorten each sequence of a cache to a given length";
  let description = [{
    Sets the length of each sequence `b` to `lengths[b]`, which must lie in
    `[0, length[b]]`; lowerings check it at run time. The rows past the new
    length stay in memory and later appends overwrite them. A prefill that
    appends padded prompts truncates to the true prompt lengths.

    ```mlir
    kvc.cache.truncate %c[%lengths] : !kvc.cache<?x8x?x128xbf16>
    ```
  }];
  let arguments = (ins
    Arg<KVC_CacheType, "", [MemRead<KVC_CacheResource>, MemWrite<KVC_CacheResource>]>:$cache,
    KVC_PositionsTensor:$lengths);
  let assemblyFormat = "$cache `[` $lengths `]` attr-dict `:` qualified(type($cache))";
}

def KVC_CacheLengthOp : KVC_Op<"cache.length", [
    TypesMatchWith<"lengths are one i32 per sequence", "cache", "result",
                   "::llvm::cast<::mlir::kvc::CacheType>($_self).getLengthsType()">]> {
  let summary = "the number of valid rows of each sequence in a cache";
  let description = [{
    ```mlir
    %len = kvc.cache.length %c : !kvc.cache<?x8x?x128xbf16>
    ```
  }];
  let arguments = (ins Arg<KVC_CacheType, "", [MemRead<KVC_CacheResource>]>:$cache);
  let results = (outs KVC_PositionsTensor:$result);
  let assemblyFormat = "$cache attr-dict `:` qualified(type($cache))";
}

def KVC_DecodeAttentionOp : KVC_Op<"decode_attention", [
    AllTypesMatch<["query", "result"]>,
    TypesMatchWith<"positions are one i32 per sequence", "cache", "positions",
                   "::llvm::cast<::mlir::kvc::CacheType>($_self).getLengthsType()">]> {
  let summary = "attention of new query rows over a key/value cache";
  let description = [{
    The query rows of the `T` newest positions of each sequence attend over
    the cached keys and values. Query row `t` of sequence `b` stands at
    position `p = positions[b] + t` and attends to cache rows
    `j < min(p + 1, length[b])`: the rows of earlier positions and, when the
    new rows were appended first, causally to the new rows themselves. The
    head grouping, `scale` and f32 arithmetic are those of `kvc.attention`.
    A row with no cache row to attend to comes out zero.

    ```mlir
    %o = kvc.decode_attention %q, %c[%pos]
        : tensor<?x32x1x128xbf16>, !kvc.cache<?x8x?x128xbf16>
    ```
  }];
  let arguments = (ins KVC_HeadsTensor:$query,
    Arg<KVC_CacheType, "", [MemRead<KVC_CacheResource>]>:$cache,
    KVC_PositionsTensor:$positions, OptionalAttr<F32Attr>:$scale);
  let results = (outs KVC_HeadsTensor:$result);
  let assemblyFormat = [{
    $query `,` $cache `[` $positions `]` attr-dict `:` type($query) `,` qualified(type($cache))
  }];
  let hasVerifier = 1;
  let hasCanonicalizer = 1;
  let extraClassDeclaration = [{
    /// The score scale: the `scale` attribute, else `1/sqrt(head_dim)`.
    float getScaleOrDefault();
  }];
}

#endif // KVC_DIALECT_KVC_IR_KVCOPS_TD
