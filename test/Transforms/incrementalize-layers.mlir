// RUN: kvc-opt %s --kvc-incrementalize -verify-each | FileCheck %s

// Tests that every attention gets its own cache, in program order: prefill
// returns them after the results, decode takes them after the positions, and
// each layer appends to and reads from its own.

// CHECK-LABEL: func.func @two_layers_prefill(
// CHECK-SAME: -> (tensor<?x1x2x8xf32>, !kvc.cache<?x2x?x8xf32>, !kvc.cache<?x2x?x8xf32>)
// CHECK: %[[C0:.+]] = kvc.cache.alloc
// CHECK: kvc.cache.append %[[C0]]
// CHECK: kvc.attention
// CHECK: %[[C1:.+]] = kvc.cache.alloc
// CHECK: kvc.cache.append %[[C1]]
// CHECK: kvc.attention
// CHECK: kvc.cache.truncate %[[C0]]
// CHECK: kvc.cache.truncate %[[C1]]
// CHECK: return %{{.+}}, %[[C0]], %[[C1]] :

// CHECK-LABEL: func.func @two_layers_decode(
// CHECK-SAME: %[[X:[^:]+]]: tensor<?x?x2x8xf32>, %[[POS:[^:]+]]: tensor<?xi32>,
// CHECK-SAME: %[[C0:[^:]+]]: !kvc.cache<?x2x?x8xf32>, %[[C1:[^:]+]]: !kvc.cache<?x2x?x8xf32>)
// CHECK: %[[XT:.+]] = linalg.transpose ins(%[[X]]
// CHECK: kvc.cache.append %[[C0]][%[[POS]]], %[[XT]], %[[XT]]
// CHECK: %[[O0:.+]] = kvc.decode_attention %[[XT]], %[[C0]][%[[POS]]]
// CHECK: %[[H:.+]] = arith.addf %[[O0]], %[[XT]]
// CHECK: %[[K1:.+]] = arith.mulf %[[H]], %[[H]]
// CHECK: kvc.cache.append %[[C1]][%[[POS]]], %[[K1]], %[[H]]
// CHECK: %[[O1:.+]] = kvc.decode_attention %[[H]], %[[C1]][%[[POS]]]
// CHECK: linalg.transpose ins(%[[O1]]

func.func @two_layers(%x: tensor<?x?x2x8xf32> {kvc.rows}) -> tensor<?x?x2x8xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %b = tensor.dim %x, %c0 : tensor<?x?x2x8xf32>
  %s = tensor.dim %x, %c1 : tensor<?x?x2x8xf32>
  %t = tensor.empty(%b, %s) : tensor<?x2x?x8xf32>
  %xt = linalg.transpose ins(%x : tensor<?x?x2x8xf32>) outs(%t : tensor<?x2x?x8xf32>) permutation = [0, 2, 1, 3]
  %o0 = kvc.attention %xt, %xt, %xt {causal} : tensor<?x2x?x8xf32>, tensor<?x2x?x8xf32>
  %h = arith.addf %o0, %xt : tensor<?x2x?x8xf32>
  %k1 = arith.mulf %h, %h : tensor<?x2x?x8xf32>
  %o1 = kvc.attention %h, %k1, %h {causal} : tensor<?x2x?x8xf32>, tensor<?x2x?x8xf32>
  %e = tensor.empty(%b, %s) : tensor<?x?x2x8xf32>
  %r = linalg.transpose ins(%o1 : tensor<?x2x?x8xf32>) outs(%e : tensor<?x?x2x8xf32>) permutation = [0, 2, 1, 3]
  return %r : tensor<?x?x2x8xf32>
}
