// One attention layer, run the way a server runs it: a prompt is prefilled
// into a key/value cache, then one new token is decoded with its query only.
// The decoded row must equal the same row of full-sequence causal attention,
// which recomputes every row; the program prints both and their difference.
//
//   build/bin/kvc-opt examples/attention-decode.mlir --kvc-cpu-pipeline \
//     | mlir-runner -e main -entry-point-result=void \
//         -shared-libs=libmlir_runner_utils.so,libmlir_c_runner_utils.so

func.func private @printMemrefF32(tensor<*xf32>) attributes {llvm.emit_c_interface}

// Deterministic stand-ins for projected activations: sin(i * seed), i the
// flat index. Batch 1, 4 query heads sharing 2 key/value heads, 5 positions,
// head_dim 4.
func.func @activations(%seed: f32, %init: tensor<1x?x5x4xf32>) -> tensor<1x?x5x4xf32> {
  %r = linalg.generic {
      indexing_maps = [affine_map<(a, b, c, d) -> (a, b, c, d)>],
      iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      outs(%init : tensor<1x?x5x4xf32>) {
  ^bb0(%out: f32):
    %b = linalg.index 1 : index
    %c = linalg.index 2 : index
    %d = linalg.index 3 : index
    %c5 = arith.constant 5 : index
    %c4 = arith.constant 4 : index
    %bc = arith.muli %b, %c5 : index
    %bc1 = arith.addi %bc, %c : index
    %bcd = arith.muli %bc1, %c4 : index
    %flat = arith.addi %bcd, %d : index
    %i = arith.index_cast %flat : index to i32
    %f = arith.sitofp %i : i32 to f32
    %x = arith.mulf %f, %seed : f32
    %s = math.sin %x : f32
    linalg.yield %s : f32
  } -> tensor<1x?x5x4xf32>
  return %r : tensor<1x?x5x4xf32>
}

func.func @main() {
  %c2 = arith.constant 2 : index
  %c4 = arith.constant 4 : index
  %sq = arith.constant 0.37 : f32
  %sk = arith.constant 1.13 : f32
  %sv = arith.constant 0.71 : f32
  %eq = tensor.empty(%c4) : tensor<1x?x5x4xf32>
  %ekv = tensor.empty(%c2) : tensor<1x?x5x4xf32>
  %q0 = call @activations(%sq, %eq) : (f32, tensor<1x?x5x4xf32>) -> tensor<1x?x5x4xf32>
  %k0 = call @activations(%sk, %ekv) : (f32, tensor<1x?x5x4xf32>) -> tensor<1x?x5x4xf32>
  %v0 = call @activations(%sv, %ekv) : (f32, tensor<1x?x5x4xf32>) -> tensor<1x?x5x4xf32>
  %q = tensor.cast %q0 : tensor<1x?x5x4xf32> to tensor<1x4x5x4xf32>
  %k = tensor.cast %k0 : tensor<1x?x5x4xf32> to tensor<1x2x5x4xf32>
  %v = tensor.cast %v0 : tensor<1x?x5x4xf32> to tensor<1x2x5x4xf32>

  // Training form: every row attends causally over the whole sequence.
  %full = kvc.attention %q, %k, %v {causal} : tensor<1x4x5x4xf32>, tensor<1x2x5x4xf32>
  %last = tensor.extract_slice %full[0, 0, 4, 0] [1, 4, 1, 4] [1, 1, 1, 1]
      : tensor<1x4x5x4xf32> to tensor<1x4x1x4xf32>

  // Serving form: prefill positions 0..3 into the cache, then decode
  // position 4: append its key and value, attend with its query alone.
  %cache = kvc.cache.alloc() : !kvc.cache<1x2x16x4xf32>
  %at0 = arith.constant dense<0> : tensor<1xi32>
  %kp = tensor.extract_slice %k[0, 0, 0, 0] [1, 2, 4, 4] [1, 1, 1, 1] : tensor<1x2x5x4xf32> to tensor<1x2x4x4xf32>
  %vp = tensor.extract_slice %v[0, 0, 0, 0] [1, 2, 4, 4] [1, 1, 1, 1] : tensor<1x2x5x4xf32> to tensor<1x2x4x4xf32>
  kvc.cache.append %cache[%at0], %kp, %vp : !kvc.cache<1x2x16x4xf32>, tensor<1x2x4x4xf32>
  %at4 = arith.constant dense<4> : tensor<1xi32>
  %kn = tensor.extract_slice %k[0, 0, 4, 0] [1, 2, 1, 4] [1, 1, 1, 1] : tensor<1x2x5x4xf32> to tensor<1x2x1x4xf32>
  %vn = tensor.extract_slice %v[0, 0, 4, 0] [1, 2, 1, 4] [1, 1, 1, 1] : tensor<1x2x5x4xf32> to tensor<1x2x1x4xf32>
  %qn = tensor.extract_slice %q[0, 0, 4, 0] [1, 4, 1, 4] [1, 1, 1, 1] : tensor<1x4x5x4xf32> to tensor<1x4x1x4xf32>
  kvc.cache.append %cache[%at4], %kn, %vn : !kvc.cache<1x2x16x4xf32>, tensor<1x2x1x4xf32>
  %decoded = kvc.decode_attention %qn, %cache[%at4] : tensor<1x4x1x4xf32>, !kvc.cache<1x2x16x4xf32>
  kvc.cache.dealloc %cache : !kvc.cache<1x2x16x4xf32>

  %e = tensor.empty() : tensor<1x4x1x4xf32>
  %diff = linalg.sub ins(%last, %decoded : tensor<1x4x1x4xf32>, tensor<1x4x1x4xf32>)
      outs(%e : tensor<1x4x1x4xf32>) -> tensor<1x4x1x4xf32>
  %zero = arith.constant 0.0 : f32
  %init = tensor.from_elements %zero : tensor<f32>
  %max = linalg.reduce ins(%diff : tensor<1x4x1x4xf32>) outs(%init : tensor<f32>) dimensions = [0, 1, 2, 3]
    (%x: f32, %acc: f32) {
      %a = math.absf %x : f32
      %m = arith.maximumf %a, %acc : f32
      linalg.yield %m : f32
    }
  %m = tensor.extract %max[] : tensor<f32>
  // Printing last: an external callee may write its operand, so nothing
  // reads these tensors after it.
  vector.print str "full-sequence attention, row 4:\n"
  %u0 = tensor.cast %last : tensor<1x4x1x4xf32> to tensor<*xf32>
  call @printMemrefF32(%u0) : (tensor<*xf32>) -> ()
  vector.print str "decoded through the cache:\n"
  %u1 = tensor.cast %decoded : tensor<1x4x1x4xf32> to tensor<*xf32>
  call @printMemrefF32(%u1) : (tensor<*xf32>) -> ()

  vector.print str "max |full - decoded| = "
  vector.print %m : f32
  return
}
