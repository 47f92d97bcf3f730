// RUN: kvc-opt %s --kvc-count-flops="prompt-tokens=2 generated-tokens=1,3" -o /dev/null | FileCheck %s
// RUN: kvc-opt %s --kvc-count-flops -o /dev/null | FileCheck %s --check-prefix=DEFAULT
// RUN: not kvc-opt %s --kvc-count-flops="prompt-tokens=0" -o /dev/null 2>&1 | FileCheck %s --check-prefix=BAD

// Tests the counts on a block worked by hand: the matmul is 2 * 8 * 16 = 256
// FLOPs per row, the residual add 16, the attention 4 * 2 heads * 8 = 64 per
// (row, key) pair, the weight transpose nothing.
//
// After a 2-token prompt, generating 3 tokens by recomputing costs
// (2 * 272 + 3 * 64) + (3 * 272 + 6 * 64) + (4 * 272 + 10 * 64) = 3664;
// prefill + decode costs 736 + (272 + 3 * 64) + (272 + 4 * 64) = 1728.

// CHECK: @block: 272 FLOPs per row, 64 per (row, attended key), 0 per call
// CHECK-NEXT: greedy generation after a 2-token prompt, one sequence, FLOPs:
// CHECK-NEXT: generated recompute prefill+decode ratio
// CHECK-NEXT: 1 736 736 1.0x
// CHECK-NEXT: 3 3664 1728 2.1x

// DEFAULT: greedy generation after a 16-token prompt
// DEFAULT: 64
// DEFAULT: 256
// DEFAULT: 1024

// BAD: error: kvc-count-flops: prompt-tokens and generated-tokens must be at least 1

func.func @block(%x: tensor<?x?x8xf32> {kvc.rows}, %w: tensor<8x16xf32>) -> tensor<?x?x16xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %b = tensor.dim %x, %c0 : tensor<?x?x8xf32>
  %s = tensor.dim %x, %c1 : tensor<?x?x8xf32>
  %z = arith.constant 0.0 : f32
  %e = tensor.empty(%b, %s) : tensor<?x?x16xf32>
  %f = linalg.fill ins(%z : f32) outs(%e : tensor<?x?x16xf32>) -> tensor<?x?x16xf32>
  %y = linalg.generic {indexing_maps = [affine_map<(b, s, n, k) -> (b, s, k)>,
                                        affine_map<(b, s, n, k) -> (k, n)>,
                                        affine_map<(b, s, n, k) -> (b, s, n)>],
                       iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%x, %w : tensor<?x?x8xf32>, tensor<8x16xf32>) outs(%f : tensor<?x?x16xf32>) {
  ^bb0(%a: f32, %bw: f32, %acc: f32):
    %p = arith.mulf %a, %bw : f32
    %sum = arith.addf %acc, %p : f32
    linalg.yield %sum : f32
  } -> tensor<?x?x16xf32>
  %y4 = tensor.expand_shape %y [[0], [1], [2, 3]] output_shape [%b, %s, 2, 8] : tensor<?x?x16xf32> into tensor<?x?x2x8xf32>
  %t = tensor.empty(%b, %s) : tensor<?x2x?x8xf32>
  %yt = linalg.transpose ins(%y4 : tensor<?x?x2x8xf32>) outs(%t : tensor<?x2x?x8xf32>) permutation = [0, 2, 1, 3]
  %o = kvc.attention %yt, %yt, %yt {causal} : tensor<?x2x?x8xf32>, tensor<?x2x?x8xf32>
  %oe = tensor.empty(%b, %s) : tensor<?x?x2x8xf32>
  %ot = linalg.transpose ins(%o : tensor<?x2x?x8xf32>) outs(%oe : tensor<?x?x2x8xf32>) permutation = [0, 2, 1, 3]
  %r = tensor.collapse_shape %ot [[0], [1], [2, 3]] : tensor<?x?x2x8xf32> into tensor<?x?x16xf32>
  %sum = arith.addf %r, %y : tensor<?x?x16xf32>
  return %sum : tensor<?x?x16xf32>
}
