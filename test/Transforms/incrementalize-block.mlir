// RUN: kvc-opt %s --kvc-incrementalize -verify-each -split-input-file | FileCheck %s

// Tests that one attention block becomes a prefill that fills a new cache and
// still attends over the whole prompt, and a decode that appends the new rows
// and attends with their queries over the cache. Row-local ops are cloned
// unchanged; the full-sequence function stays.

// CHECK-LABEL: func.func @block(
// CHECK: kvc.attention

// CHECK-LABEL: func.func @block_prefill(
// CHECK-SAME: %[[X:[^:]+]]: tensor<?x?x64xf32>, %[[WQ:[^:]+]]: tensor<64x64xf32>, %[[WK:[^:]+]]: tensor<64x64xf32>, %[[WV:[^:]+]]: tensor<64x64xf32>,
// CHECK-SAME: %[[LEN:[^:]+]]: tensor<?xi32>, %[[CAP:[^:]+]]: index)
// CHECK-SAME: -> (tensor<?x1x64xf32>, !kvc.cache<?x4x?x16xf32>)
// CHECK: %[[ZEROS:.+]] = linalg.fill ins(%{{.+}} : i32) outs(%{{.+}} : tensor<?xi32>)
// CHECK: %[[Q:.+]] = linalg.matmul ins(%{{.+}}, %[[WQ]]
// CHECK: %[[K:.+]] = linalg.matmul ins(%{{.+}}, %[[WK]]
// CHECK: %[[V:.+]] = linalg.matmul ins(%{{.+}}, %[[WV]]
// CHECK: %[[QT:.+]] = linalg.transpose ins(%{{.+}} : tensor<?x?x4x16xf32>)
// CHECK: %[[KT:.+]] = linalg.transpose ins(%{{.+}} : tensor<?x?x4x16xf32>)
// CHECK: %[[VT:.+]] = linalg.transpose ins(%{{.+}} : tensor<?x?x4x16xf32>)
// CHECK: %[[B:.+]] = tensor.dim %[[KT]], %{{.+}} : tensor<?x4x?x16xf32>
// CHECK: %[[CACHE:.+]] = kvc.cache.alloc(%[[B]], %[[CAP]]) : !kvc.cache<?x4x?x16xf32>
// CHECK: kvc.cache.append %[[CACHE]][%[[ZEROS]]], %[[KT]], %[[VT]]
// CHECK: %[[O:.+]] = kvc.attention %[[QT]], %[[KT]], %[[VT]] {causal}
// CHECK: %[[SUM:.+]] = arith.addf %{{.+}}, %[[X]] : tensor<?x?x64xf32>
// CHECK: kvc.cache.truncate %[[CACHE]][%[[LEN]]]
// CHECK: %[[LAST:.+]] = linalg.generic {{.+}} ins(%[[LEN]] : tensor<?xi32>)
// CHECK: tensor.extract %[[SUM]]
// CHECK: return %[[LAST]], %[[CACHE]] : tensor<?x1x64xf32>, !kvc.cache<?x4x?x16xf32>

// CHECK-LABEL: func.func @block_decode(
// CHECK-SAME: %[[X:[^:]+]]: tensor<?x?x64xf32>, %{{.+}}: tensor<64x64xf32>, %{{.+}}: tensor<64x64xf32>, %{{.+}}: tensor<64x64xf32>,
// CHECK-SAME: %[[POS:[^:]+]]: tensor<?xi32>, %[[CACHE:[^:]+]]: !kvc.cache<?x4x?x16xf32>) -> tensor<?x?x64xf32>
// CHECK: %[[QT:.+]] = linalg.transpose
// CHECK: %[[KT:.+]] = linalg.transpose
// CHECK: %[[VT:.+]] = linalg.transpose
// CHECK: kvc.cache.append %[[CACHE]][%[[POS]]], %[[KT]], %[[VT]] : !kvc.cache<?x4x?x16xf32>, tensor<?x4x?x16xf32>
// CHECK: %[[O:.+]] = kvc.decode_attention %[[QT]], %[[CACHE]][%[[POS]]] : tensor<?x4x?x16xf32>, !kvc.cache<?x4x?x16xf32>
// CHECK-NOT: kvc.attention
// CHECK: return

#id3 = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
func.func @block(%x: tensor<?x?x64xf32> {kvc.rows}, %wq: tensor<64x64xf32>,
                 %wk: tensor<64x64xf32>, %wv: tensor<64x64xf32>) -> tensor<?x?x64xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %b = tensor.dim %x, %c0 : tensor<?x?x64xf32>
  %s = tensor.dim %x, %c1 : tensor<?x?x64xf32>
  %bs = arith.muli %b, %s : index
  %x2 = tensor.collapse_shape %x [[0, 1], [2]] : tensor<?x?x64xf32> into tensor<?x64xf32>
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty(%bs) : tensor<?x64xf32>
  %f = linalg.fill ins(%zero : f32) outs(%e : tensor<?x64xf32>) -> tensor<?x64xf32>
  %q2 = linalg.matmul ins(%x2, %wq : tensor<?x64xf32>, tensor<64x64xf32>) outs(%f : tensor<?x64xf32>) -> tensor<?x64xf32>
  %k2 = linalg.matmul ins(%x2, %wk : tensor<?x64xf32>, tensor<64x64xf32>) outs(%f : tensor<?x64xf32>) -> tensor<?x64xf32>
  %v2 = linalg.matmul ins(%x2, %wv : tensor<?x64xf32>, tensor<64x64xf32>) outs(%f : tensor<?x64xf32>) -> tensor<?x64xf32>
  %q3 = tensor.expand_shape %q2 [[0, 1], [2, 3]] output_shape [%b, %s, 4, 16] : tensor<?x64xf32> into tensor<?x?x4x16xf32>
  %k3 = tensor.expand_shape %k2 [[0, 1], [2, 3]] output_shape [%b, %s, 4, 16] : tensor<?x64xf32> into tensor<?x?x4x16xf32>
  %v3 = tensor.expand_shape %v2 [[0, 1], [2, 3]] output_shape [%b, %s, 4, 16] : tensor<?x64xf32> into tensor<?x?x4x16xf32>
  %t = tensor.empty(%b, %s) : tensor<?x4x?x16xf32>
  %q = linalg.transpose ins(%q3 : tensor<?x?x4x16xf32>) outs(%t : tensor<?x4x?x16xf32>) permutation = [0, 2, 1, 3]
  %k = linalg.transpose ins(%k3 : tensor<?x?x4x16xf32>) outs(%t : tensor<?x4x?x16xf32>) permutation = [0, 2, 1, 3]
  %v = linalg.transpose ins(%v3 : tensor<?x?x4x16xf32>) outs(%t : tensor<?x4x?x16xf32>) permutation = [0, 2, 1, 3]
  %o = kvc.attention %q, %k, %v {causal} : tensor<?x4x?x16xf32>, tensor<?x4x?x16xf32>
  %to = tensor.empty(%b, %s) : tensor<?x?x4x16xf32>
  %o2 = linalg.transpose ins(%o : tensor<?x4x?x16xf32>) outs(%to : tensor<?x?x4x16xf32>) permutation = [0, 2, 1, 3]
  %o3 = tensor.collapse_shape %o2 [[0], [1], [2, 3]] : tensor<?x?x4x16xf32> into tensor<?x?x64xf32>
  %r = arith.addf %o3, %x : tensor<?x?x64xf32>
  return %r : tensor<?x?x64xf32>
}

// -----

// Tests that a single attention op is enough: q, k and v are the inputs, laid
// out [batch, sequence, heads, head_dim], and the scale carries over to
// decode.

// CHECK-LABEL: func.func @single_decode(
// CHECK-SAME: %[[POS:[^:]+]]: tensor<?xi32>, %[[CACHE:[^:]+]]: !kvc.cache<?x2x?x8xf32>)
// CHECK: kvc.cache.append %[[CACHE]][%[[POS]]]
// CHECK: kvc.decode_attention %{{.+}}, %[[CACHE]][%[[POS]]] {scale = 5.000000e-01 : f32}

func.func @single(%q: tensor<?x?x2x8xf32> {kvc.rows}, %k: tensor<?x?x2x8xf32> {kvc.rows},
                  %v: tensor<?x?x2x8xf32> {kvc.rows}) -> tensor<?x?x2x8xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %b = tensor.dim %q, %c0 : tensor<?x?x2x8xf32>
  %s = tensor.dim %q, %c1 : tensor<?x?x2x8xf32>
  %t = tensor.empty(%b, %s) : tensor<?x2x?x8xf32>
  %qt = linalg.transpose ins(%q : tensor<?x?x2x8xf32>) outs(%t : tensor<?x2x?x8xf32>) permutation = [0, 2, 1, 3]
  %kt = linalg.transpose ins(%k : tensor<?x?x2x8xf32>) outs(%t : tensor<?x2x?x8xf32>) permutation = [0, 2, 1, 3]
  %vt = linalg.transpose ins(%v : tensor<?x?x2x8xf32>) outs(%t : tensor<?x2x?x8xf32>) permutation = [0, 2, 1, 3]
  %o = kvc.attention %qt, %kt, %vt {causal, scale = 0.5 : f32} : tensor<?x2x?x8xf32>, tensor<?x2x?x8xf32>
  %e = tensor.empty(%b, %s) : tensor<?x?x2x8xf32>
  %r = linalg.transpose ins(%o : tensor<?x2x?x8xf32>) outs(%e : tensor<?x?x2x8xf32>) permutation = [0, 2, 1, 3]
  return %r : tensor<?x?x2x8xf32>
}
