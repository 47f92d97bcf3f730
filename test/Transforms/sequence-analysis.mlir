// RUN: kvc-opt %s --test-kvc-sequence-analysis -split-input-file -verify-diagnostics

// Tests that the analysis tags every dimension with what it carries (b:
// batch, s: sequence, bs: both collapsed, _: neither) through reshapes,
// matmuls and transposes, calls weight-only ops invariant, and attention the
// one op that mixes positions.

func.func @block(%x: tensor<?x?x16xf32> {kvc.rows}, %w: tensor<16x16xf32>) -> tensor<?x?x16xf32> {
  // expected-remark @+1 {{invariant}}
  %c0 = arith.constant 0 : index
  // expected-remark @+1 {{invariant}}
  %c1 = arith.constant 1 : index
  // expected-remark @+1 {{row-local [b]}}
  %b = tensor.dim %x, %c0 : tensor<?x?x16xf32>
  // expected-remark @+1 {{row-local [s]}}
  %s = tensor.dim %x, %c1 : tensor<?x?x16xf32>
  // expected-remark @+1 {{row-local [bs]}}
  %bs = arith.muli %b, %s : index
  // expected-remark @+1 {{invariant}}
  %wt0 = tensor.empty() : tensor<16x16xf32>
  // expected-remark @+1 {{invariant}}
  %wt = linalg.transpose ins(%w : tensor<16x16xf32>) outs(%wt0 : tensor<16x16xf32>) permutation = [1, 0]
  // expected-remark @+1 {{row-local [bs, _]}}
  %flat = tensor.collapse_shape %x [[0, 1], [2]] : tensor<?x?x16xf32> into tensor<?x16xf32>
  // expected-remark @+1 {{row-local [bs, _]}}
  %e = tensor.empty(%bs) : tensor<?x16xf32>
  // expected-remark @+1 {{row-local [bs, _]}}
  %y = linalg.matmul ins(%flat, %wt : tensor<?x16xf32>, tensor<16x16xf32>) outs(%e : tensor<?x16xf32>) -> tensor<?x16xf32>
  // expected-remark @+1 {{row-local [b, s, _, _]}}
  %y4 = tensor.expand_shape %y [[0, 1], [2, 3]] output_shape [%b, %s, 2, 8] : tensor<?x16xf32> into tensor<?x?x2x8xf32>
  // expected-remark @+1 {{row-local [b, _, s, _]}}
  %t = tensor.empty(%b, %s) : tensor<?x2x?x8xf32>
  // expected-remark @+1 {{row-local [b, _, s, _]}}
  %yt = linalg.transpose ins(%y4 : tensor<?x?x2x8xf32>) outs(%t : tensor<?x2x?x8xf32>) permutation = [0, 2, 1, 3]
  // expected-remark @+1 {{attention [b, _, s, _]}}
  %o = kvc.attention %yt, %yt, %yt {causal} : tensor<?x2x?x8xf32>, tensor<?x2x?x8xf32>
  // expected-remark @+1 {{row-local [b, s, _, _]}}
  %oe = tensor.empty(%b, %s) : tensor<?x?x2x8xf32>
  // expected-remark @+1 {{row-local [b, s, _, _]}}
  %ot = linalg.transpose ins(%o : tensor<?x2x?x8xf32>) outs(%oe : tensor<?x?x2x8xf32>) permutation = [0, 2, 1, 3]
  // expected-remark @+1 {{row-local [b, s, _]}}
  %r = tensor.collapse_shape %ot [[0], [1], [2, 3]] : tensor<?x?x2x8xf32> into tensor<?x?x16xf32>
  // expected-remark @+1 {{row-local [b, s, _]}}
  %sum = arith.addf %r, %x : tensor<?x?x16xf32>
  return %sum : tensor<?x?x16xf32>
}

// -----

// Tests that a static batch of one still carries the sequence: the batch
// role shows only where shapes carry it (a static 1 in an expand_shape does
// not), and a reduction over the hidden size (RMSNorm) is row-local.

func.func @norm(%x: tensor<1x?x8xf32> {kvc.rows}) -> tensor<1x?x8xf32> {
  // expected-remark @+1 {{invariant}}
  %c1 = arith.constant 1 : index
  // expected-remark @+1 {{row-local [s]}}
  %s = tensor.dim %x, %c1 : tensor<1x?x8xf32>
  // expected-remark @+1 {{invariant}}
  %z = arith.constant 0.0 : f32
  // expected-remark @+1 {{row-local [_, s]}}
  %e = tensor.empty(%s) : tensor<1x?xf32>
  // expected-remark @+1 {{row-local [_, s]}}
  %f = linalg.fill ins(%z : f32) outs(%e : tensor<1x?xf32>) -> tensor<1x?xf32>
  // expected-remark @+1 {{row-local [b, s]}}
  %ss = linalg.reduce ins(%x : tensor<1x?x8xf32>) outs(%f : tensor<1x?xf32>) dimensions = [2]
    (%a: f32, %acc: f32) {
      %sq = arith.mulf %a, %a : f32
      %sum = arith.addf %sq, %acc : f32
      linalg.yield %sum : f32
    }
  // expected-remark @+1 {{row-local [_, _, s, _]}}
  %t = tensor.empty(%s) : tensor<1x2x?x4xf32>
  // expected-remark @+1 {{row-local [_, s, _, _]}}
  %x4 = tensor.expand_shape %x [[0], [1], [2, 3]] output_shape [1, %s, 2, 4] : tensor<1x?x8xf32> into tensor<1x?x2x4xf32>
  // expected-remark @+1 {{row-local [_, _, s, _]}}
  %xt = linalg.transpose ins(%x4 : tensor<1x?x2x4xf32>) outs(%t : tensor<1x2x?x4xf32>) permutation = [0, 2, 1, 3]
  // expected-remark @+1 {{attention [_, _, s, _]}}
  %o = kvc.attention %xt, %xt, %xt {causal} : tensor<1x2x?x4xf32>, tensor<1x2x?x4xf32>
  return %x : tensor<1x?x8xf32>
}
