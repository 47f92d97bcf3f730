// RUN: kvc-opt %s -split-input-file | kvc-opt -split-input-file | FileCheck %s
// RUN: kvc-opt %s -split-input-file -mlir-print-op-generic | kvc-opt -split-input-file | FileCheck %s

// Tests that causal grouped-query attention round-trips.
// CHECK-LABEL: func @attention_gqa
// CHECK: kvc.attention %{{.+}}, %{{.+}}, %{{.+}} {causal} : tensor<2x32x128x64xbf16>, tensor<2x8x128x64xbf16>
func.func @attention_gqa(%q: tensor<2x32x128x64xbf16>, %k: tensor<2x8x128x64xbf16>,
                         %v: tensor<2x8x128x64xbf16>) -> tensor<2x32x128x64xbf16> {
  %o = kvc.attention %q, %k, %v {causal} : tensor<2x32x128x64xbf16>, tensor<2x8x128x64xbf16>
  return %o : tensor<2x32x128x64xbf16>
}

// -----

// Tests that a masked, scaled, non-causal attention with dynamic batch and
// lengths round-trips.
// CHECK-LABEL: func @attention_masked
// CHECK: kvc.attention %{{.+}}, %{{.+}}, %{{.+}} mask(%{{.+}} : tensor<?x1x?x?xf32>) {scale = 2.500000e-01 : f32} : tensor<?x4x?x16xf32>, tensor<?x1x?x16xf32>
func.func @attention_masked(%q: tensor<?x4x?x16xf32>, %k: tensor<?x1x?x16xf32>,
                            %v: tensor<?x1x?x16xf32>, %m: tensor<?x1x?x?xf32>) -> tensor<?x4x?x16xf32> {
  %o = kvc.attention %q, %k, %v mask(%m : tensor<?x1x?x?xf32>) {scale = 0.25 : f32}
      : tensor<?x4x?x16xf32>, tensor<?x1x?x16xf32>
  return %o : tensor<?x4x?x16xf32>
}

// -----

// Tests that the cache ops round-trip on a cache with dynamic batch and
// capacity.
// CHECK-LABEL: func @cache_ops
// CHECK: %[[C:.+]] = kvc.cache.alloc(%{{.+}}, %{{.+}}) : !kvc.cache<?x8x?x128xf16>
// CHECK: kvc.cache.append %[[C]][%{{.+}}], %{{.+}}, %{{.+}} : !kvc.cache<?x8x?x128xf16>, tensor<?x8x1x128xf16>
// CHECK: kvc.cache.append %[[C]][%{{.+}}], %{{.+}}, %{{.+}} {rotary_theta = 1.000000e+04 : f32} : !kvc.cache<?x8x?x128xf16>, tensor<?x8x1x128xf16>
// CHECK: kvc.decode_attention %{{.+}}, %[[C]][%{{.+}}] : tensor<?x32x1x128xf16>, !kvc.cache<?x8x?x128xf16>
// CHECK: kvc.cache.length %[[C]] : !kvc.cache<?x8x?x128xf16>
// CHECK: kvc.cache.dealloc %[[C]] : !kvc.cache<?x8x?x128xf16>
func.func @cache_ops(%batch: index, %capacity: index, %pos: tensor<?xi32>,
                     %k: tensor<?x8x1x128xf16>, %q: tensor<?x32x1x128xf16>)
    -> (tensor<?x32x1x128xf16>, tensor<?xi32>) {
  %c = kvc.cache.alloc(%batch, %capacity) : !kvc.cache<?x8x?x128xf16>
  kvc.cache.append %c[%pos], %k, %k : !kvc.cache<?x8x?x128xf16>, tensor<?x8x1x128xf16>
  kvc.cache.append %c[%pos], %k, %k {rotary_theta = 1.0e+04 : f32} : !kvc.cache<?x8x?x128xf16>, tensor<?x8x1x128xf16>
  %o = kvc.decode_attention %q, %c[%pos] : tensor<?x32x1x128xf16>, !kvc.cache<?x8x?x128xf16>
  %len = kvc.cache.length %c : !kvc.cache<?x8x?x128xf16>
  kvc.cache.dealloc %c : !kvc.cache<?x8x?x128xf16>
  return %o, %len : tensor<?x32x1x128xf16>, tensor<?xi32>
}

// -----

// Tests that a fully static cache, passed across a function boundary, and a
// multi-row decode with an explicit scale round-trip.
// CHECK-LABEL: func @static_cache
// CHECK-SAME: !kvc.cache<4x1x4096x64xf32>
// CHECK: kvc.decode_attention %{{.+}}, %{{.+}}[%{{.+}}] {scale = 1.000000e+00 : f32} : tensor<4x8x3x64xf32>, !kvc.cache<4x1x4096x64xf32>
func.func @static_cache(%c: !kvc.cache<4x1x4096x64xf32>, %pos: tensor<4xi32>,
                        %q: tensor<4x8x3x64xf32>) -> tensor<4x8x3x64xf32> {
  %o = kvc.decode_attention %q, %c[%pos] {scale = 1.0 : f32} : tensor<4x8x3x64xf32>, !kvc.cache<4x1x4096x64xf32>
  return %o : tensor<4x8x3x64xf32>
}
