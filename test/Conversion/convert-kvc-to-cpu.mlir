// RUN: kvc-opt %s -split-input-file -convert-kvc-to-cpu -verify-each | FileCheck %s --implicit-check-not="kvc."

// Tests that a cache argument becomes its keys, values and lengths memrefs,
// and that decode attention reads the key range [0, min(pos + t + 1, len)).
// CHECK-LABEL: func @decode
// CHECK-SAME: %[[K:[^:]+]]: memref<?x2x?x64xbf16>, %[[V:[^:]+]]: memref<?x2x?x64xbf16>, %[[L:[^:]+]]: memref<?xi32>
// CHECK: %[[Q:.+]] = bufferization.to_buffer %{{.+}} read_only : tensor<?x8x1x64xbf16> to memref<?x8x1x64xbf16>
// CHECK: %[[OUT:.+]] = memref.alloc(%{{.+}}) : memref<?x8x1x64xbf16>
// CHECK: scf.for %[[B:[^ ]+]] =
// CHECK: scf.for %[[H:[^ ]+]] =
// CHECK: %[[KVH:.+]] = arith.divui %[[H]], %{{.+}} : index
// CHECK: scf.for %[[T:[^ ]+]] =
// CHECK: memref.load %[[L]][%[[B]]] : memref<?xi32>
// CHECK: %[[N:.+]] = arith.minsi
// CHECK: scf.for %[[J:[^ ]+]] = %{{.+}} to %[[N]]
// CHECK: memref.load %[[K]][%[[B]], %[[KVH]], %[[J]], %{{.+}}] : memref<?x2x?x64xbf16>
// CHECK: arith.maximumf
// CHECK: math.exp
// CHECK: memref.load %[[V]][%[[B]], %[[KVH]], %{{.+}}, %{{.+}}] : memref<?x2x?x64xbf16>
// CHECK: arith.divf
// CHECK: arith.truncf %{{.+}} : f32 to bf16
// CHECK: memref.store %{{.+}}, %[[OUT]][%[[B]], %[[H]], %[[T]], %{{.+}}]
// CHECK: bufferization.to_tensor %[[OUT]] restrict writable
func.func @decode(%c: !kvc.cache<?x2x?x64xbf16>, %q: tensor<?x8x1x64xbf16>,
                  %pos: tensor<?xi32>) -> tensor<?x8x1x64xbf16> {
  %o = kvc.decode_attention %q, %c[%pos] : tensor<?x8x1x64xbf16>, !kvc.cache<?x2x?x64xbf16>
  return %o : tensor<?x8x1x64xbf16>
}

// -----

// Tests that alloc makes three buffers with lengths zeroed, that append
// checks its positions and copies whole row blocks, and that dealloc leaves
// freeing to buffer deallocation.
// CHECK-LABEL: func @alloc_append
// CHECK-SAME: %[[N:[^:]+]]: index, %[[CAP:[^:]+]]: index
// CHECK: %[[K:.+]] = memref.alloc(%[[N]], %[[CAP]]) : memref<?x4x?x16xf32>
// CHECK: %[[V:.+]] = memref.alloc(%[[N]], %[[CAP]]) : memref<?x4x?x16xf32>
// CHECK: %[[L:.+]] = memref.alloc(%[[N]]) : memref<?xi32>
// CHECK: linalg.fill ins(%{{.+}} : i32) outs(%[[L]] : memref<?xi32>)
// CHECK: scf.for %[[S:[^ ]+]] =
// CHECK: cf.assert %{{.+}}, "kvc.cache.append: negative position"
// CHECK: cf.assert %{{.+}}, "kvc.cache.append: position past the sequence length would leave unwritten rows"
// CHECK: cf.assert %{{.+}}, "kvc.cache.append: rows past the cache capacity"
// CHECK: %[[DST:.+]] = memref.subview %[[K]][%[[S]], 0, %{{.+}}, 0] [1, 4, %{{.+}}, 16] [1, 1, 1, 1]
// CHECK: linalg.copy ins(%{{.+}} : memref<1x4x?x16xf32, strided<{{.+}}>>) outs(%[[DST]]
// CHECK: memref.subview %[[V]]
// CHECK: linalg.copy
// CHECK: memref.store %{{.+}}, %[[L]][%[[S]]] : memref<?xi32>
// CHECK-NOT: memref.dealloc
// CHECK: return
func.func @alloc_append(%n: index, %cap: index, %pos: tensor<?xi32>, %k: tensor<?x4x?x16xf32>) {
  %c = kvc.cache.alloc(%n, %cap) : !kvc.cache<?x4x?x16xf32>
  kvc.cache.append %c[%pos], %k, %k : !kvc.cache<?x4x?x16xf32>, tensor<?x4x?x16xf32>
  kvc.cache.dealloc %c : !kvc.cache<?x4x?x16xf32>
  return
}

// -----

// Tests that cache.length returns a snapshot, not the live lengths buffer.
// CHECK-LABEL: func @length
// CHECK-SAME: %{{[^:]+}}: memref<3x1x8x8xf16>, %{{[^:]+}}: memref<3x1x8x8xf16>, %[[L:[^:]+]]: memref<3xi32>
// CHECK: %[[COPY:.+]] = memref.alloc() : memref<3xi32>
// CHECK: linalg.copy ins(%[[L]] : memref<3xi32>) outs(%[[COPY]] : memref<3xi32>)
// CHECK: %[[T:.+]] = bufferization.to_tensor %[[COPY]] restrict writable
// CHECK: return %[[T]]
func.func @length(%c: !kvc.cache<3x1x8x8xf16>) -> tensor<3xi32> {
  %l = kvc.cache.length %c : !kvc.cache<3x1x8x8xf16>
  return %l : tensor<3xi32>
}

// -----

// Tests that causal attention limits row i to keys [0, i + 1), with the
// default scale 1/sqrt(16) = 0.25 and a broadcast mask read at head 0.
// CHECK-LABEL: func @causal_masked
// CHECK: scf.for
// CHECK: scf.for
// CHECK: scf.for %[[I:[^ ]+]] =
// CHECK: %[[UP:.+]] = arith.addi %[[I]], %{{.+}} : index
// CHECK: %[[N:.+]] = arith.minui %[[UP]], %{{.+}} : index
// CHECK: scf.for %[[J:[^ ]+]] = %{{.+}} to %[[N]]
// CHECK: %[[SCALE:.+]] = arith.constant 2.500000e-01 : f32
// CHECK: arith.mulf %{{.+}}, %[[SCALE]] : f32
// CHECK: memref.load %{{.+}}[%{{.+}}, %c0{{[_0-9]*}}, %[[I]], %[[J]]] : memref<2x1x5x5xf32>
func.func @causal_masked(%q: tensor<2x4x5x16xf32>, %k: tensor<2x4x5x16xf32>,
                         %m: tensor<2x1x5x5xf32>) -> tensor<2x4x5x16xf32> {
  %o = kvc.attention %q, %k, %k mask(%m : tensor<2x1x5x5xf32>) {causal}
      : tensor<2x4x5x16xf32>, tensor<2x4x5x16xf32>
  return %o : tensor<2x4x5x16xf32>
}

// -----

// Tests that calls and returns that carry caches are converted too.
// CHECK-LABEL: func @caller
// CHECK: %[[K:.+]] = memref.alloc() : memref<1x1x4x8xf32>
// CHECK: %[[V:.+]] = memref.alloc() : memref<1x1x4x8xf32>
// CHECK: %[[L:.+]] = memref.alloc() : memref<1xi32>
// CHECK: %[[R:.+]]:3 = call @identity(%[[K]], %[[V]], %[[L]])
// CHECK: return %[[R]]#0, %[[R]]#1, %[[R]]#2
func.func @caller() -> !kvc.cache<1x1x4x8xf32> {
  %c = kvc.cache.alloc() : !kvc.cache<1x1x4x8xf32>
  %r = call @identity(%c) : (!kvc.cache<1x1x4x8xf32>) -> !kvc.cache<1x1x4x8xf32>
  return %r : !kvc.cache<1x1x4x8xf32>
}
// CHECK-LABEL: func private @identity
// CHECK-SAME: (memref<1x1x4x8xf32>, memref<1x1x4x8xf32>, memref<1xi32>) -> (memref<1x1x4x8xf32>, memref<1x1x4x8xf32>, memref<1xi32>)
func.func private @identity(!kvc.cache<1x1x4x8xf32>) -> !kvc.cache<1x1x4x8xf32>
