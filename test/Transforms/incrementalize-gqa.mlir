// RUN: kvc-opt %s --kvc-incrementalize -verify-each | FileCheck %s

// Tests that grouped-query attention caches the key/value heads only (2 of
// 8 here), in the element type of the keys, and that a static batch gives
// static cache batch and per-sequence positions.

// CHECK-LABEL: func.func @gqa_prefill(
// CHECK-SAME: %{{.+}}: tensor<1x?x8x64xbf16>, %{{.+}}: tensor<1x?x2x64xbf16>, %{{.+}}: tensor<1x?x2x64xbf16>,
// CHECK-SAME: %[[LEN:[^:]+]]: tensor<1xi32>, %[[CAP:[^:]+]]: index)
// CHECK-SAME: -> (tensor<1x1x8x64xbf16>, !kvc.cache<1x2x?x64xbf16>)
// CHECK: %[[C:.+]] = kvc.cache.alloc(%[[CAP]]) : !kvc.cache<1x2x?x64xbf16>
// CHECK: kvc.cache.append %[[C]][%{{.+}}], %{{.+}}, %{{.+}} : !kvc.cache<1x2x?x64xbf16>, tensor<1x2x?x64xbf16>
// CHECK: kvc.attention {{.+}} : tensor<1x8x?x64xbf16>, tensor<1x2x?x64xbf16>
// CHECK: kvc.cache.truncate %[[C]][%[[LEN]]] : !kvc.cache<1x2x?x64xbf16>

// CHECK-LABEL: func.func @gqa_decode(
// CHECK-SAME: %[[POS:[^:]+]]: tensor<1xi32>, %[[C:[^:]+]]: !kvc.cache<1x2x?x64xbf16>) -> tensor<1x?x8x64xbf16>
// CHECK: kvc.decode_attention %{{.+}}, %[[C]][%[[POS]]] : tensor<1x8x?x64xbf16>, !kvc.cache<1x2x?x64xbf16>

func.func @gqa(%q: tensor<1x?x8x64xbf16> {kvc.rows}, %k: tensor<1x?x2x64xbf16> {kvc.rows},
               %v: tensor<1x?x2x64xbf16> {kvc.rows}) -> tensor<1x?x8x64xbf16> {
  %c1 = arith.constant 1 : index
  %s = tensor.dim %q, %c1 : tensor<1x?x8x64xbf16>
  %tq = tensor.empty(%s) : tensor<1x8x?x64xbf16>
  %tkv = tensor.empty(%s) : tensor<1x2x?x64xbf16>
  %qt = linalg.transpose ins(%q : tensor<1x?x8x64xbf16>) outs(%tq : tensor<1x8x?x64xbf16>) permutation = [0, 2, 1, 3]
  %kt = linalg.transpose ins(%k : tensor<1x?x2x64xbf16>) outs(%tkv : tensor<1x2x?x64xbf16>) permutation = [0, 2, 1, 3]
  %vt = linalg.transpose ins(%v : tensor<1x?x2x64xbf16>) outs(%tkv : tensor<1x2x?x64xbf16>) permutation = [0, 2, 1, 3]
  %o = kvc.attention %qt, %kt, %vt {causal} : tensor<1x8x?x64xbf16>, tensor<1x2x?x64xbf16>
  %e = tensor.empty(%s) : tensor<1x?x8x64xbf16>
  %r = linalg.transpose ins(%o : tensor<1x8x?x64xbf16>) outs(%e : tensor<1x?x8x64xbf16>) permutation = [0, 2, 1, 3]
  return %r : tensor<1x?x8x64xbf16>
}
