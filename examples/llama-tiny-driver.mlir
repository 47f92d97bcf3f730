// What a caller of examples/llama-tiny.mlir needs once kvc-incrementalize
// has run: declarations of the generated functions, fixed pseudo-random
// weights and a greedy sampler. Shared by test/Integration/CPU/llama-generate.mlir
// and bench/cpu/generate.mlir, which append it to the model.

func.func private @llama_prefill(tensor<?x?xi32>, tensor<128x64xf32>, tensor<64xf32>, tensor<64x64xf32>, tensor<64x16xf32>, tensor<64x16xf32>, tensor<64x64xf32>, tensor<64xf32>, tensor<64x128xf32>, tensor<64x128xf32>, tensor<128x64xf32>, tensor<64xf32>, tensor<64x64xf32>, tensor<64x16xf32>, tensor<64x16xf32>, tensor<64x64xf32>, tensor<64xf32>, tensor<64x128xf32>, tensor<64x128xf32>, tensor<128x64xf32>, tensor<64xf32>, tensor<?xi32>, index)
    -> (tensor<?x1x128xf32>, !kvc.cache<?x1x?x16xf32>, !kvc.cache<?x1x?x16xf32>)
func.func private @llama_decode(tensor<?x?xi32>, tensor<128x64xf32>, tensor<64xf32>, tensor<64x64xf32>, tensor<64x16xf32>, tensor<64x16xf32>, tensor<64x64xf32>, tensor<64xf32>, tensor<64x128xf32>, tensor<64x128xf32>, tensor<128x64xf32>, tensor<64xf32>, tensor<64x64xf32>, tensor<64x16xf32>, tensor<64x16xf32>, tensor<64x64xf32>, tensor<64xf32>, tensor<64x128xf32>, tensor<64x128xf32>, tensor<128x64xf32>, tensor<64xf32>, tensor<?xi32>, !kvc.cache<?x1x?x16xf32>, !kvc.cache<?x1x?x16xf32>)
    -> tensor<?x?x128xf32>

/// Uniform in [-scale, scale): a hash of the element's coordinates.
func.func private @rand2(%rows: index, %cols: index, %seed: f32, %scale: f32) -> tensor<?x?xf32> {
  %t = tensor.generate %rows, %cols {
  ^bb0(%i: index, %j: index):
    %ii = arith.index_cast %i : index to i32
    %jj = arith.index_cast %j : index to i32
    %fi = arith.sitofp %ii : i32 to f32
    %fj = arith.sitofp %jj : i32 to f32
    %a = arith.constant 12.9898 : f32
    %b = arith.constant 78.233 : f32
    %m = arith.constant 43758.5453 : f32
    %x0 = arith.mulf %fi, %a : f32
    %x1 = arith.mulf %fj, %b : f32
    %x2 = arith.addf %x0, %x1 : f32
    %x3 = arith.addf %x2, %seed : f32
    %sn = math.sin %x3 : f32
    %big = arith.mulf %sn, %m : f32
    %fl = math.floor %big : f32
    %u = arith.subf %big, %fl : f32
    %two = arith.constant 2.0 : f32
    %one = arith.constant 1.0 : f32
    %u2 = arith.mulf %u, %two : f32
    %c = arith.subf %u2, %one : f32
    %v = arith.mulf %c, %scale : f32
    tensor.yield %v : f32
  } : tensor<?x?xf32>
  return %t : tensor<?x?xf32>
}

/// Norm weights: 1 plus noise of 0.1.
func.func private @rand1(%n: index, %seed: f32) -> tensor<?xf32> {
  %c1 = arith.constant 1 : index
  %scale = arith.constant 0.1 : f32
  %r = func.call @rand2(%c1, %n, %seed, %scale) : (index, index, f32, f32) -> tensor<?x?xf32>
  %flat = tensor.collapse_shape %r [[0, 1]] : tensor<?x?xf32> into tensor<?xf32>
  %one = arith.constant 1.0 : f32
  %e = tensor.empty(%n) : tensor<?xf32>
  %ones = linalg.fill ins(%one : f32) outs(%e : tensor<?xf32>) -> tensor<?xf32>
  %w = arith.addf %ones, %flat : tensor<?xf32>
  return %w : tensor<?xf32>
}

/// The index of the largest of 128 logits.
func.func private @argmax(%logits: tensor<128xf32>) -> i32 {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c128 = arith.constant 128 : index
  %first = tensor.extract %logits[%c0] : tensor<128xf32>
  %best:2 = scf.for %v = %c1 to %c128 step %c1 iter_args(%bv = %first, %bi = %c0) -> (f32, index) {
    %x = tensor.extract %logits[%v] : tensor<128xf32>
    %gt = arith.cmpf ogt, %x, %bv : f32
    %nv = arith.select %gt, %x, %bv : f32
    %ni = arith.select %gt, %v, %bi : index
    scf.yield %nv, %ni : f32, index
  }
  %r = arith.index_cast %best#1 : index to i32
  return %r : i32
}


/// The 20 weights of @llama, in its argument order.
func.func @llama_weights() -> (tensor<128x64xf32>, tensor<64xf32>, tensor<64x64xf32>, tensor<64x16xf32>, tensor<64x16xf32>, tensor<64x64xf32>, tensor<64xf32>, tensor<64x128xf32>, tensor<64x128xf32>, tensor<128x64xf32>, tensor<64xf32>, tensor<64x64xf32>, tensor<64x16xf32>, tensor<64x16xf32>, tensor<64x64xf32>, tensor<64xf32>, tensor<64x128xf32>, tensor<64x128xf32>, tensor<128x64xf32>, tensor<64xf32>) {
  %c1 = arith.constant 1 : index
  %c16 = arith.constant 16 : index
  %c64 = arith.constant 64 : index
  %c128 = arith.constant 128 : index
  %seed0 = arith.constant 0.50 : f32
  %scale0 = arith.constant 0.5 : f32
  %seed1 = arith.constant 7.81 : f32
  %seed2 = arith.constant 15.12 : f32
  %scale2 = arith.constant 0.3 : f32
  %seed3 = arith.constant 22.43 : f32
  %scale3 = arith.constant 0.3 : f32
  %seed4 = arith.constant 29.74 : f32
  %scale4 = arith.constant 0.3 : f32
  %seed5 = arith.constant 37.05 : f32
  %scale5 = arith.constant 0.3 : f32
  %seed6 = arith.constant 44.36 : f32
  %seed7 = arith.constant 51.67 : f32
  %scale7 = arith.constant 0.3 : f32
  %seed8 = arith.constant 58.98 : f32
  %scale8 = arith.constant 0.3 : f32
  %seed9 = arith.constant 66.29 : f32
  %scale9 = arith.constant 0.25 : f32
  %seed10 = arith.constant 73.60 : f32
  %seed11 = arith.constant 80.91 : f32
  %scale11 = arith.constant 0.3 : f32
  %seed12 = arith.constant 88.22 : f32
  %scale12 = arith.constant 0.3 : f32
  %seed13 = arith.constant 95.53 : f32
  %scale13 = arith.constant 0.3 : f32
  %seed14 = arith.constant 102.84 : f32
  %scale14 = arith.constant 0.3 : f32
  %seed15 = arith.constant 110.15 : f32
  %seed16 = arith.constant 117.46 : f32
  %scale16 = arith.constant 0.3 : f32
  %seed17 = arith.constant 124.77 : f32
  %scale17 = arith.constant 0.3 : f32
  %seed18 = arith.constant 132.08 : f32
  %scale18 = arith.constant 0.25 : f32
  %seed19 = arith.constant 139.39 : f32
  %embed_d = func.call @rand2(%c128, %c64, %seed0, %scale0) : (index, index, f32, f32) -> tensor<?x?xf32>
  %embed = tensor.cast %embed_d : tensor<?x?xf32> to tensor<128x64xf32>
  %norm0_d = func.call @rand1(%c64, %seed1) : (index, f32) -> tensor<?xf32>
  %norm0 = tensor.cast %norm0_d : tensor<?xf32> to tensor<64xf32>
  %wq0_d = func.call @rand2(%c64, %c64, %seed2, %scale2) : (index, index, f32, f32) -> tensor<?x?xf32>
  %wq0 = tensor.cast %wq0_d : tensor<?x?xf32> to tensor<64x64xf32>
  %wk0_d = func.call @rand2(%c64, %c16, %seed3, %scale3) : (index, index, f32, f32) -> tensor<?x?xf32>
  %wk0 = tensor.cast %wk0_d : tensor<?x?xf32> to tensor<64x16xf32>
  %wv0_d = func.call @rand2(%c64, %c16, %seed4, %scale4) : (index, index, f32, f32) -> tensor<?x?xf32>
  %wv0 = tensor.cast %wv0_d : tensor<?x?xf32> to tensor<64x16xf32>
  %wo0_d = func.call @rand2(%c64, %c64, %seed5, %scale5) : (index, index, f32, f32) -> tensor<?x?xf32>
  %wo0 = tensor.cast %wo0_d : tensor<?x?xf32> to tensor<64x64xf32>
  %mlpnorm0_d = func.call @rand1(%c64, %seed6) : (index, f32) -> tensor<?xf32>
  %mlpnorm0 = tensor.cast %mlpnorm0_d : tensor<?xf32> to tensor<64xf32>
  %wgate0_d = func.call @rand2(%c64, %c128, %seed7, %scale7) : (index, index, f32, f32) -> tensor<?x?xf32>
  %wgate0 = tensor.cast %wgate0_d : tensor<?x?xf32> to tensor<64x128xf32>
  %wup0_d = func.call @rand2(%c64, %c128, %seed8, %scale8) : (index, index, f32, f32) -> tensor<?x?xf32>
  %wup0 = tensor.cast %wup0_d : tensor<?x?xf32> to tensor<64x128xf32>
  %wdown0_d = func.call @rand2(%c128, %c64, %seed9, %scale9) : (index, index, f32, f32) -> tensor<?x?xf32>
  %wdown0 = tensor.cast %wdown0_d : tensor<?x?xf32> to tensor<128x64xf32>
  %norm1_d = func.call @rand1(%c64, %seed10) : (index, f32) -> tensor<?xf32>
  %norm1 = tensor.cast %norm1_d : tensor<?xf32> to tensor<64xf32>
  %wq1_d = func.call @rand2(%c64, %c64, %seed11, %scale11) : (index, index, f32, f32) -> tensor<?x?xf32>
  %wq1 = tensor.cast %wq1_d : tensor<?x?xf32> to tensor<64x64xf32>
  %wk1_d = func.call @rand2(%c64, %c16, %seed12, %scale12) : (index, index, f32, f32) -> tensor<?x?xf32>
  %wk1 = tensor.cast %wk1_d : tensor<?x?xf32> to tensor<64x16xf32>
  %wv1_d = func.call @rand2(%c64, %c16, %seed13, %scale13) : (index, index, f32, f32) -> tensor<?x?xf32>
  %wv1 = tensor.cast %wv1_d : tensor<?x?xf32> to tensor<64x16xf32>
  %wo1_d = func.call @rand2(%c64, %c64, %seed14, %scale14) : (index, index, f32, f32) -> tensor<?x?xf32>
  %wo1 = tensor.cast %wo1_d : tensor<?x?xf32> to tensor<64x64xf32>
  %mlpnorm1_d = func.call @rand1(%c64, %seed15) : (index, f32) -> tensor<?xf32>
  %mlpnorm1 = tensor.cast %mlpnorm1_d : tensor<?xf32> to tensor<64xf32>
  %wgate1_d = func.call @rand2(%c64, %c128, %seed16, %scale16) : (index, index, f32, f32) -> tensor<?x?xf32>
  %wgate1 = tensor.cast %wgate1_d : tensor<?x?xf32> to tensor<64x128xf32>
  %wup1_d = func.call @rand2(%c64, %c128, %seed17, %scale17) : (index, index, f32, f32) -> tensor<?x?xf32>
  %wup1 = tensor.cast %wup1_d : tensor<?x?xf32> to tensor<64x128xf32>
  %wdown1_d = func.call @rand2(%c128, %c64, %seed18, %scale18) : (index, index, f32, f32) -> tensor<?x?xf32>
  %wdown1 = tensor.cast %wdown1_d : tensor<?x?xf32> to tensor<128x64xf32>
  %finalnorm_d = func.call @rand1(%c64, %seed19) : (index, f32) -> tensor<?xf32>
  %finalnorm = tensor.cast %finalnorm_d : tensor<?xf32> to tensor<64xf32>

  return %embed, %norm0, %wq0, %wk0, %wv0, %wo0, %mlpnorm0, %wgate0, %wup0, %wdown0, %norm1, %wq1, %wk1, %wv1, %wo1, %mlpnorm1, %wgate1, %wup1, %wdown1, %finalnorm : tensor<128x64xf32>, tensor<64xf32>, tensor<64x64xf32>, tensor<64x16xf32>, tensor<64x16xf32>, tensor<64x64xf32>, tensor<64xf32>, tensor<64x128xf32>, tensor<64x128xf32>, tensor<128x64xf32>, tensor<64xf32>, tensor<64x64xf32>, tensor<64x16xf32>, tensor<64x16xf32>, tensor<64x64xf32>, tensor<64xf32>, tensor<64x128xf32>, tensor<64x128xf32>, tensor<128x64xf32>, tensor<64xf32>
}
