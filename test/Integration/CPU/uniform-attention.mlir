// RUN: kvc-opt %s --kvc-cpu-pipeline \
// RUN: | mlir-runner -e main -entry-point-result=void \
// RUN:     -shared-libs=%mlir_runner_utils,%mlir_c_runner_utils \
// RUN: | FileCheck %s

// With equal scores (a query orthogonal to every key) softmax is uniform, so
// causal row i is the mean of value rows 0..i: with v[j] = j that is i / 2.
// Checked in bf16 too, where every expected value is exact.

func.func private @printMemrefF32(tensor<*xf32>) attributes {llvm.emit_c_interface}

func.func @main() {
  %q = arith.constant dense<[[[[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0]]]]> : tensor<1x1x5x2xf32>
  %k = arith.constant dense<[[[[0.0, 3.0], [0.0, -1.0], [0.0, 2.0], [0.0, 7.0], [0.0, -5.0]]]]> : tensor<1x1x5x2xf32>
  %v = arith.constant dense<[[[[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [3.0, 3.0], [4.0, 4.0]]]]> : tensor<1x1x5x2xf32>

  // CHECK: sizes = [1, 1, 5, 2]
  // CHECK-NEXT: {{\[\[\[\[}}0, 0],
  // CHECK-NEXT: [0.5, 0.5],
  // CHECK-NEXT: [1, 1],
  // CHECK-NEXT: [1.5, 1.5],
  // CHECK-NEXT: [2, 2]]]]
  %o = kvc.attention %q, %k, %v {causal} : tensor<1x1x5x2xf32>, tensor<1x1x5x2xf32>
  %u = tensor.cast %o : tensor<1x1x5x2xf32> to tensor<*xf32>
  call @printMemrefF32(%u) : (tensor<*xf32>) -> ()

  // CHECK: sizes = [1, 1, 5, 2]
  // CHECK-NEXT: {{\[\[\[\[}}0, 0],
  // CHECK-NEXT: [0.5, 0.5],
  // CHECK-NEXT: [1, 1],
  // CHECK-NEXT: [1.5, 1.5],
  // CHECK-NEXT: [2, 2]]]]
  %qb = arith.truncf %q : tensor<1x1x5x2xf32> to tensor<1x1x5x2xbf16>
  %kb = arith.truncf %k : tensor<1x1x5x2xf32> to tensor<1x1x5x2xbf16>
  %vb = arith.truncf %v : tensor<1x1x5x2xf32> to tensor<1x1x5x2xbf16>
  %ob = kvc.attention %qb, %kb, %vb {causal} : tensor<1x1x5x2xbf16>, tensor<1x1x5x2xbf16>
  %of = arith.extf %ob : tensor<1x1x5x2xbf16> to tensor<1x1x5x2xf32>
  %uf = tensor.cast %of : tensor<1x1x5x2xf32> to tensor<*xf32>
  call @printMemrefF32(%uf) : (tensor<*xf32>) -> ()

  // A sequence whose cache holds nothing attends to nothing: zeros.
  // CHECK: sizes = [1, 1, 1, 2]
  // CHECK-NEXT: {{\[\[\[\[}}0, 0]]]]
  %c = kvc.cache.alloc() : !kvc.cache<1x1x4x2xf32>
  %pos = arith.constant dense<0> : tensor<1xi32>
  %q0 = tensor.extract_slice %q[0, 0, 0, 0] [1, 1, 1, 2] [1, 1, 1, 1] : tensor<1x1x5x2xf32> to tensor<1x1x1x2xf32>
  %d = kvc.decode_attention %q0, %c[%pos] : tensor<1x1x1x2xf32>, !kvc.cache<1x1x4x2xf32>
  %ud = tensor.cast %d : tensor<1x1x1x2xf32> to tensor<*xf32>
  call @printMemrefF32(%ud) : (tensor<*xf32>) -> ()
  return
}
