// RUN: kvc-opt %s --kvc-cpu-pipeline \
// RUN: | mlir-runner -e main -entry-point-result=void \
// RUN:     -shared-libs=%mlir_runner_utils,%mlir_c_runner_utils \
// RUN: | FileCheck %s

// Decoding through a cache must give exactly what full-sequence causal
// attention gives at the same rows: the same loop nest reads the same
// numbers, so any wrong row, head group or length shows as a nonzero
// difference. Inputs are sin(x * seed) over the flat index, GQA 2:1.

#id = affine_map<(a, b, c, d) -> (a, b, c, d)>

func.func @fill(%seed: f32, %init: tensor<2x?x7x8xf32>) -> tensor<2x?x7x8xf32> {
  %r = linalg.generic {indexing_maps = [#id], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      outs(%init : tensor<2x?x7x8xf32>) {
  ^bb0(%out: f32):
    %a = linalg.index 0 : index
    %b = linalg.index 1 : index
    %c = linalg.index 2 : index
    %d = linalg.index 3 : index
    %c7 = arith.constant 7 : index
    %c8 = arith.constant 8 : index
    %c100 = arith.constant 100 : index
    %ab = arith.muli %a, %c100 : index
    %ab2 = arith.addi %ab, %b : index
    %abc = arith.muli %ab2, %c7 : index
    %abc2 = arith.addi %abc, %c : index
    %abcd = arith.muli %abc2, %c8 : index
    %flat = arith.addi %abcd, %d : index
    %i = arith.index_cast %flat : index to i32
    %f = arith.sitofp %i : i32 to f32
    %x = arith.mulf %f, %seed : f32
    %s = math.sin %x : f32
    linalg.yield %s : f32
  } -> tensor<2x?x7x8xf32>
  return %r : tensor<2x?x7x8xf32>
}

func.func @max_abs_diff(%a: tensor<2x4x1x8xf32>, %b: tensor<2x4x1x8xf32>) -> f32 {
  %e = tensor.empty() : tensor<2x4x1x8xf32>
  %d = linalg.generic {indexing_maps = [#id, #id, #id], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%a, %b : tensor<2x4x1x8xf32>, tensor<2x4x1x8xf32>) outs(%e : tensor<2x4x1x8xf32>) {
  ^bb0(%x: f32, %y: f32, %o: f32):
    %s = arith.subf %x, %y : f32
    %m = math.absf %s : f32
    linalg.yield %m : f32
  } -> tensor<2x4x1x8xf32>
  %zero = arith.constant 0.0 : f32
  %init = tensor.from_elements %zero : tensor<f32>
  %r = linalg.reduce ins(%d : tensor<2x4x1x8xf32>) outs(%init : tensor<f32>) dimensions = [0, 1, 2, 3]
    (%x: f32, %acc: f32) {
      %m = arith.maximumf %x, %acc : f32
      linalg.yield %m : f32
    }
  %v = tensor.extract %r[] : tensor<f32>
  return %v : f32
}

func.func @main() {
  %c2 = arith.constant 2 : index
  %c4 = arith.constant 4 : index
  %eq = tensor.empty(%c4) : tensor<2x?x7x8xf32>
  %ekv = tensor.empty(%c2) : tensor<2x?x7x8xf32>
  %s1 = arith.constant 0.37 : f32
  %s2 = arith.constant 1.13 : f32
  %s3 = arith.constant 0.71 : f32
  %qd = call @fill(%s1, %eq) : (f32, tensor<2x?x7x8xf32>) -> tensor<2x?x7x8xf32>
  %kd = call @fill(%s2, %ekv) : (f32, tensor<2x?x7x8xf32>) -> tensor<2x?x7x8xf32>
  %vd = call @fill(%s3, %ekv) : (f32, tensor<2x?x7x8xf32>) -> tensor<2x?x7x8xf32>
  %q = tensor.cast %qd : tensor<2x?x7x8xf32> to tensor<2x4x7x8xf32>
  %k = tensor.cast %kd : tensor<2x?x7x8xf32> to tensor<2x2x7x8xf32>
  %v = tensor.cast %vd : tensor<2x?x7x8xf32> to tensor<2x2x7x8xf32>

  %full = kvc.attention %q, %k, %v {causal} : tensor<2x4x7x8xf32>, tensor<2x2x7x8xf32>

  // Prefill rows [0, 6) of both sequences, then decode row 6.
  %c = kvc.cache.alloc() : !kvc.cache<2x2x16x8xf32>
  %zeros = arith.constant dense<0> : tensor<2xi32>
  %k06 = tensor.extract_slice %k[0, 0, 0, 0] [2, 2, 6, 8] [1, 1, 1, 1] : tensor<2x2x7x8xf32> to tensor<2x2x6x8xf32>
  %v06 = tensor.extract_slice %v[0, 0, 0, 0] [2, 2, 6, 8] [1, 1, 1, 1] : tensor<2x2x7x8xf32> to tensor<2x2x6x8xf32>
  kvc.cache.append %c[%zeros], %k06, %v06 : !kvc.cache<2x2x16x8xf32>, tensor<2x2x6x8xf32>
  %sixes = arith.constant dense<6> : tensor<2xi32>
  %k6 = tensor.extract_slice %k[0, 0, 6, 0] [2, 2, 1, 8] [1, 1, 1, 1] : tensor<2x2x7x8xf32> to tensor<2x2x1x8xf32>
  %v6 = tensor.extract_slice %v[0, 0, 6, 0] [2, 2, 1, 8] [1, 1, 1, 1] : tensor<2x2x7x8xf32> to tensor<2x2x1x8xf32>
  kvc.cache.append %c[%sixes], %k6, %v6 : !kvc.cache<2x2x16x8xf32>, tensor<2x2x1x8xf32>
  %q6 = tensor.extract_slice %q[0, 0, 6, 0] [2, 4, 1, 8] [1, 1, 1, 1] : tensor<2x4x7x8xf32> to tensor<2x4x1x8xf32>
  %dec = kvc.decode_attention %q6, %c[%sixes] : tensor<2x4x1x8xf32>, !kvc.cache<2x2x16x8xf32>
  %full6 = tensor.extract_slice %full[0, 0, 6, 0] [2, 4, 1, 8] [1, 1, 1, 1] : tensor<2x4x7x8xf32> to tensor<2x4x1x8xf32>

  // CHECK: difference: 0
  %diff = call @max_abs_diff(%full6, %dec) : (tensor<2x4x1x8xf32>, tensor<2x4x1x8xf32>) -> f32
  vector.print str "difference: "
  vector.print %diff : f32

  // A query standing at row 3 sees rows [0, 4) only, as row 3 of the full
  // attention does, however much more the cache holds.
  // CHECK: rewound difference: 0
  %threes = arith.constant dense<3> : tensor<2xi32>
  %q3 = tensor.extract_slice %q[0, 0, 3, 0] [2, 4, 1, 8] [1, 1, 1, 1] : tensor<2x4x7x8xf32> to tensor<2x4x1x8xf32>
  %dec3 = kvc.decode_attention %q3, %c[%threes] : tensor<2x4x1x8xf32>, !kvc.cache<2x2x16x8xf32>
  %full3 = tensor.extract_slice %full[0, 0, 3, 0] [2, 4, 1, 8] [1, 1, 1, 1] : tensor<2x4x7x8xf32> to tensor<2x4x1x8xf32>
  %diff3 = call @max_abs_diff(%full3, %dec3) : (tensor<2x4x1x8xf32>, tensor<2x4x1x8xf32>) -> f32
  vector.print str "rewound difference: "
  vector.print %diff3 : f32

  // CHECK: lengths: ( 7, 7 )
  %len = kvc.cache.length %c : !kvc.cache<2x2x16x8xf32>
  %c0 = arith.constant 0 : index
  %i0 = arith.constant 0 : i32
  %lv = vector.transfer_read %len[%c0], %i0 : tensor<2xi32>, vector<2xi32>
  vector.print str "lengths: "
  vector.print %lv : vector<2xi32>
  kvc.cache.dealloc %c : !kvc.cache<2x2x16x8xf32>
  return
}
