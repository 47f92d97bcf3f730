// RUN: kvc-opt %s --kvc-incrementalize -split-input-file -verify-diagnostics

// Tests that attention without a causal mask is refused: its rows read later
// rows.

func.func @bidirectional(%x: tensor<1x?x2x8xf32> {kvc.rows}) -> tensor<1x?x2x8xf32> {
  %c1 = arith.constant 1 : index
  %s = tensor.dim %x, %c1 : tensor<1x?x2x8xf32>
  %t = tensor.empty(%s) : tensor<1x2x?x8xf32>
  %xt = linalg.transpose ins(%x : tensor<1x?x2x8xf32>) outs(%t : tensor<1x2x?x8xf32>) permutation = [0, 2, 1, 3]
  // expected-error @+1 {{'kvc.attention' op mixes positions: attention without a causal mask lets every row see later rows, which decode has not computed; only causal kvc.attention may mix positions}}
  %o = kvc.attention %xt, %xt, %xt : tensor<1x2x?x8xf32>, tensor<1x2x?x8xf32>
  %e = tensor.empty(%s) : tensor<1x?x2x8xf32>
  %r = linalg.transpose ins(%o : tensor<1x2x?x8xf32>) outs(%e : tensor<1x?x2x8xf32>) permutation = [0, 2, 1, 3]
  return %r : tensor<1x?x2x8xf32>
}

// -----

// Tests that a masked attention is refused: the mask is a [query, key] value.

func.func @masked(%x: tensor<1x?x2x8xf32> {kvc.rows}, %m: tensor<1x1x4x4xf32>) -> tensor<1x?x2x8xf32> {
  %c1 = arith.constant 1 : index
  %s = tensor.dim %x, %c1 : tensor<1x?x2x8xf32>
  %t = tensor.empty(%s) : tensor<1x2x?x8xf32>
  %xt = linalg.transpose ins(%x : tensor<1x?x2x8xf32>) outs(%t : tensor<1x2x?x8xf32>) permutation = [0, 2, 1, 3]
  // expected-error @+1 {{an additive mask over [query, key] positions}}
  %o = kvc.attention %xt, %xt, %xt mask(%m : tensor<1x1x4x4xf32>) {causal} : tensor<1x2x?x8xf32>, tensor<1x2x?x8xf32>
  %e = tensor.empty(%s) : tensor<1x?x2x8xf32>
  %r = linalg.transpose ins(%o : tensor<1x2x?x8xf32>) outs(%e : tensor<1x?x2x8xf32>) permutation = [0, 2, 1, 3]
  return %r : tensor<1x?x2x8xf32>
}

// -----

// Tests that the sequence in the wrong dimension of an attention operand is
// reported with the roles the analysis found.

func.func @wrong_layout(%x: tensor<?x?x2x8xf32> {kvc.rows}) -> tensor<?x?x2x8xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %b = tensor.dim %x, %c0 : tensor<?x?x2x8xf32>
  %s = tensor.dim %x, %c1 : tensor<?x?x2x8xf32>
  %t = tensor.empty(%s, %b) : tensor<?x2x?x8xf32>
  %xt = linalg.transpose ins(%x : tensor<?x?x2x8xf32>) outs(%t : tensor<?x2x?x8xf32>) permutation = [1, 2, 0, 3]
  // expected-error @+1 {{expects its query laid out [batch, heads, sequence, head_dim], found roles [s, _, b, _] (b: batch, s: sequence)}}
  %o = kvc.attention %xt, %xt, %xt {causal} : tensor<?x2x?x8xf32>, tensor<?x2x?x8xf32>
  return %x : tensor<?x?x2x8xf32>
}

// -----

// Tests that a sum over positions is refused.

func.func @sum_over_positions(%x: tensor<1x?x8xf32> {kvc.rows}) -> tensor<1x?x8xf32> {
  %z = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<1x8xf32>
  %f = linalg.fill ins(%z : f32) outs(%e : tensor<1x8xf32>) -> tensor<1x8xf32>
  // expected-error @+1 {{'linalg.reduce' op mixes positions: loop d1 runs along the sequence and is a reduction (a sum, contraction or scan across positions)}}
  %r = linalg.reduce ins(%x : tensor<1x?x8xf32>) outs(%f : tensor<1x8xf32>) dimensions = [1]
    (%a: f32, %acc: f32) {
      %s = arith.addf %a, %acc : f32
      linalg.yield %s : f32
    }
  return %x : tensor<1x?x8xf32>
}

// -----

// Tests that a matmul contracting over the sequence is refused.

func.func @contract_positions(%x: tensor<1x?x8xf32> {kvc.rows}) -> tensor<1x?x8xf32> {
  %c1 = arith.constant 1 : index
  %s = tensor.dim %x, %c1 : tensor<1x?x8xf32>
  %t = tensor.empty(%s) : tensor<1x8x?xf32>
  %xt = linalg.transpose ins(%x : tensor<1x?x8xf32>) outs(%t : tensor<1x8x?xf32>) permutation = [0, 2, 1]
  %e = tensor.empty() : tensor<1x8x8xf32>
  // expected-error @+1 {{'linalg.batch_matmul' op mixes positions: loop d3 runs along the sequence and is a reduction (a sum, contraction or scan across positions)}}
  %g = linalg.batch_matmul ins(%xt, %x : tensor<1x8x?xf32>, tensor<1x?x8xf32>) outs(%e : tensor<1x8x8xf32>) -> tensor<1x8x8xf32>
  return %x : tensor<1x?x8xf32>
}

// -----

// Tests that attention written by hand (q . k^T over two sequence loops) is
// refused: only kvc.attention can be cached.

func.func @scores(%q: tensor<1x?x8xf32> {kvc.rows}, %k: tensor<1x?x8xf32> {kvc.rows}) -> tensor<1x?x8xf32> {
  %c1 = arith.constant 1 : index
  %s = tensor.dim %q, %c1 : tensor<1x?x8xf32>
  %e = tensor.empty(%s, %s) : tensor<1x?x?xf32>
  // expected-error @+1 {{'linalg.generic' op mixes positions: the sequence runs along loops d1 and d2, so each output element combines rows of two positions}}
  %r = linalg.generic {indexing_maps = [affine_map<(b, i, j, d) -> (b, i, d)>,
                                        affine_map<(b, i, j, d) -> (b, j, d)>,
                                        affine_map<(b, i, j, d) -> (b, i, j)>],
                       iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%q, %k : tensor<1x?x8xf32>, tensor<1x?x8xf32>) outs(%e : tensor<1x?x?xf32>) {
  ^bb0(%a: f32, %b: f32, %acc: f32):
    %p = arith.mulf %a, %b : f32
    %sum = arith.addf %acc, %p : f32
    linalg.yield %sum : f32
  } -> tensor<1x?x?xf32>
  return %q : tensor<1x?x8xf32>
}

// -----

// Tests that a slice shifting rows (the previous token, say) is refused.

func.func @shift(%x: tensor<1x?x8xf32> {kvc.rows}) -> tensor<1x?x8xf32> {
  %c1 = arith.constant 1 : index
  %s = tensor.dim %x, %c1 : tensor<1x?x8xf32>
  // expected-error @+1 {{'tensor.extract_slice' op mixes positions: it slices the sequence dimension 1 of 'tensor<1x?x8xf32>', so row t of the result is not row t of the input}}
  %p = tensor.extract_slice %x[0, 1, 0] [1, %s, 8] [1, 1, 1] : tensor<1x?x8xf32> to tensor<1x?x8xf32>
  return %p : tensor<1x?x8xf32>
}

// -----

// Tests that concatenating along the sequence is refused.

func.func @concat_rows(%x: tensor<1x?x8xf32> {kvc.rows}) -> tensor<1x?x8xf32> {
  // expected-error @+1 {{'tensor.concat' op mixes positions: it concatenates along the sequence dimension 1}}
  %c = tensor.concat dim(1) %x, %x : (tensor<1x?x8xf32>, tensor<1x?x8xf32>) -> tensor<1x?x8xf32>
  return %c : tensor<1x?x8xf32>
}

// -----

// Tests that an operand read by row number without carrying the sequence (a
// table sliced to the prompt length) is refused.

func.func @table_by_row(%x: tensor<1x?x8xf32> {kvc.rows}, %table: tensor<?x8xf32>) -> tensor<1x?x8xf32> {
  %c1 = arith.constant 1 : index
  %s = tensor.dim %x, %c1 : tensor<1x?x8xf32>
  %e = tensor.empty(%s) : tensor<1x?x8xf32>
  // expected-error @+1 {{'linalg.generic' op operand #1 does not carry the sequence but is indexed by loop d1, which does: a table read by row number shifts when decode rows stand at later positions; index it by a kvc.positions value}}
  %r = linalg.generic {indexing_maps = [affine_map<(b, s, d) -> (b, s, d)>,
                                        affine_map<(b, s, d) -> (s, d)>,
                                        affine_map<(b, s, d) -> (b, s, d)>],
                       iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%x, %table : tensor<1x?x8xf32>, tensor<?x8xf32>) outs(%e : tensor<1x?x8xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %y = arith.addf %a, %b : f32
    linalg.yield %y : f32
  } -> tensor<1x?x8xf32>
  return %r : tensor<1x?x8xf32>
}

// -----

// Tests that reading the row number of the sequence loop is refused: decode
// rows stand at other positions.

func.func @row_number(%x: tensor<1x?x8xf32> {kvc.rows}) -> tensor<1x?x8xf32> {
  %c1 = arith.constant 1 : index
  %s = tensor.dim %x, %c1 : tensor<1x?x8xf32>
  %e = tensor.empty(%s) : tensor<1x?x8xf32>
  %r = linalg.generic {indexing_maps = [affine_map<(b, s, d) -> (b, s, d)>,
                                        affine_map<(b, s, d) -> (b, s, d)>],
                       iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%x : tensor<1x?x8xf32>) outs(%e : tensor<1x?x8xf32>) {
  ^bb0(%a: f32, %o: f32):
    // expected-error @+1 {{'linalg.index' op reads the row number of the sequence loop d1, but decode rows stand at other positions: take positions from the argument marked kvc.positions}}
    %i = linalg.index 1 : index
    %ii = arith.index_cast %i : index to i32
    %f = arith.sitofp %ii : i32 to f32
    %y = arith.addf %a, %f : f32
    linalg.yield %y : f32
  } -> tensor<1x?x8xf32>
  return %r : tensor<1x?x8xf32>
}

// -----

// Tests that a region reading rows by a computed index is refused.

func.func @gather_rows(%x: tensor<1x?x8xf32> {kvc.rows}, %idx: tensor<4xindex>) -> tensor<1x?x8xf32> {
  %e = tensor.empty() : tensor<4x8xf32>
  // expected-error @+1 {{'linalg.generic' op reads a value that carries the sequence from inside its region}}
  %r = linalg.generic {indexing_maps = [affine_map<(i, d) -> (i)>, affine_map<(i, d) -> (i, d)>],
                       iterator_types = ["parallel", "parallel"]}
      ins(%idx : tensor<4xindex>) outs(%e : tensor<4x8xf32>) {
  ^bb0(%row: index, %o: f32):
    %c0 = arith.constant 0 : index
    %d = linalg.index 1 : index
    %v = tensor.extract %x[%c0, %row, %d] : tensor<1x?x8xf32>
    linalg.yield %v : f32
  } -> tensor<4x8xf32>
  return %x : tensor<1x?x8xf32>
}

// -----

// Tests that an op the analysis does not know is refused when it touches
// rows, naming what is understood.

func.func @unknown(%x: tensor<1x?x8xf32> {kvc.rows}) -> tensor<1x?x8xf32> {
  %z = arith.constant 0.0 : f32
  // expected-error @+1 {{'tensor.pad' op is not known to be row-local, and operand #0 carries the sequence; kvc-incrementalize understands linalg ops, elementwise arith/math, tensor reshapes, slices and concatenations, and causal kvc.attention}}
  %p = tensor.pad %x low[0, 0, 0] high[0, 0, 0] {
  ^bb0(%i: index, %j: index, %k: index):
    tensor.yield %z : f32
  } : tensor<1x?x8xf32> to tensor<1x?x8xf32>
  return %p : tensor<1x?x8xf32>
}

// -----

// Tests that a call is refused with the advice to inline.

func.func private @helper(tensor<1x?x8xf32>) -> tensor<1x?x8xf32>

func.func @calls(%x: tensor<1x?x8xf32> {kvc.rows}) -> tensor<1x?x8xf32> {
  // expected-error @+1 {{'func.call' op calls a function the analysis cannot see into: inline it first (--inline)}}
  %r = func.call @helper(%x) : (tensor<1x?x8xf32>) -> tensor<1x?x8xf32>
  return %r : tensor<1x?x8xf32>
}

// -----

// Tests that a static sequence dimension is refused.

// expected-error @+1 {{'func.func' op the sequence dimension (1) of argument #0 must be dynamic, found 'tensor<1x16x8xf32>': prefill and decode run one body on S and T rows}}
func.func @static_rows(%x: tensor<1x16x8xf32> {kvc.rows}) -> tensor<1x16x8xf32> {
  return %x : tensor<1x16x8xf32>
}

// -----

// Tests that a function without attention is refused: there is nothing to
// cache.

// expected-error @+1 {{'func.func' op has no causal kvc.attention: there is nothing to cache}}
func.func @no_attention(%x: tensor<1x?x8xf32> {kvc.rows}) -> tensor<1x?x8xf32> {
  %y = arith.addf %x, %x : tensor<1x?x8xf32>
  return %y : tensor<1x?x8xf32>
}

// -----

// Tests that dynamic head counts are refused (by the verifier): they size
// the cache.

func.func @dynamic_heads(%x: tensor<1x?x?x8xf32> {kvc.rows}) -> tensor<1x?x?x8xf32> {
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %s = tensor.dim %x, %c1 : tensor<1x?x?x8xf32>
  %h = tensor.dim %x, %c2 : tensor<1x?x?x8xf32>
  %t = tensor.empty(%h, %s) : tensor<1x?x?x8xf32>
  %xt = linalg.transpose ins(%x : tensor<1x?x?x8xf32>) outs(%t : tensor<1x?x?x8xf32>) permutation = [0, 2, 1, 3]
  // expected-error @+1 {{'kvc.attention' op key heads must be static, found 'tensor<1x?x?x8xf32>'}}
  %o = kvc.attention %xt, %xt, %xt {causal} : tensor<1x?x?x8xf32>, tensor<1x?x?x8xf32>
  return %x : tensor<1x?x?x8xf32>
}

// -----

// Tests that IR already on caches is refused.

func.func @already(%x: tensor<1x?x8xf32> {kvc.rows}, %c: !kvc.cache<1x2x16x8xf32>) -> tensor<1x?x8xf32> {
  // expected-error @+1 {{'kvc.cache.length' op already works on caches: kvc-incrementalize takes full-sequence causal kvc.attention only}}
  %l = kvc.cache.length %c : !kvc.cache<1x2x16x8xf32>
  return %x : tensor<1x?x8xf32>
}

// -----

// Tests that a result without the sequence in dimension 1 is refused.

func.func @bad_result(%x: tensor<1x?x8xf32> {kvc.rows}, %w: tensor<1x8xf32>) -> tensor<1x8xf32> {
  // expected-error @+1 {{'func.return' op result #0 must be laid out [batch, sequence, ...] like the inputs, found roles [_, _] (b: batch, s: sequence)}}
  return %w : tensor<1x8xf32>
}

// -----

// Tests that positions must be a [batch, sequence] integer tensor.

// expected-error @+1 {{'func.func' op argument #1 marked kvc.positions must be a [batch, sequence] integer tensor, found 'tensor<1x?xf32>'}}
func.func @float_positions(%x: tensor<1x?x8xf32> {kvc.rows}, %p: tensor<1x?xf32> {kvc.positions}) -> tensor<1x?x8xf32> {
  return %x : tensor<1x?x8xf32>
}

// -----

// Tests that an argument cannot be both rows and positions.

// expected-error @+1 {{'func.func' op argument #0 is marked both kvc.rows and kvc.positions}}
func.func @both(%x: tensor<1x?xi32> {kvc.rows, kvc.positions}) -> tensor<1x?xi32> {
  return %x : tensor<1x?xi32>
}

// -----

// Tests that two positions arguments are refused.

// expected-error @+1 {{'func.func' op arguments #0 and #1 are both marked kvc.positions}}
func.func @two_positions(%p: tensor<1x?xi32> {kvc.positions}, %q: tensor<1x?xi32> {kvc.positions}) -> tensor<1x?xi32> {
  return %p : tensor<1x?xi32>
}

// -----

// Tests that an existing definition of a generated name is refused.

func.func @taken_prefill() {
  return
}

// expected-error @+1 {{'func.func' op cannot be made incremental: @taken_prefill already exists and is not a declaration}}
func.func @taken(%x: tensor<1x?x8xf32> {kvc.rows}) -> tensor<1x?x8xf32> {
  return %x : tensor<1x?x8xf32>
}

// -----

// Tests that a declaration of a generated function must have its type.

// expected-error @+1 {{'func.func' op is declared as '(tensor<1x?x2x8xf32>) -> tensor<1x?x2x8xf32>' but kvc-incrementalize generates '(tensor<1x?x2x8xf32>, tensor<1xi32>, !kvc.cache<1x2x?x8xf32>) -> tensor<1x?x2x8xf32>'}}
func.func private @mismatch_decode(tensor<1x?x2x8xf32>) -> tensor<1x?x2x8xf32>

func.func @mismatch(%x: tensor<1x?x2x8xf32> {kvc.rows}) -> tensor<1x?x2x8xf32> {
  %c1 = arith.constant 1 : index
  %s = tensor.dim %x, %c1 : tensor<1x?x2x8xf32>
  %t = tensor.empty(%s) : tensor<1x2x?x8xf32>
  %xt = linalg.transpose ins(%x : tensor<1x?x2x8xf32>) outs(%t : tensor<1x2x?x8xf32>) permutation = [0, 2, 1, 3]
  %o = kvc.attention %xt, %xt, %xt {causal} : tensor<1x2x?x8xf32>, tensor<1x2x?x8xf32>
  %e = tensor.empty(%s) : tensor<1x?x2x8xf32>
  %r = linalg.transpose ins(%o : tensor<1x2x?x8xf32>) outs(%e : tensor<1x?x2x8xf32>) permutation = [0, 2, 1, 3]
  return %r : tensor<1x?x2x8xf32>
}

// -----

// Tests that casting the sequence to a static size is refused.

func.func @static_cast(%x: tensor<1x?x8xf32> {kvc.rows}) -> tensor<1x?x8xf32> {
  // expected-error @+1 {{'tensor.cast' op casts the sequence dimension 1 to a static size: decode runs on another number of rows}}
  %c = tensor.cast %x : tensor<1x?x8xf32> to tensor<1x16x8xf32>
  return %x : tensor<1x?x8xf32>
}

// -----

// Tests that using the sequence length as a number is refused.

func.func @length_as_value(%x: tensor<1x?x8xf32> {kvc.rows}) -> tensor<1x?x8xf32> {
  %c1 = arith.constant 1 : index
  %s = tensor.dim %x, %c1 : tensor<1x?x8xf32>
  // expected-error @+1 {{'arith.index_cast' op is not known to be row-local, and operand #0 carries the sequence}}
  %si = arith.index_cast %s : index to i32
  return %x : tensor<1x?x8xf32>
}

// -----

// Tests that an expand_shape whose sizes do not show where the sequence goes
// is refused.

func.func @ambiguous_expand(%x: tensor<1x?x8xf32> {kvc.rows}) -> tensor<1x?x8xf32> {
  %c2 = arith.constant 2 : index
  %flat = tensor.collapse_shape %x [[0, 1, 2]] : tensor<1x?x8xf32> into tensor<?xf32>
  // expected-error @+1 {{'tensor.expand_shape' op splits source dimension 0 (bs) into sizes that do not show which one carries the sequence}}
  %e = tensor.expand_shape %flat [[0, 1]] output_shape [%c2, 4] : tensor<?xf32> into tensor<?x4xf32>
  return %x : tensor<1x?x8xf32>
}

// -----

// Tests that elementwise ops cannot combine rows with a value that has none.

func.func @rows_plus_invariant(%x: tensor<1x?x8xf32> {kvc.rows}, %w: tensor<1x?x8xf32>) -> tensor<1x?x8xf32> {
  // expected-error @+1 {{'arith.addf' op combines operand #1 with roles [_, _, _] elementwise with roles [b, s, _]}}
  %y = arith.addf %x, %w : tensor<1x?x8xf32>
  return %y : tensor<1x?x8xf32>
}
