// RUN: kvc-opt %s --kvc-fuse-elementwise | FileCheck %s
// RUN: kvc-opt %s --kvc-lower-memref-copy --split-input-file | FileCheck %s --check-prefix=COPY

// Tests that an all-parallel producer with one use fuses into its
// all-parallel consumer (a transpose too, once generalized), that a
// projection keeps its own zero fill right before it and is not fused into,
// and that a fill with two users becomes two fills.

#id = affine_map<(b, n) -> (b, n)>
#xk = affine_map<(b, n, k) -> (b, k)>
#wnk = affine_map<(b, n, k) -> (n, k)>
#xn = affine_map<(b, n, k) -> (b, n)>
// CHECK-LABEL: func.func @chain
// CHECK: %[[F1:.+]] = linalg.fill
// CHECK-NEXT: %[[P1:.+]] = linalg.generic {{.+}} iterator_types = ["parallel", "parallel", "reduction"]} ins(%arg0, %arg1 : {{.+}}) outs(%[[F1]]
// CHECK: %[[F2:.+]] = linalg.fill
// CHECK-NEXT: %[[P2:.+]] = linalg.generic {{.+}} iterator_types = ["parallel", "parallel", "reduction"]} ins(%arg0, %arg1 : {{.+}}) outs(%[[F2]]
// CHECK: %[[T:.+]] = linalg.generic {{.+}} ins(%[[P1]], %[[P2]] : {{.+}})
// CHECK: math.exp
// CHECK: arith.addf
// CHECK-NOT: linalg.generic
// CHECK: return %[[T]]
func.func @chain(%x: tensor<4x8xf32>, %w: tensor<8x8xf32>) -> tensor<8x4xf32> {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<4x8xf32>
  %z = linalg.fill ins(%zero : f32) outs(%e : tensor<4x8xf32>) -> tensor<4x8xf32>
  %p1 = linalg.generic {indexing_maps = [#xk, #wnk, #xn], iterator_types = ["parallel", "parallel", "reduction"]} ins(%x, %w : tensor<4x8xf32>, tensor<8x8xf32>) outs(%z : tensor<4x8xf32>) {
  ^bb0(%a: f32, %b: f32, %acc: f32):
    %m = arith.mulf %a, %b : f32
    %s = arith.addf %acc, %m : f32
    linalg.yield %s : f32
  } -> tensor<4x8xf32>
  %p2 = linalg.generic {indexing_maps = [#xk, #wnk, #xn], iterator_types = ["parallel", "parallel", "reduction"]} ins(%x, %w : tensor<4x8xf32>, tensor<8x8xf32>) outs(%z : tensor<4x8xf32>) {
  ^bb0(%a: f32, %b: f32, %acc: f32):
    %m = arith.mulf %a, %b : f32
    %s = arith.addf %acc, %m : f32
    linalg.yield %s : f32
  } -> tensor<4x8xf32>
  %ex = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%p1 : tensor<4x8xf32>) outs(%e : tensor<4x8xf32>) {
  ^bb0(%a: f32, %u: f32):
    %r = math.exp %a : f32
    linalg.yield %r : f32
  } -> tensor<4x8xf32>
  %sum = linalg.generic {indexing_maps = [#id, #id, #id], iterator_types = ["parallel", "parallel"]} ins(%ex, %p2 : tensor<4x8xf32>, tensor<4x8xf32>) outs(%e : tensor<4x8xf32>) {
  ^bb0(%a: f32, %b: f32, %u: f32):
    %r = arith.addf %a, %b : f32
    linalg.yield %r : f32
  } -> tensor<4x8xf32>
  %te = tensor.empty() : tensor<8x4xf32>
  %t = linalg.transpose ins(%sum : tensor<4x8xf32>) outs(%te : tensor<8x4xf32>) permutation = [1, 0]
  return %t : tensor<8x4xf32>
}

// COPY-LABEL: func.func @copy
// COPY-NOT: memref.copy
// COPY: linalg.generic {{.+}} ins(%arg0 : memref<4x8xf32, strided<[16, 1]>>) outs(%arg1 : memref<4x8xf32>)
// COPY-NEXT: ^bb0(%[[IN:.+]]: f32, %{{.+}}: f32):
// COPY-NEXT: linalg.yield %[[IN]] : f32
func.func @copy(%a: memref<4x8xf32, strided<[16, 1]>>, %b: memref<4x8xf32>) {
  memref.copy %a, %b : memref<4x8xf32, strided<[16, 1]>> to memref<4x8xf32>
  return
}
