// RUN: kvc-opt %s --kvc-cpu-pipeline \
// RUN: | not --crash stdbuf -o0 mlir-runner -e main -entry-point-result=void \
// RUN:     -shared-libs=%mlir_runner_utils,%mlir_c_runner_utils 2>&1 \
// RUN: | FileCheck %s

// Appending rows past a cache's capacity stops the program with the reason,
// rather than writing past the buffer. (The lowered cf.assert puts() the
// message to stdout and aborts, so stdout must be unbuffered to show it.)
// CHECK: kvc.cache.append: rows past the cache capacity

func.func @main() {
  %c = kvc.cache.alloc() : !kvc.cache<1x1x4x2xf32>
  %k = arith.constant dense<1.0> : tensor<1x1x3x2xf32>
  %zero = arith.constant dense<0> : tensor<1xi32>
  kvc.cache.append %c[%zero], %k, %k : !kvc.cache<1x1x4x2xf32>, tensor<1x1x3x2xf32>
  %two = arith.constant dense<2> : tensor<1xi32>
  kvc.cache.append %c[%two], %k, %k : !kvc.cache<1x1x4x2xf32>, tensor<1x1x3x2xf32>
  return
}
