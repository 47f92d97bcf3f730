// RUN: kvc-opt %s -split-input-file -verify-diagnostics

// Tests that a cache of integers is rejected.
// expected-error @+1 {{cache element type must be f16, bf16 or f32, found 'i32'}}
func.func private @f(%c: !kvc.cache<1x1x8x8xi32>)

// -----

// Tests that a cache with dynamic kv heads is rejected.
// expected-error @+1 {{cache kv_heads must be static}}
func.func private @f(%c: !kvc.cache<1x?x8x8xf32>)

// -----

// Tests that a cache with dynamic head_dim is rejected.
// expected-error @+1 {{cache head_dim must be static}}
func.func private @f(%c: !kvc.cache<1x1x8x?xf32>)

// -----

// Tests that a cache with an empty batch is rejected.
// expected-error @+1 {{cache batch must be positive, found 0}}
func.func private @f(%c: !kvc.cache<0x1x8x8xf32>)

// -----

// Tests that a cache with no kv heads is rejected.
// expected-error @+1 {{cache kv_heads must be positive, found 0}}
func.func private @f(%c: !kvc.cache<1x0x8x8xf32>)

// -----

// Tests that a cache with no capacity is rejected.
// expected-error @+1 {{cache capacity must be positive, found 0}}
func.func private @f(%c: !kvc.cache<1x1x0x8xf32>)

// -----

// Tests that a cache type needs exactly four dims.
// expected-error @+1 {{expected 4 dims (batch x kv_heads x capacity x head_dim) in a cache type, found 3}}
func.func private @f(%c: !kvc.cache<1x8x8xf32>)

// -----

// Tests that a cache type needs an element type.
// expected-error @+1 {{expected non-function type}}
func.func private @f(%c: !kvc.cache<1x1x8x8x>)

// -----

// Tests that attention needs static query heads.
func.func @f(%q: tensor<1x?x4x8xf32>, %k: tensor<1x1x4x8xf32>, %v: tensor<1x1x4x8xf32>) {
  // expected-error @+1 {{query heads must be static, found 'tensor<1x?x4x8xf32>'}}
  %o = kvc.attention %q, %k, %v : tensor<1x?x4x8xf32>, tensor<1x1x4x8xf32>
  return
}

// -----

// Tests that attention needs a static query head_dim.
func.func @f(%q: tensor<1x2x4x?xf32>, %k: tensor<1x1x4x8xf32>, %v: tensor<1x1x4x8xf32>) {
  // expected-error @+1 {{query head_dim must be static, found 'tensor<1x2x4x?xf32>'}}
  %o = kvc.attention %q, %k, %v : tensor<1x2x4x?xf32>, tensor<1x1x4x8xf32>
  return
}

// -----

// Tests that attention needs static key heads.
func.func @f(%q: tensor<1x2x4x8xf32>, %k: tensor<1x?x4x8xf32>, %v: tensor<1x?x4x8xf32>) {
  // expected-error @+1 {{key heads must be static, found 'tensor<1x?x4x8xf32>'}}
  %o = kvc.attention %q, %k, %v : tensor<1x2x4x8xf32>, tensor<1x?x4x8xf32>
  return
}

// -----

// Tests that attention rejects a batch mismatch.
func.func @f(%q: tensor<2x2x4x8xf32>, %k: tensor<3x1x4x8xf32>, %v: tensor<3x1x4x8xf32>) {
  // expected-error @+1 {{key batch 3 does not match query batch 2}}
  %o = kvc.attention %q, %k, %v : tensor<2x2x4x8xf32>, tensor<3x1x4x8xf32>
  return
}

// -----

// Tests that query heads must be a multiple of key heads.
func.func @f(%q: tensor<1x6x4x8xf32>, %k: tensor<1x4x4x8xf32>, %v: tensor<1x4x4x8xf32>) {
  // expected-error @+1 {{query heads 6 are not a multiple of key heads 4}}
  %o = kvc.attention %q, %k, %v : tensor<1x6x4x8xf32>, tensor<1x4x4x8xf32>
  return
}

// -----

// Tests that attention rejects a head_dim mismatch.
func.func @f(%q: tensor<1x2x4x64xf32>, %k: tensor<1x2x4x32xf32>, %v: tensor<1x2x4x32xf32>) {
  // expected-error @+1 {{key head_dim 32 does not match query head_dim 64}}
  %o = kvc.attention %q, %k, %v : tensor<1x2x4x64xf32>, tensor<1x2x4x32xf32>
  return
}

// -----

// Tests that attention rejects mixed element types.
func.func @f(%q: tensor<1x2x4x8xf32>, %k: tensor<1x2x4x8xf16>, %v: tensor<1x2x4x8xf16>) {
  // expected-error @+1 {{key element type 'f16' does not match query element type 'f32'}}
  %o = kvc.attention %q, %k, %v : tensor<1x2x4x8xf32>, tensor<1x2x4x8xf16>
  return
}

// -----

// Tests that keys and values must have one type (generic form: the pretty
// form infers the value type from the key type).
func.func @f(%q: tensor<1x2x4x8xf32>, %k: tensor<1x2x4x8xf32>, %v: tensor<1x2x5x8xf32>) {
  // expected-error @+1 {{all of {key, value} have same type}}
  %o = "kvc.attention"(%q, %k, %v) <{operandSegmentSizes = array<i32: 1, 1, 1, 0>}>
      : (tensor<1x2x4x8xf32>, tensor<1x2x4x8xf32>, tensor<1x2x5x8xf32>) -> tensor<1x2x4x8xf32>
  return
}

// -----

// Tests that a zero scale is rejected.
func.func @f(%q: tensor<1x2x4x8xf32>, %k: tensor<1x2x4x8xf32>, %v: tensor<1x2x4x8xf32>) {
  // expected-error @+1 {{scale must be finite and nonzero, found 0}}
  %o = kvc.attention %q, %k, %v {scale = 0.0 : f32} : tensor<1x2x4x8xf32>, tensor<1x2x4x8xf32>
  return
}

// -----

// Tests that an infinite scale is rejected.
func.func @f(%q: tensor<1x2x4x8xf32>, %k: tensor<1x2x4x8xf32>, %v: tensor<1x2x4x8xf32>) {
  // expected-error @+1 {{scale must be finite and nonzero, found INF}}
  %o = kvc.attention %q, %k, %v {scale = 0x7F800000 : f32} : tensor<1x2x4x8xf32>, tensor<1x2x4x8xf32>
  return
}

// -----

// Tests that causal attention needs equal query and key lengths.
func.func @f(%q: tensor<1x2x4x8xf32>, %k: tensor<1x2x8x8xf32>, %v: tensor<1x2x8x8xf32>) {
  // expected-error @+1 {{causal attention key length 8 does not match query length 4}}
  %o = kvc.attention %q, %k, %v {causal} : tensor<1x2x4x8xf32>, tensor<1x2x8x8xf32>
  return
}

// -----

// Tests that mask heads must be 1 or the query heads.
func.func @f(%q: tensor<1x4x4x8xf32>, %k: tensor<1x1x6x8xf32>, %v: tensor<1x1x6x8xf32>, %m: tensor<1x2x4x6xf32>) {
  // expected-error @+1 {{mask heads 2 must be 1 or the query heads 4}}
  %o = kvc.attention %q, %k, %v mask(%m : tensor<1x2x4x6xf32>) : tensor<1x4x4x8xf32>, tensor<1x1x6x8xf32>
  return
}

// -----

// Tests that the mask batch must match.
func.func @f(%q: tensor<1x4x4x8xf32>, %k: tensor<1x1x6x8xf32>, %v: tensor<1x1x6x8xf32>, %m: tensor<2x1x4x6xf32>) {
  // expected-error @+1 {{mask batch 2 does not match query batch 1}}
  %o = kvc.attention %q, %k, %v mask(%m : tensor<2x1x4x6xf32>) : tensor<1x4x4x8xf32>, tensor<1x1x6x8xf32>
  return
}

// -----

// Tests that the mask query length must match.
func.func @f(%q: tensor<1x4x4x8xf32>, %k: tensor<1x1x6x8xf32>, %v: tensor<1x1x6x8xf32>, %m: tensor<1x4x5x6xf32>) {
  // expected-error @+1 {{mask query length 5 does not match query length 4}}
  %o = kvc.attention %q, %k, %v mask(%m : tensor<1x4x5x6xf32>) : tensor<1x4x4x8xf32>, tensor<1x1x6x8xf32>
  return
}

// -----

// Tests that the mask key length must match.
func.func @f(%q: tensor<1x4x4x8xf32>, %k: tensor<1x1x6x8xf32>, %v: tensor<1x1x6x8xf32>, %m: tensor<1x1x4x7xf32>) {
  // expected-error @+1 {{mask key length 7 does not match key length 6}}
  %o = kvc.attention %q, %k, %v mask(%m : tensor<1x1x4x7xf32>) : tensor<1x4x4x8xf32>, tensor<1x1x6x8xf32>
  return
}

// -----

// Tests that the mask element type must match.
func.func @f(%q: tensor<1x4x4x8xf32>, %k: tensor<1x1x6x8xf32>, %v: tensor<1x1x6x8xf32>, %m: tensor<1x1x4x6xbf16>) {
  // expected-error @+1 {{mask element type 'bf16' does not match query element type 'f32'}}
  %o = kvc.attention %q, %k, %v mask(%m : tensor<1x1x4x6xbf16>) : tensor<1x4x4x8xf32>, tensor<1x1x6x8xf32>
  return
}

// -----

// Tests that attention needs rank-4 operands.
func.func @f(%q: tensor<2x4x8xf32>, %k: tensor<1x1x6x8xf32>, %v: tensor<1x1x6x8xf32>) {
  // expected-error @+1 {{operand #0 must be 4D tensor of 16-bit float or bfloat16 type or 32-bit float values}}
  %o = kvc.attention %q, %k, %v : tensor<2x4x8xf32>, tensor<1x1x6x8xf32>
  return
}

// -----

// Tests that attention needs float operands.
func.func @f(%q: tensor<1x1x4x8xf32>, %k: tensor<1x1x6x8xi8>, %v: tensor<1x1x6x8xi8>) {
  // expected-error @+1 {{operand #1 must be 4D tensor of 16-bit float or bfloat16 type or 32-bit float values}}
  %o = kvc.attention %q, %k, %v : tensor<1x1x4x8xf32>, tensor<1x1x6x8xi8>
  return
}

// -----

// Tests that cache.alloc needs one size per dynamic dim.
func.func @f(%n: index) {
  // expected-error @+1 {{expected 2 dynamic size operands for '!kvc.cache<?x8x?x64xf32>', found 1}}
  %c = kvc.cache.alloc(%n) : !kvc.cache<?x8x?x64xf32>
  return
}

// -----

// Tests that append rejects a batch mismatch.
func.func @f(%c: !kvc.cache<2x8x?x64xf32>, %p: tensor<2xi32>, %k: tensor<3x8x1x64xf32>, %v: tensor<3x8x1x64xf32>) {
  // expected-error @+1 {{key batch 3 does not match cache batch 2}}
  kvc.cache.append %c[%p], %k, %v : !kvc.cache<2x8x?x64xf32>, tensor<3x8x1x64xf32>
  return
}

// -----

// Tests that append rejects a head count mismatch.
func.func @f(%c: !kvc.cache<?x8x?x64xf32>, %p: tensor<?xi32>, %k: tensor<1x4x1x64xf32>, %v: tensor<1x4x1x64xf32>) {
  // expected-error @+1 {{key heads 4 does not match cache kv_heads 8}}
  kvc.cache.append %c[%p], %k, %v : !kvc.cache<?x8x?x64xf32>, tensor<1x4x1x64xf32>
  return
}

// -----

// Tests that append rejects a head_dim mismatch.
func.func @f(%c: !kvc.cache<?x8x?x64xf32>, %p: tensor<?xi32>, %k: tensor<1x8x1x128xf32>, %v: tensor<1x8x1x128xf32>) {
  // expected-error @+1 {{key head_dim 128 does not match cache head_dim 64}}
  kvc.cache.append %c[%p], %k, %v : !kvc.cache<?x8x?x64xf32>, tensor<1x8x1x128xf32>
  return
}

// -----

// Tests that append rejects an element type mismatch.
func.func @f(%c: !kvc.cache<?x8x?x64xf32>, %p: tensor<?xi32>, %k: tensor<1x8x1x64xbf16>, %v: tensor<1x8x1x64xbf16>) {
  // expected-error @+1 {{key element type 'bf16' does not match cache element type 'f32'}}
  kvc.cache.append %c[%p], %k, %v : !kvc.cache<?x8x?x64xf32>, tensor<1x8x1x64xbf16>
  return
}

// -----

// Tests that append rejects more rows than the capacity.
func.func @f(%c: !kvc.cache<?x8x16x64xf32>, %p: tensor<?xi32>, %k: tensor<1x8x20x64xf32>, %v: tensor<1x8x20x64xf32>) {
  // expected-error @+1 {{appends 20 rows per sequence to a cache of capacity 16}}
  kvc.cache.append %c[%p], %k, %v : !kvc.cache<?x8x16x64xf32>, tensor<1x8x20x64xf32>
  return
}

// -----

// Tests that append needs one i32 position per sequence (generic form).
func.func @f(%c: !kvc.cache<2x8x16x64xf32>, %p: tensor<3xi32>, %k: tensor<2x8x1x64xf32>) {
  // expected-error @+1 {{positions are one i32 per sequence}}
  "kvc.cache.append"(%c, %p, %k, %k)
      : (!kvc.cache<2x8x16x64xf32>, tensor<3xi32>, tensor<2x8x1x64xf32>, tensor<2x8x1x64xf32>) -> ()
  return
}

// -----

// Tests that append needs keys and values of one type (generic form).
func.func @f(%c: !kvc.cache<?x8x?x64xf32>, %p: tensor<?xi32>, %k: tensor<1x8x1x64xf32>, %v: tensor<1x8x2x64xf32>) {
  // expected-error @+1 {{all of {key, value} have same type}}
  "kvc.cache.append"(%c, %p, %k, %v)
      : (!kvc.cache<?x8x?x64xf32>, tensor<?xi32>, tensor<1x8x1x64xf32>, tensor<1x8x2x64xf32>) -> ()
  return
}

// -----

// Tests that decode attention rejects a batch mismatch.
func.func @f(%q: tensor<3x8x1x64xf32>, %c: !kvc.cache<2x8x?x64xf32>, %p: tensor<2xi32>) {
  // expected-error @+1 {{cache batch 2 does not match query batch 3}}
  %o = kvc.decode_attention %q, %c[%p] : tensor<3x8x1x64xf32>, !kvc.cache<2x8x?x64xf32>
  return
}

// -----

// Tests that decode attention needs query heads a multiple of cache heads.
func.func @f(%q: tensor<1x12x1x64xf32>, %c: !kvc.cache<?x8x?x64xf32>, %p: tensor<?xi32>) {
  // expected-error @+1 {{query heads 12 are not a multiple of cache heads 8}}
  %o = kvc.decode_attention %q, %c[%p] : tensor<1x12x1x64xf32>, !kvc.cache<?x8x?x64xf32>
  return
}

// -----

// Tests that decode attention rejects a head_dim mismatch.
func.func @f(%q: tensor<1x8x1x32xf32>, %c: !kvc.cache<?x8x?x64xf32>, %p: tensor<?xi32>) {
  // expected-error @+1 {{cache head_dim 64 does not match query head_dim 32}}
  %o = kvc.decode_attention %q, %c[%p] : tensor<1x8x1x32xf32>, !kvc.cache<?x8x?x64xf32>
  return
}

// -----

// Tests that decode attention rejects an element type mismatch.
func.func @f(%q: tensor<1x8x1x64xf16>, %c: !kvc.cache<?x8x?x64xf32>, %p: tensor<?xi32>) {
  // expected-error @+1 {{cache element type 'f32' does not match query element type 'f16'}}
  %o = kvc.decode_attention %q, %c[%p] : tensor<1x8x1x64xf16>, !kvc.cache<?x8x?x64xf32>
  return
}

// -----

// Tests that decode attention needs static query heads.
func.func @f(%q: tensor<1x?x1x64xf32>, %c: !kvc.cache<?x8x?x64xf32>, %p: tensor<?xi32>) {
  // expected-error @+1 {{query heads must be static, found 'tensor<1x?x1x64xf32>'}}
  %o = kvc.decode_attention %q, %c[%p] : tensor<1x?x1x64xf32>, !kvc.cache<?x8x?x64xf32>
  return
}

// -----

// Tests that decode attention rejects a NaN scale.
func.func @f(%q: tensor<1x8x1x64xf32>, %c: !kvc.cache<?x8x?x64xf32>, %p: tensor<?xi32>) {
  // expected-error @+1 {{scale must be finite and nonzero, found nan}}
  %o = kvc.decode_attention %q, %c[%p] {scale = 0x7FC00000 : f32} : tensor<1x8x1x64xf32>, !kvc.cache<?x8x?x64xf32>
  return
}

// -----

// Tests that decode attention needs i32 positions (generic form).
func.func @f(%q: tensor<1x8x1x64xf32>, %c: !kvc.cache<?x8x?x64xf32>, %p: tensor<?xi64>) {
  // expected-error @+1 {{operand #2 must be 1D tensor of 32-bit signless integer values, but got 'tensor<?xi64>'}}
  %o = "kvc.decode_attention"(%q, %c, %p)
      : (tensor<1x8x1x64xf32>, !kvc.cache<?x8x?x64xf32>, tensor<?xi64>) -> tensor<1x8x1x64xf32>
  return
}

// -----

// Tests that cache.length returns one i32 per sequence (generic form).
func.func @f(%c: !kvc.cache<2x8x16x64xf32>) {
  // expected-error @+1 {{lengths are one i32 per sequence}}
  %l = "kvc.cache.length"(%c) : (!kvc.cache<2x8x16x64xf32>) -> tensor<3xi32>
  return
}

// -----

// Tests that the pretty form reads the value type off the key type, so a
// mismatch is a located parse error.
func.func @f(%q: tensor<1x2x4x8xf32>, %k: tensor<1x2x4x8xf32>, %v: tensor<1x2x5x8xf32>) {
  // expected-note @-1 {{prior use here}}
  // expected-error @+1 {{use of value '%v' expects different type than prior uses: 'tensor<1x2x4x8xf32>' vs 'tensor<1x2x5x8xf32>'}}
  %o = kvc.attention %q, %k, %v : tensor<1x2x4x8xf32>, tensor<1x2x4x8xf32>
  return
}

// -----

// Tests that a dynamic size operand must be an index.
func.func @f(%n: i32) {
  // expected-error @+1 {{use of value '%n' expects different type than prior uses: 'index' vs 'i32'}}
  %c = kvc.cache.alloc(%n) : !kvc.cache<?x8x16x64xf32>
  // expected-note @-3 {{prior use here}}
  return
}

// -----

// Tests that attention needs at least one key head (no division by zero).
func.func @f(%q: tensor<1x4x1x8xf32>, %k: tensor<1x0x1x8xf32>) {
  // expected-error @+1 {{key heads must be positive, found 'tensor<1x0x1x8xf32>'}}
  %o = kvc.attention %q, %k, %k : tensor<1x4x1x8xf32>, tensor<1x0x1x8xf32>
  return
}

// -----

// Tests that attention needs a nonzero head_dim (the default scale divides by it).
func.func @f(%q: tensor<1x4x1x0xf32>) {
  // expected-error @+1 {{key head_dim must be positive, found 'tensor<1x4x1x0xf32>'}}
  %o = kvc.attention %q, %q, %q : tensor<1x4x1x0xf32>, tensor<1x4x1x0xf32>
  return
}

// -----

// Tests that a rotary append needs a positive theta.

func.func @rotary_theta(%c: !kvc.cache<1x2x16x8xf32>, %p: tensor<1xi32>, %k: tensor<1x2x1x8xf32>) {
  // expected-error @+1 {{'kvc.cache.append' op rotary_theta must be positive, found -1}}
  kvc.cache.append %c[%p], %k, %k {rotary_theta = -1.0 : f32} : !kvc.cache<1x2x16x8xf32>, tensor<1x2x1x8xf32>
  return
}

// -----

// Tests that a rotary append needs an even head_dim: it rotates pairs.

func.func @rotary_odd(%c: !kvc.cache<1x2x16x7xf32>, %p: tensor<1xi32>, %k: tensor<1x2x1x7xf32>) {
  // expected-error @+1 {{'kvc.cache.append' op rotary embedding needs an even head_dim, found 7}}
  kvc.cache.append %c[%p], %k, %k {rotary_theta = 1.0e+04 : f32} : !kvc.cache<1x2x16x7xf32>, tensor<1x2x1x7xf32>
  return
}
