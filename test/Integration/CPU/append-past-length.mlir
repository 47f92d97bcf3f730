// RUN: kvc-opt %s --kvc-cpu-pipeline \
// RUN: | not --crash stdbuf -o0 mlir-runner -e main -entry-point-result=void \
// RUN:     -shared-libs=%mlir_runner_utils,%mlir_c_runner_utils 2>&1 \
// RUN: | FileCheck %s

// Appending beyond a sequence's length would leave rows nobody wrote inside
// the attended range; the program stops with the reason. (The lowered
// cf.assert puts() the message to stdout and aborts: stdout is unbuffered.)
// CHECK: kvc.cache.append: position past the sequence length would leave unwritten rows

func.func @main() {
  %c = kvc.cache.alloc() : !kvc.cache<2x1x8x2xf32>
  %k = arith.constant dense<1.0> : tensor<2x1x1x2xf32>
  %pos = arith.constant dense<[0, 1]> : tensor<2xi32>
  kvc.cache.append %c[%pos], %k, %k : !kvc.cache<2x1x8x2xf32>, tensor<2x1x1x2xf32>
  return
}
