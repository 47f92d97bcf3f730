// RUN: not kvc-opt %s -split-input-file 2>&1 | FileCheck %s --implicit-check-not="Stack dump"

// Malformed and mismatched input, one chunk each, as a user might write it:
// every chunk must end in a located error and none may crash kvc-opt.
// (Run under -DLLVM_USE_SANITIZER="Address;Undefined" these are also
// ASan/UBSan clean.)

func.func @f(%c: !kvc.cache<>) { return }

// -----

func.func @f(%c: !kvc.cache<1x2x3x4>) { return }

// -----

func.func @f(%c: !kvc.cache<1x2x3x4x5xf32>) { return }

// -----

func.func @f(%c: !kvc.cache<-1x2x3x4xf32>) { return }

// -----

func.func @f(%c: !kvc.cache<1x2x3x4xf32) { return }

// -----

func.func @f(%c: !kvc.cache<?x?x?x?xf32>) { return }

// -----

func.func @f(%c: !kvc.cache<1x2x3x4xvector<4xf32>>) { return }

// -----

func.func @f(%c: !kvc.cache<1x2x3x4xtensor<2xf32>>) { return }

// -----

func.func @f(%c: !kvc.cachex<1x2x3x4xf32>) { return }

// -----

func.func @f(%c: !kvc.cache<1x1x1x99999999999999999999xf32>) { return }

// -----

func.func @f(%q: tensor<1x1x1x1xf32>) { %o = kvc.attention %q, %q : tensor<1x1x1x1xf32>, tensor<1x1x1x1xf32>  return }

// -----

func.func @f(%q: tensor<1x1x1x1xf32>) { %o = kvc.attention %q, %q, %q return }

// -----

func.func @f(%q: tensor<1x1x1x1xf32>) { %o = kvc.attention %q, %q, %q : tensor<1x1x1x1xf32> return }

// -----

func.func @f(%q: tensor<*xf32>) { %o = kvc.attention %q, %q, %q : tensor<*xf32>, tensor<*xf32> return }

// -----

func.func @f(%q: memref<1x1x1x1xf32>) { %o = kvc.attention %q, %q, %q : memref<1x1x1x1xf32>, memref<1x1x1x1xf32> return }

// -----

func.func @f(%q: tensor<1x0x1x1xf32>, %k: tensor<1x0x1x1xf32>) { %o = kvc.attention %q, %k, %k : tensor<1x0x1x1xf32>, tensor<1x0x1x1xf32> return }

// -----

func.func @f(%q: tensor<1x4x1x1xf32>, %k: tensor<1x0x1x1xf32>) { %o = kvc.attention %q, %k, %k : tensor<1x4x1x1xf32>, tensor<1x0x1x1xf32> return }

// -----

func.func @f(%q: tensor<1x1x1x1xf32>) { %o = kvc.attention %q, %q, %q {causal = 3} : tensor<1x1x1x1xf32>, tensor<1x1x1x1xf32> return }

// -----

func.func @f(%q: tensor<1x1x1x1xf32>) { %o = kvc.attention %q, %q, %q {scale = "x"} : tensor<1x1x1x1xf32>, tensor<1x1x1x1xf32> return }

// -----

func.func @f(%q: tensor<1x1x1x1xf32>) { %o = kvc.attention %q, %q, %q {scale = 1.0 : f64} : tensor<1x1x1x1xf32>, tensor<1x1x1x1xf32> return }

// -----

func.func @f(%q: tensor<1x1x1x1xf32>) { %o = kvc.attention %q, %q, %q mask(%q) : tensor<1x1x1x1xf32>, tensor<1x1x1x1xf32> return }

// -----

func.func @f(%q: tensor<1x1x1x1xf32>, %m: tensor<1x1x1xf32>) { %o = kvc.attention %q, %q, %q mask(%m : tensor<1x1x1xf32>) : tensor<1x1x1x1xf32>, tensor<1x1x1x1xf32> return }

// -----

func.func @f() { %c = kvc.cache.alloc : !kvc.cache<1x1x1x1xf32> return }

// -----

func.func @f(%n: index) { %c = kvc.cache.alloc(%n, %n, %n) : !kvc.cache<?x1x?x1xf32> return }

// -----

func.func @f(%n: index) { %c = kvc.cache.alloc(%n) : !kvc.cache<1x1x1x1xf32> return }

// -----

func.func @f(%n: index) { %c = kvc.cache.alloc(%n) : tensor<1xf32> return }

// -----

func.func @f(%c: !kvc.cache<1x1x4x1xf32>, %k: tensor<1x1x1x1xf32>) { kvc.cache.append %c, %k, %k : !kvc.cache<1x1x4x1xf32>, tensor<1x1x1x1xf32> return }

// -----

func.func @f(%c: !kvc.cache<1x1x4x1xf32>, %k: tensor<1x1x1x1xf32>, %p: tensor<1xi32>) { kvc.cache.append %c[%p], %k : !kvc.cache<1x1x4x1xf32>, tensor<1x1x1x1xf32> return }

// -----

func.func @f(%c: !kvc.cache<1x1x4x1xf32>, %k: tensor<1x1x1x1xf32>, %p: tensor<1xi32>) { kvc.cache.append %k[%p], %k, %k : !kvc.cache<1x1x4x1xf32>, tensor<1x1x1x1xf32> return }

// -----

func.func @f(%c: tensor<1xf32>) { %l = kvc.cache.length %c : tensor<1xf32> return }

// -----

func.func @f(%c: !kvc.cache<1x1x4x1xf32>) { %l = "kvc.cache.length"(%c) : (!kvc.cache<1x1x4x1xf32>) -> tensor<1xf32> return }

// -----

func.func @f(%c: !kvc.cache<1x1x4x1xf32>) { %l = "kvc.cache.length"(%c, %c) : (!kvc.cache<1x1x4x1xf32>, !kvc.cache<1x1x4x1xf32>) -> tensor<1xi32> return }

// -----

func.func @f(%c: !kvc.cache<1x1x4x1xf32>) { "kvc.cache.dealloc"() : () -> () return }

// -----

func.func @f(%q: tensor<1x1x1x1xf32>) { %o = "kvc.attention"(%q, %q, %q) <{operandSegmentSizes = array<i32: 1, 1, 1, 0>, scale = 2 : i32}> : (tensor<1x1x1x1xf32>, tensor<1x1x1x1xf32>, tensor<1x1x1x1xf32>) -> tensor<1x1x1x1xf32> return }

// -----

func.func @f(%q: tensor<1x1x1x1xf32>, %c: !kvc.cache<1x1x4x1xf32>, %p: tensor<1xi32>) { %o = "kvc.decode_attention"(%q, %c, %p) : (tensor<1x1x1x1xf32>, !kvc.cache<1x1x4x1xf32>, tensor<1xi32>) -> tensor<2x1x1x1xf32> return }

// -----

func.func @f(%q: tensor<1x1x1x1xf32>, %c: !kvc.cache<1x1x4x1xf32>, %p: tensor<1xi32>) { %o = kvc.decode_attention %q, %c[%p, %p] : tensor<1x1x1x1xf32>, !kvc.cache<1x1x4x1xf32> return }

// -----

func.func @f(%q: tensor<1x1x1x1xf32>, %c: !kvc.cache<1x1x4x1xf32>) { %o = kvc.decode_attention %q, %c : tensor<1x1x1x1xf32>, !kvc.cache<1x1x4x1xf32> return }

// -----

kvc.attention

// -----

!kvc.cache<1x1x1x1xf32>

// -----

func.func @f() -> !kvc.cache<1x1x1x1xf32> { %c = kvc.cache.alloc() : !kvc.cache<1x1x1x1xf32> %d = kvc.cache.alloc() : !kvc.cache<1x1x1x1xf32> return %c, %d : !kvc.cache<1x1x1x1xf32> }

// CHECK-COUNT-40: malformed.mlir:{{[0-9]+}}:{{[0-9]+}}: error:
