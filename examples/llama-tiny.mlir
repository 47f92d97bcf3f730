// A 2-layer Llama-style decoder in full-sequence form, as it is trained:
// every position is computed from the whole prefix. RMSNorm, rotary
// embeddings from the position of each row, grouped-query attention with 4
// query heads per key/value head, a SwiGLU MLP and an LM head tied to the
// embedding. f32; hidden 64, 4 heads of 16, 1 kv head, intermediate 128,
// vocabulary 128.
//
// `kvc-opt --inline --kvc-incrementalize` turns @llama into @llama_prefill
// and @llama_decode (see test/Integration/CPU/llama-generate.mlir).

#rows3 = affine_map<(b, s, h) -> (b, s, h)>
#rowsOnly = affine_map<(b, s, h) -> (b, s)>
#hidden = affine_map<(b, s, h) -> (h)>

/// The whole model: token ids and their positions in, logits out.
func.func @llama(%tokens: tensor<?x?xi32> {kvc.rows},
                 %positions: tensor<?x?xi32> {kvc.positions},
                 %embed: tensor<128x64xf32>,
                 %norm0: tensor<64xf32>, %wq0: tensor<64x64xf32>,
                 %wk0: tensor<64x16xf32>, %wv0: tensor<64x16xf32>,
                 %wo0: tensor<64x64xf32>, %mlpnorm0: tensor<64xf32>,
                 %wgate0: tensor<64x128xf32>, %wup0: tensor<64x128xf32>,
                 %wdown0: tensor<128x64xf32>,
                 %norm1: tensor<64xf32>, %wq1: tensor<64x64xf32>,
                 %wk1: tensor<64x16xf32>, %wv1: tensor<64x16xf32>,
                 %wo1: tensor<64x64xf32>, %mlpnorm1: tensor<64xf32>,
                 %wgate1: tensor<64x128xf32>, %wup1: tensor<64x128xf32>,
                 %wdown1: tensor<128x64xf32>,
                 %finalnorm: tensor<64xf32>) -> tensor<?x?x128xf32> {
  %x0 = call @embedding(%tokens, %embed)
      : (tensor<?x?xi32>, tensor<128x64xf32>) -> tensor<?x?x64xf32>
  %x1 = call @block(%x0, %positions, %norm0, %wq0, %wk0, %wv0, %wo0,
                    %mlpnorm0, %wgate0, %wup0, %wdown0)
      : (tensor<?x?x64xf32>, tensor<?x?xi32>, tensor<64xf32>,
         tensor<64x64xf32>, tensor<64x16xf32>, tensor<64x16xf32>,
         tensor<64x64xf32>, tensor<64xf32>, tensor<64x128xf32>,
         tensor<64x128xf32>, tensor<128x64xf32>) -> tensor<?x?x64xf32>
  %x2 = call @block(%x1, %positions, %norm1, %wq1, %wk1, %wv1, %wo1,
                    %mlpnorm1, %wgate1, %wup1, %wdown1)
      : (tensor<?x?x64xf32>, tensor<?x?xi32>, tensor<64xf32>,
         tensor<64x64xf32>, tensor<64x16xf32>, tensor<64x16xf32>,
         tensor<64x64xf32>, tensor<64xf32>, tensor<64x128xf32>,
         tensor<64x128xf32>, tensor<128x64xf32>) -> tensor<?x?x64xf32>
  %xn = call @rmsnorm(%x2, %finalnorm)
      : (tensor<?x?x64xf32>, tensor<64xf32>) -> tensor<?x?x64xf32>
  %logits = call @lm_head(%xn, %embed)
      : (tensor<?x?x64xf32>, tensor<128x64xf32>) -> tensor<?x?x128xf32>
  return %logits : tensor<?x?x128xf32>
}

/// One decoder block: x + attn(norm(x)), then h + mlp(norm(h)).
func.func private @block(%x: tensor<?x?x64xf32>, %positions: tensor<?x?xi32>,
                         %norm: tensor<64xf32>, %wq: tensor<64x64xf32>,
                         %wk: tensor<64x16xf32>, %wv: tensor<64x16xf32>,
                         %wo: tensor<64x64xf32>, %mlpnorm: tensor<64xf32>,
                         %wgate: tensor<64x128xf32>, %wup: tensor<64x128xf32>,
                         %wdown: tensor<128x64xf32>) -> tensor<?x?x64xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %b = tensor.dim %x, %c0 : tensor<?x?x64xf32>
  %s = tensor.dim %x, %c1 : tensor<?x?x64xf32>
  %xn = call @rmsnorm(%x, %norm)
      : (tensor<?x?x64xf32>, tensor<64xf32>) -> tensor<?x?x64xf32>
  %q = call @linear_64x64(%xn, %wq)
      : (tensor<?x?x64xf32>, tensor<64x64xf32>) -> tensor<?x?x64xf32>
  %k = call @linear_64x16(%xn, %wk)
      : (tensor<?x?x64xf32>, tensor<64x16xf32>) -> tensor<?x?x16xf32>
  %v = call @linear_64x16(%xn, %wv)
      : (tensor<?x?x64xf32>, tensor<64x16xf32>) -> tensor<?x?x16xf32>
  // [b, s, heads * 16] -> [b, s, heads, 16], rotate q and k by position.
  %q4 = tensor.expand_shape %q [[0], [1], [2, 3]] output_shape [%b, %s, 4, 16]
      : tensor<?x?x64xf32> into tensor<?x?x4x16xf32>
  %k4 = tensor.expand_shape %k [[0], [1], [2, 3]] output_shape [%b, %s, 1, 16]
      : tensor<?x?x16xf32> into tensor<?x?x1x16xf32>
  %v4 = tensor.expand_shape %v [[0], [1], [2, 3]] output_shape [%b, %s, 1, 16]
      : tensor<?x?x16xf32> into tensor<?x?x1x16xf32>
  %q4d = tensor.cast %q4 : tensor<?x?x4x16xf32> to tensor<?x?x?x16xf32>
  %k4d = tensor.cast %k4 : tensor<?x?x1x16xf32> to tensor<?x?x?x16xf32>
  %qrd = call @rotary(%q4d, %positions)
      : (tensor<?x?x?x16xf32>, tensor<?x?xi32>) -> tensor<?x?x?x16xf32>
  %krd = call @rotary(%k4d, %positions)
      : (tensor<?x?x?x16xf32>, tensor<?x?xi32>) -> tensor<?x?x?x16xf32>
  %qr = tensor.cast %qrd : tensor<?x?x?x16xf32> to tensor<?x?x4x16xf32>
  %kr = tensor.cast %krd : tensor<?x?x?x16xf32> to tensor<?x?x1x16xf32>
  // [b, s, heads, 16] -> [b, heads, s, 16] for attention.
  %eq = tensor.empty(%b, %s) : tensor<?x4x?x16xf32>
  %qt = linalg.transpose ins(%qr : tensor<?x?x4x16xf32>)
      outs(%eq : tensor<?x4x?x16xf32>) permutation = [0, 2, 1, 3]
  %ekv = tensor.empty(%b, %s) : tensor<?x1x?x16xf32>
  %kt = linalg.transpose ins(%kr : tensor<?x?x1x16xf32>)
      outs(%ekv : tensor<?x1x?x16xf32>) permutation = [0, 2, 1, 3]
  %vt = linalg.transpose ins(%v4 : tensor<?x?x1x16xf32>)
      outs(%ekv : tensor<?x1x?x16xf32>) permutation = [0, 2, 1, 3]
  %att = kvc.attention %qt, %kt, %vt {causal}
      : tensor<?x4x?x16xf32>, tensor<?x1x?x16xf32>
  %eo = tensor.empty(%b, %s) : tensor<?x?x4x16xf32>
  %ot = linalg.transpose ins(%att : tensor<?x4x?x16xf32>)
      outs(%eo : tensor<?x?x4x16xf32>) permutation = [0, 2, 1, 3]
  %o = tensor.collapse_shape %ot [[0], [1], [2, 3]]
      : tensor<?x?x4x16xf32> into tensor<?x?x64xf32>
  %proj = call @linear_64x64(%o, %wo)
      : (tensor<?x?x64xf32>, tensor<64x64xf32>) -> tensor<?x?x64xf32>
  %h = arith.addf %x, %proj : tensor<?x?x64xf32>
  // SwiGLU MLP.
  %hn = call @rmsnorm(%h, %mlpnorm)
      : (tensor<?x?x64xf32>, tensor<64xf32>) -> tensor<?x?x64xf32>
  %gate = call @linear_64x128(%hn, %wgate)
      : (tensor<?x?x64xf32>, tensor<64x128xf32>) -> tensor<?x?x128xf32>
  %up = call @linear_64x128(%hn, %wup)
      : (tensor<?x?x64xf32>, tensor<64x128xf32>) -> tensor<?x?x128xf32>
  %ea = tensor.empty(%b, %s) : tensor<?x?x128xf32>
  %act = linalg.generic {indexing_maps = [#rows3, #rows3, #rows3],
                         iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%gate, %up : tensor<?x?x128xf32>, tensor<?x?x128xf32>)
      outs(%ea : tensor<?x?x128xf32>) {
  ^bb0(%g: f32, %u: f32, %unused: f32):
    %one = arith.constant 1.0 : f32
    %ng = arith.negf %g : f32
    %e = math.exp %ng : f32
    %den = arith.addf %one, %e : f32
    %silu = arith.divf %g, %den : f32
    %r = arith.mulf %silu, %u : f32
    linalg.yield %r : f32
  } -> tensor<?x?x128xf32>
  %down = call @linear_128x64(%act, %wdown)
      : (tensor<?x?x128xf32>, tensor<128x64xf32>) -> tensor<?x?x64xf32>
  %out = arith.addf %h, %down : tensor<?x?x64xf32>
  return %out : tensor<?x?x64xf32>
}

/// x [b, s, k] times w [k, n] for 64 -> 64.
func.func private @linear_64x64(%x: tensor<?x?x64xf32>, %w: tensor<64x64xf32>)
    -> tensor<?x?x64xf32> {
  %xd = tensor.cast %x : tensor<?x?x64xf32> to tensor<?x?x?xf32>
  %wd = tensor.cast %w : tensor<64x64xf32> to tensor<?x?xf32>
  %r = call @linear(%xd, %wd) : (tensor<?x?x?xf32>, tensor<?x?xf32>) -> tensor<?x?x?xf32>
  %rs = tensor.cast %r : tensor<?x?x?xf32> to tensor<?x?x64xf32>
  return %rs : tensor<?x?x64xf32>
}

func.func private @linear_64x16(%x: tensor<?x?x64xf32>, %w: tensor<64x16xf32>)
    -> tensor<?x?x16xf32> {
  %xd = tensor.cast %x : tensor<?x?x64xf32> to tensor<?x?x?xf32>
  %wd = tensor.cast %w : tensor<64x16xf32> to tensor<?x?xf32>
  %r = call @linear(%xd, %wd) : (tensor<?x?x?xf32>, tensor<?x?xf32>) -> tensor<?x?x?xf32>
  %rs = tensor.cast %r : tensor<?x?x?xf32> to tensor<?x?x16xf32>
  return %rs : tensor<?x?x16xf32>
}

func.func private @linear_64x128(%x: tensor<?x?x64xf32>, %w: tensor<64x128xf32>)
    -> tensor<?x?x128xf32> {
  %xd = tensor.cast %x : tensor<?x?x64xf32> to tensor<?x?x?xf32>
  %wd = tensor.cast %w : tensor<64x128xf32> to tensor<?x?xf32>
  %r = call @linear(%xd, %wd) : (tensor<?x?x?xf32>, tensor<?x?xf32>) -> tensor<?x?x?xf32>
  %rs = tensor.cast %r : tensor<?x?x?xf32> to tensor<?x?x128xf32>
  return %rs : tensor<?x?x128xf32>
}

func.func private @linear_128x64(%x: tensor<?x?x128xf32>, %w: tensor<128x64xf32>)
    -> tensor<?x?x64xf32> {
  %xd = tensor.cast %x : tensor<?x?x128xf32> to tensor<?x?x?xf32>
  %wd = tensor.cast %w : tensor<128x64xf32> to tensor<?x?xf32>
  %r = call @linear(%xd, %wd) : (tensor<?x?x?xf32>, tensor<?x?xf32>) -> tensor<?x?x?xf32>
  %rs = tensor.cast %r : tensor<?x?x?xf32> to tensor<?x?x64xf32>
  return %rs : tensor<?x?x64xf32>
}

/// x [b, s, k] times w [k, n]: each row on its own.
func.func private @linear(%x: tensor<?x?x?xf32>, %w: tensor<?x?xf32>)
    -> tensor<?x?x?xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %b = tensor.dim %x, %c0 : tensor<?x?x?xf32>
  %s = tensor.dim %x, %c1 : tensor<?x?x?xf32>
  %n = tensor.dim %w, %c1 : tensor<?x?xf32>
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty(%b, %s, %n) : tensor<?x?x?xf32>
  %init = linalg.fill ins(%zero : f32) outs(%e : tensor<?x?x?xf32>) -> tensor<?x?x?xf32>
  %r = linalg.generic {
      indexing_maps = [affine_map<(b, s, n, k) -> (b, s, k)>,
                       affine_map<(b, s, n, k) -> (k, n)>,
                       affine_map<(b, s, n, k) -> (b, s, n)>],
      iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%x, %w : tensor<?x?x?xf32>, tensor<?x?xf32>)
      outs(%init : tensor<?x?x?xf32>) {
  ^bb0(%a: f32, %bw: f32, %acc: f32):
    %p = arith.mulf %a, %bw : f32
    %sum = arith.addf %acc, %p : f32
    linalg.yield %sum : f32
  } -> tensor<?x?x?xf32>
  return %r : tensor<?x?x?xf32>
}

/// Row t of the result is embed[tokens[b, t]].
func.func private @embedding(%tokens: tensor<?x?xi32>, %embed: tensor<128x64xf32>)
    -> tensor<?x?x64xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %b = tensor.dim %tokens, %c0 : tensor<?x?xi32>
  %s = tensor.dim %tokens, %c1 : tensor<?x?xi32>
  %e = tensor.empty(%b, %s) : tensor<?x?x64xf32>
  %r = linalg.generic {indexing_maps = [#rowsOnly, #rows3],
                       iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%tokens : tensor<?x?xi32>) outs(%e : tensor<?x?x64xf32>) {
  ^bb0(%token: i32, %unused: f32):
    %row = arith.index_cast %token : i32 to index
    %h = linalg.index 2 : index
    %v = tensor.extract %embed[%row, %h] : tensor<128x64xf32>
    linalg.yield %v : f32
  } -> tensor<?x?x64xf32>
  return %r : tensor<?x?x64xf32>
}

/// x * w / sqrt(mean(x^2) + 1e-5) over the hidden dimension.
func.func private @rmsnorm(%x: tensor<?x?x64xf32>, %w: tensor<64xf32>)
    -> tensor<?x?x64xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %b = tensor.dim %x, %c0 : tensor<?x?x64xf32>
  %s = tensor.dim %x, %c1 : tensor<?x?x64xf32>
  %zero = arith.constant 0.0 : f32
  %es = tensor.empty(%b, %s) : tensor<?x?xf32>
  %init = linalg.fill ins(%zero : f32) outs(%es : tensor<?x?xf32>) -> tensor<?x?xf32>
  %sumsq = linalg.generic {indexing_maps = [#rows3, #rowsOnly],
                           iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x : tensor<?x?x64xf32>) outs(%init : tensor<?x?xf32>) {
  ^bb0(%v: f32, %acc: f32):
    %sq = arith.mulf %v, %v : f32
    %sum = arith.addf %acc, %sq : f32
    linalg.yield %sum : f32
  } -> tensor<?x?xf32>
  %e = tensor.empty(%b, %s) : tensor<?x?x64xf32>
  %r = linalg.generic {indexing_maps = [#rows3, #rowsOnly, #hidden, #rows3],
                       iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%x, %sumsq, %w : tensor<?x?x64xf32>, tensor<?x?xf32>, tensor<64xf32>)
      outs(%e : tensor<?x?x64xf32>) {
  ^bb0(%v: f32, %ss: f32, %wh: f32, %unused: f32):
    %n = arith.constant 64.0 : f32
    %eps = arith.constant 1.0e-5 : f32
    %mean = arith.divf %ss, %n : f32
    %m = arith.addf %mean, %eps : f32
    %inv = math.rsqrt %m : f32
    %xn = arith.mulf %v, %inv : f32
    %y = arith.mulf %xn, %wh : f32
    linalg.yield %y : f32
  } -> tensor<?x?x64xf32>
  return %r : tensor<?x?x64xf32>
}

/// Rotary embedding of [b, s, heads, 16] at the position of each row:
/// x * cos(p * f) + rotate_half(x) * sin(p * f), f = 10000^(-2i/16) for
/// i = d mod 8, rotate_half(x) = concat(-x[8:], x[:8]) (the sign is applied
/// in the last step).
func.func private @rotary(%x: tensor<?x?x?x16xf32>, %positions: tensor<?x?xi32>)
    -> tensor<?x?x?x16xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %b = tensor.dim %x, %c0 : tensor<?x?x?x16xf32>
  %s = tensor.dim %x, %c1 : tensor<?x?x?x16xf32>
  %n = tensor.dim %x, %c2 : tensor<?x?x?x16xf32>
  %lo = tensor.extract_slice %x[0, 0, 0, 0] [%b, %s, %n, 8] [1, 1, 1, 1]
      : tensor<?x?x?x16xf32> to tensor<?x?x?x8xf32>
  %hi = tensor.extract_slice %x[0, 0, 0, 8] [%b, %s, %n, 8] [1, 1, 1, 1]
      : tensor<?x?x?x16xf32> to tensor<?x?x?x8xf32>
  %rot = tensor.concat dim(3) %hi, %lo
      : (tensor<?x?x?x8xf32>, tensor<?x?x?x8xf32>) -> tensor<?x?x?x16xf32>
  %e = tensor.empty(%b, %s, %n) : tensor<?x?x?x16xf32>
  %r = linalg.generic {
      indexing_maps = [affine_map<(b, s, h, d) -> (b, s, h, d)>,
                       affine_map<(b, s, h, d) -> (b, s, h, d)>,
                       affine_map<(b, s, h, d) -> (b, s)>,
                       affine_map<(b, s, h, d) -> (b, s, h, d)>],
      iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%x, %rot, %positions : tensor<?x?x?x16xf32>, tensor<?x?x?x16xf32>, tensor<?x?xi32>)
      outs(%e : tensor<?x?x?x16xf32>) {
  ^bb0(%v: f32, %vr: f32, %p: i32, %unused: f32):
    %d = linalg.index 3 : index
    %c8 = arith.constant 8 : index
    %i = arith.remui %d, %c8 : index
    %ii = arith.index_cast %i : index to i32
    %fi = arith.sitofp %ii : i32 to f32
    // -2 ln(10000) / 16
    %k = arith.constant -1.15129255 : f32
    %lf = arith.mulf %fi, %k : f32
    %freq = math.exp %lf : f32
    %fp = arith.sitofp %p : i32 to f32
    %angle = arith.mulf %fp, %freq : f32
    %cos = math.cos %angle : f32
    %sin = math.sin %angle : f32
    %a = arith.mulf %v, %cos : f32
    %bb = arith.mulf %vr, %sin : f32
    %first = arith.cmpi ult, %d, %c8 : index
    %y1 = arith.addf %a, %bb : f32
    %y0 = arith.subf %a, %bb : f32
    %y = arith.select %first, %y0, %y1 : f32
    linalg.yield %y : f32
  } -> tensor<?x?x?x16xf32>
  return %r : tensor<?x?x?x16xf32>
}

/// Logits against the embedding (tied): x [b, s, 64] . embed [128, 64]^T.
func.func private @lm_head(%x: tensor<?x?x64xf32>, %embed: tensor<128x64xf32>)
    -> tensor<?x?x128xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %b = tensor.dim %x, %c0 : tensor<?x?x64xf32>
  %s = tensor.dim %x, %c1 : tensor<?x?x64xf32>
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty(%b, %s) : tensor<?x?x128xf32>
  %init = linalg.fill ins(%zero : f32) outs(%e : tensor<?x?x128xf32>) -> tensor<?x?x128xf32>
  %r = linalg.generic {
      indexing_maps = [affine_map<(b, s, v, h) -> (b, s, h)>,
                       affine_map<(b, s, v, h) -> (v, h)>,
                       affine_map<(b, s, v, h) -> (b, s, v)>],
      iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%x, %embed : tensor<?x?x64xf32>, tensor<128x64xf32>)
      outs(%init : tensor<?x?x128xf32>) {
  ^bb0(%a: f32, %w: f32, %acc: f32):
    %p = arith.mulf %a, %w : f32
    %sum = arith.addf %acc, %p : f32
    linalg.yield %sum : f32
  } -> tensor<?x?x128xf32>
  return %r : tensor<?x?x128xf32>
}
