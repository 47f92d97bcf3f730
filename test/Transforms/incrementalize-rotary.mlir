// RUN: kvc-opt %s --kvc-incrementalize -verify-each | FileCheck %s

// Tests that the positions rotary embeddings read are made, not passed:
// prefill gives row t of every prompt position t, decode gives row t of
// sequence b position positions[b] + t, both in the element type of the
// argument marked kvc.positions (i64 here). Neither generated function takes
// that argument.

// CHECK-DAG: #[[PERSEQ:.+]] = affine_map<(d0, d1) -> (d0)>
// CHECK-DAG: #[[ID2:.+]] = affine_map<(d0, d1) -> (d0, d1)>

// CHECK-LABEL: func.func @rope_prefill(
// CHECK-SAME: %[[X:[^:]+]]: tensor<?x?x2x8xf32>, %[[LEN:[^:]+]]: tensor<?xi32>, %[[CAP:[^:]+]]: index)
// CHECK: %[[ZEROS:.+]] = linalg.fill
// CHECK: %[[IDS:.+]] = linalg.generic {indexing_maps = [#[[PERSEQ]], #[[ID2]]], iterator_types = ["parallel", "parallel"]} ins(%[[ZEROS]] : tensor<?xi32>) outs(%{{.+}} : tensor<?x?xi64>)
// CHECK: %[[ROW:.+]] = linalg.index 1
// CHECK: %[[START:.+]] = arith.index_cast %{{.+}} : i32 to index
// CHECK: %[[P:.+]] = arith.addi %[[START]], %[[ROW]]
// CHECK: arith.index_cast %[[P]] : index to i64
// CHECK: linalg.generic {{.+}} ins(%[[X]], %[[IDS]] : tensor<?x?x2x8xf32>, tensor<?x?xi64>)

// CHECK-LABEL: func.func @rope_decode(
// CHECK-SAME: %[[X:[^:]+]]: tensor<?x?x2x8xf32>, %[[POS:[^:]+]]: tensor<?xi32>, %{{.+}}: !kvc.cache<?x2x?x8xf32>)
// CHECK: %[[IDS:.+]] = linalg.generic {{.+}} ins(%[[POS]] : tensor<?xi32>) outs(%{{.+}} : tensor<?x?xi64>)
// CHECK: linalg.generic {{.+}} ins(%[[X]], %[[IDS]] : tensor<?x?x2x8xf32>, tensor<?x?xi64>)

#x = affine_map<(b, s, h, d) -> (b, s, h, d)>
#p = affine_map<(b, s, h, d) -> (b, s)>
func.func @rope(%x: tensor<?x?x2x8xf32> {kvc.rows}, %pos: tensor<?x?xi64> {kvc.positions})
    -> tensor<?x?x2x8xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %b = tensor.dim %x, %c0 : tensor<?x?x2x8xf32>
  %s = tensor.dim %x, %c1 : tensor<?x?x2x8xf32>
  %e = tensor.empty(%b, %s) : tensor<?x?x2x8xf32>
  // Scales each row by cos(position): enough to show which position it reads.
  %r = linalg.generic {indexing_maps = [#x, #p, #x],
                       iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%x, %pos : tensor<?x?x2x8xf32>, tensor<?x?xi64>) outs(%e : tensor<?x?x2x8xf32>) {
  ^bb0(%v: f32, %p: i64, %o: f32):
    %fp = arith.sitofp %p : i64 to f32
    %c = math.cos %fp : f32
    %y = arith.mulf %v, %c : f32
    linalg.yield %y : f32
  } -> tensor<?x?x2x8xf32>
  %t = tensor.empty(%b, %s) : tensor<?x2x?x8xf32>
  %rt = linalg.transpose ins(%r : tensor<?x?x2x8xf32>) outs(%t : tensor<?x2x?x8xf32>) permutation = [0, 2, 1, 3]
  %o = kvc.attention %rt, %rt, %rt {causal} : tensor<?x2x?x8xf32>, tensor<?x2x?x8xf32>
  %out = linalg.transpose ins(%o : tensor<?x2x?x8xf32>) outs(%e : tensor<?x?x2x8xf32>) permutation = [0, 2, 1, 3]
  return %out : tensor<?x?x2x8xf32>
}
