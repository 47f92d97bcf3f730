// RUN: kvc-opt %s --kvc-incrementalize -verify-each | FileCheck %s
// RUN: kvc-opt %s --kvc-incrementalize="all-positions" -verify-each \
// RUN:   | FileCheck %s --check-prefix=ALL

// Tests that prefill of a ragged batch (prompts padded to S rows, true
// lengths in %lengths) truncates each cache to the true lengths and returns
// each sequence's row lengths[b] - 1, checking at run time that no prompt is
// empty; with all-positions it returns every row.

// CHECK-DAG: #[[PERSEQ:.+]] = affine_map<(d0, d1, d2) -> (d0)>
// CHECK-DAG: #[[ID3:.+]] = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
// CHECK-LABEL: func.func @ragged_prefill(
// CHECK-SAME: %[[LEN:[^:]+]]: tensor<?xi32>, %{{.+}}: index) -> (tensor<?x1x16xf32>, !kvc.cache<?x2x?x8xf32>)
// CHECK: %[[OUT:.+]] = tensor.collapse_shape
// CHECK: kvc.cache.truncate %{{.+}}[%[[LEN]]]
// CHECK: %[[LAST:.+]] = linalg.generic {indexing_maps = [#[[PERSEQ]], #[[ID3]]], iterator_types = ["parallel", "parallel", "parallel"]} ins(%[[LEN]] : tensor<?xi32>) outs(%{{.+}} : tensor<?x1x16xf32>)
// CHECK: ^bb0(%[[L:.+]]: i32, %{{.+}}: f32):
// CHECK: %[[LI:.+]] = arith.index_cast %[[L]] : i32 to index
// CHECK: %[[NONEMPTY:.+]] = arith.cmpi sge, %[[LI]], %[[ONE:.+]] : index
// CHECK: cf.assert %[[NONEMPTY]], "prefill: every prompt needs at least one row"
// CHECK: %[[B:.+]] = linalg.index 0
// CHECK: %[[ROW:.+]] = arith.subi %[[LI]], %[[ONE]]
// CHECK: %[[H:.+]] = linalg.index 2
// CHECK: tensor.extract %[[OUT]][%[[B]], %[[ROW]], %[[H]]] : tensor<?x?x16xf32>
// CHECK: return %[[LAST]], %{{.+}} : tensor<?x1x16xf32>, !kvc.cache<?x2x?x8xf32>

// ALL-LABEL: func.func @ragged_prefill(
// ALL-SAME: -> (tensor<?x?x16xf32>, !kvc.cache<?x2x?x8xf32>)
// ALL: %[[OUT:.+]] = tensor.collapse_shape
// ALL: kvc.cache.truncate
// ALL-NOT: linalg.generic
// ALL: return %[[OUT]]

func.func @ragged(%x: tensor<?x?x2x8xf32> {kvc.rows}) -> tensor<?x?x16xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %b = tensor.dim %x, %c0 : tensor<?x?x2x8xf32>
  %s = tensor.dim %x, %c1 : tensor<?x?x2x8xf32>
  %t = tensor.empty(%b, %s) : tensor<?x2x?x8xf32>
  %xt = linalg.transpose ins(%x : tensor<?x?x2x8xf32>) outs(%t : tensor<?x2x?x8xf32>) permutation = [0, 2, 1, 3]
  %o = kvc.attention %xt, %xt, %xt {causal} : tensor<?x2x?x8xf32>, tensor<?x2x?x8xf32>
  %e = tensor.empty(%b, %s) : tensor<?x?x2x8xf32>
  %ot = linalg.transpose ins(%o : tensor<?x2x?x8xf32>) outs(%e : tensor<?x?x2x8xf32>) permutation = [0, 2, 1, 3]
  %r = tensor.collapse_shape %ot [[0], [1], [2, 3]] : tensor<?x?x2x8xf32> into tensor<?x?x16xf32>
  return %r : tensor<?x?x16xf32>
}
