// RUN: kvc-opt %s --kvc-incrementalize -verify-each | FileCheck %s

// Tests that body-less declarations of the generated functions, for callers
// in the same module such as a generation loop, are replaced by the
// definitions.

// CHECK-LABEL: func.func @caller(
// CHECK: call @declared_prefill
// CHECK: call @declared_decode
// CHECK-LABEL: func.func @declared_prefill(
// CHECK: linalg.fill
// CHECK-LABEL: func.func @declared_decode(
// CHECK: kvc.cache.append
// CHECK-NOT: func.func private @declared_

func.func private @declared_prefill(tensor<?x?x2x8xf32>, tensor<?xi32>, index)
    -> (tensor<?x1x2x8xf32>, !kvc.cache<?x2x?x8xf32>)
func.func private @declared_decode(tensor<?x?x2x8xf32>, tensor<?xi32>, !kvc.cache<?x2x?x8xf32>)
    -> tensor<?x?x2x8xf32>

func.func @caller(%x: tensor<?x?x2x8xf32>, %len: tensor<?xi32>, %cap: index) -> tensor<?x?x2x8xf32> {
  %r:2 = call @declared_prefill(%x, %len, %cap)
      : (tensor<?x?x2x8xf32>, tensor<?xi32>, index) -> (tensor<?x1x2x8xf32>, !kvc.cache<?x2x?x8xf32>)
  %d = call @declared_decode(%x, %len, %r#1)
      : (tensor<?x?x2x8xf32>, tensor<?xi32>, !kvc.cache<?x2x?x8xf32>) -> tensor<?x?x2x8xf32>
  return %d : tensor<?x?x2x8xf32>
}

func.func @declared(%x: tensor<?x?x2x8xf32> {kvc.rows}) -> tensor<?x?x2x8xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %b = tensor.dim %x, %c0 : tensor<?x?x2x8xf32>
  %s = tensor.dim %x, %c1 : tensor<?x?x2x8xf32>
  %t = tensor.empty(%b, %s) : tensor<?x2x?x8xf32>
  %xt = linalg.transpose ins(%x : tensor<?x?x2x8xf32>) outs(%t : tensor<?x2x?x8xf32>) permutation = [0, 2, 1, 3]
  %o = kvc.attention %xt, %xt, %xt {causal} : tensor<?x2x?x8xf32>, tensor<?x2x?x8xf32>
  %e = tensor.empty(%b, %s) : tensor<?x?x2x8xf32>
  %ot = linalg.transpose ins(%o : tensor<?x2x?x8xf32>) outs(%e : tensor<?x?x2x8xf32>) permutation = [0, 2, 1, 3]
  return %ot : tensor<?x?x2x8xf32>
}
