// RUN: kvc-opt %s -split-input-file -canonicalize | FileCheck %s

// Tests that a scale equal to the default 1/sqrt(head_dim) is dropped.
// CHECK-LABEL: func @default_scale
// CHECK: kvc.attention %{{.+}}, %{{.+}}, %{{.+}} {causal} :
// CHECK: kvc.decode_attention %{{.+}}, %{{.+}}[%{{.+}}] :
func.func @default_scale(%q: tensor<1x2x4x64xf32>, %k: tensor<1x2x4x64xf32>,
                         %c: !kvc.cache<1x2x8x64xf32>, %pos: tensor<1xi32>)
    -> (tensor<1x2x4x64xf32>, tensor<1x2x4x64xf32>) {
  %o = kvc.attention %q, %k, %k {causal, scale = 0.125 : f32} : tensor<1x2x4x64xf32>, tensor<1x2x4x64xf32>
  %d = kvc.decode_attention %q, %c[%pos] {scale = 0.125 : f32} : tensor<1x2x4x64xf32>, !kvc.cache<1x2x8x64xf32>
  return %o, %d : tensor<1x2x4x64xf32>, tensor<1x2x4x64xf32>
}

// -----

// Tests that any other scale is kept.
// CHECK-LABEL: func @other_scale
// CHECK: kvc.attention %{{.+}}, %{{.+}}, %{{.+}} {scale = 1.000000e+00 : f32}
func.func @other_scale(%q: tensor<1x2x4x64xf32>, %k: tensor<1x2x4x64xf32>) -> tensor<1x2x4x64xf32> {
  %o = kvc.attention %q, %k, %k {scale = 1.0 : f32} : tensor<1x2x4x64xf32>, tensor<1x2x4x64xf32>
  return %o : tensor<1x2x4x64xf32>
}

// -----

// Tests that a cache nothing reads is erased with its appends and dealloc.
// CHECK-LABEL: func @write_only_cache
// CHECK-NOT: kvc.
// CHECK: return
func.func @write_only_cache(%k: tensor<2x1x4x8xf16>, %pos: tensor<2xi32>) {
  %c = kvc.cache.alloc() : !kvc.cache<2x1x16x8xf16>
  kvc.cache.append %c[%pos], %k, %k : !kvc.cache<2x1x16x8xf16>, tensor<2x1x4x8xf16>
  kvc.cache.dealloc %c : !kvc.cache<2x1x16x8xf16>
  return
}

// -----

// Tests that a cache that is read stays, and that a read whose result is
// unused goes (reads have no other effect).
// CHECK-LABEL: func @read_cache
// CHECK: kvc.cache.alloc
// CHECK: kvc.cache.append
// CHECK-NOT: kvc.cache.length
// CHECK: kvc.decode_attention
func.func @read_cache(%k: tensor<2x1x4x8xf16>, %pos: tensor<2xi32>) -> tensor<2x1x4x8xf16> {
  %c = kvc.cache.alloc() : !kvc.cache<2x1x16x8xf16>
  kvc.cache.append %c[%pos], %k, %k : !kvc.cache<2x1x16x8xf16>, tensor<2x1x4x8xf16>
  %unused = kvc.cache.length %c : !kvc.cache<2x1x16x8xf16>
  %o = kvc.decode_attention %k, %c[%pos] : tensor<2x1x4x8xf16>, !kvc.cache<2x1x16x8xf16>
  return %o : tensor<2x1x4x8xf16>
}
