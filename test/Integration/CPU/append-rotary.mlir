// Tests that kvc.cache.append {rotary_theta} stores keys rotated to their
// positions: a cache filled that way attends exactly like a cache filled
// with keys rotated beforehand by the formula, for 5 rows at positions 3-7.
//
// RUN: kvc-opt %s --kvc-cpu-pipeline \
// RUN:   | mlir-runner -e main -entry-point-result=void \
// RUN:       -shared-libs=%mlir_runner_utils,%mlir_c_runner_utils \
// RUN:   | FileCheck %s

// CHECK: rotated in append equals rotated before: 1
// CHECK: differs from unrotated: 1

#map = affine_map<(b, h, t, d) -> (b, h, t, d)>

func.func @fill(%seed: f32) -> tensor<1x2x5x8xf32> {
  %e = tensor.empty() : tensor<1x2x5x8xf32>
  %r = linalg.generic {indexing_maps = [#map], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      outs(%e : tensor<1x2x5x8xf32>) {
  ^bb0(%o: f32):
    %h = linalg.index 1 : index
    %t = linalg.index 2 : index
    %d = linalg.index 3 : index
    %x = arith.addi %h, %t : index
    %y = arith.muli %x, %d : index
    %z = arith.addi %y, %d : index
    %i = arith.index_cast %z : index to i32
    %f = arith.sitofp %i : i32 to f32
    %g = arith.addf %f, %seed : f32
    %s = math.sin %g : f32
    linalg.yield %s : f32
  } -> tensor<1x2x5x8xf32>
  return %r : tensor<1x2x5x8xf32>
}

/// The rotate-half formula, row t at position 3 + t.
func.func @rotate(%k: tensor<1x2x5x8xf32>) -> tensor<1x2x5x8xf32> {
  %e = tensor.empty() : tensor<1x2x5x8xf32>
  %r = linalg.generic {indexing_maps = [#map], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      outs(%e : tensor<1x2x5x8xf32>) {
  ^bb0(%o: f32):
    %c0 = arith.constant 0 : index
    %c3 = arith.constant 3 : index
    %c4 = arith.constant 4 : index
    %h = linalg.index 1 : index
    %t = linalg.index 2 : index
    %d = linalg.index 3 : index
    %i = arith.remui %d, %c4 : index
    %first = arith.cmpi ult, %d, %c4 : index
    %lo = arith.addi %i, %c0 : index
    %hi = arith.addi %i, %c4 : index
    %x1 = tensor.extract %k[%c0, %h, %t, %lo] : tensor<1x2x5x8xf32>
    %x2 = tensor.extract %k[%c0, %h, %t, %hi] : tensor<1x2x5x8xf32>
    %ii = arith.index_cast %i : index to i64
    %fi = arith.sitofp %ii : i64 to f32
    // -2 ln(10000) / 8
    %k0 = arith.constant -2.30258509 : f32
    %ex = arith.mulf %fi, %k0 : f32
    %freq = math.exp %ex : f32
    %pos = arith.addi %t, %c3 : index
    %pi = arith.index_cast %pos : index to i64
    %pf = arith.sitofp %pi : i64 to f32
    %angle = arith.mulf %pf, %freq : f32
    %c = math.cos %angle : f32
    %s = math.sin %angle : f32
    %a = arith.mulf %x1, %c : f32
    %b = arith.mulf %x2, %s : f32
    %y1 = arith.subf %a, %b : f32
    %a2 = arith.mulf %x2, %c : f32
    %b2 = arith.mulf %x1, %s : f32
    %y2 = arith.addf %a2, %b2 : f32
    %y = arith.select %first, %y1, %y2 : f32
    linalg.yield %y : f32
  } -> tensor<1x2x5x8xf32>
  return %r : tensor<1x2x5x8xf32>
}

func.func @max_abs_diff(%a: tensor<1x2x5x8xf32>, %b: tensor<1x2x5x8xf32>) -> f32 {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %c5 = arith.constant 5 : index
  %c8 = arith.constant 8 : index
  %zero = arith.constant 0.0 : f32
  %m = scf.for %h = %c0 to %c2 step %c1 iter_args(%m0 = %zero) -> f32 {
    %m1 = scf.for %t = %c0 to %c5 step %c1 iter_args(%m2 = %m0) -> f32 {
      %m3 = scf.for %d = %c0 to %c8 step %c1 iter_args(%m4 = %m2) -> f32 {
        %x = tensor.extract %a[%c0, %h, %t, %d] : tensor<1x2x5x8xf32>
        %y = tensor.extract %b[%c0, %h, %t, %d] : tensor<1x2x5x8xf32>
        %df = arith.subf %x, %y : f32
        %ad = math.absf %df : f32
        %mx = arith.maximumf %m4, %ad : f32
        scf.yield %mx : f32
      }
      scf.yield %m3 : f32
    }
    scf.yield %m1 : f32
  }
  return %m : f32
}

func.func @main() {
  %c8 = arith.constant 8 : index
  %s1 = arith.constant 0.5 : f32
  %s2 = arith.constant 1.5 : f32
  %s3 = arith.constant 2.5 : f32
  %k = call @fill(%s1) : (f32) -> tensor<1x2x5x8xf32>
  %v = call @fill(%s2) : (f32) -> tensor<1x2x5x8xf32>
  %q = call @fill(%s3) : (f32) -> tensor<1x2x5x8xf32>
  %zero = arith.constant dense<0> : tensor<1xi32>
  %three = arith.constant dense<3> : tensor<1xi32>
  %pad = arith.constant dense<0.25> : tensor<1x2x3x8xf32>
  // Rows 0-2 (not rotated, the same in every cache), then 5 rows at 3.
  %a = kvc.cache.alloc() : !kvc.cache<1x2x8x8xf32>
  kvc.cache.append %a[%zero], %pad, %pad : !kvc.cache<1x2x8x8xf32>, tensor<1x2x3x8xf32>
  kvc.cache.append %a[%three], %k, %v {rotary_theta = 1.0e+04 : f32} : !kvc.cache<1x2x8x8xf32>, tensor<1x2x5x8xf32>
  %b = kvc.cache.alloc() : !kvc.cache<1x2x8x8xf32>
  kvc.cache.append %b[%zero], %pad, %pad : !kvc.cache<1x2x8x8xf32>, tensor<1x2x3x8xf32>
  %kr = call @rotate(%k) : (tensor<1x2x5x8xf32>) -> tensor<1x2x5x8xf32>
  kvc.cache.append %b[%three], %kr, %v : !kvc.cache<1x2x8x8xf32>, tensor<1x2x5x8xf32>
  %c = kvc.cache.alloc() : !kvc.cache<1x2x8x8xf32>
  kvc.cache.append %c[%zero], %pad, %pad : !kvc.cache<1x2x8x8xf32>, tensor<1x2x3x8xf32>
  kvc.cache.append %c[%three], %k, %v : !kvc.cache<1x2x8x8xf32>, tensor<1x2x5x8xf32>
  %oa = kvc.decode_attention %q, %a[%three] : tensor<1x2x5x8xf32>, !kvc.cache<1x2x8x8xf32>
  %ob = kvc.decode_attention %q, %b[%three] : tensor<1x2x5x8xf32>, !kvc.cache<1x2x8x8xf32>
  %oc = kvc.decode_attention %q, %c[%three] : tensor<1x2x5x8xf32>, !kvc.cache<1x2x8x8xf32>
  %dab = call @max_abs_diff(%oa, %ob) : (tensor<1x2x5x8xf32>, tensor<1x2x5x8xf32>) -> f32
  %dac = call @max_abs_diff(%oa, %oc) : (tensor<1x2x5x8xf32>, tensor<1x2x5x8xf32>) -> f32
  %tol = arith.constant 1.0e-5 : f32
  %same = arith.cmpf olt, %dab, %tol : f32
  %far = arith.constant 1.0e-2 : f32
  %differs = arith.cmpf ogt, %dac, %far : f32
  vector.print str "rotated in append equals rotated before: "
  vector.print %same : i1
  vector.print str "differs from unrotated: "
  vector.print %differs : i1
  vector.print str "max difference: "
  vector.print %dab : f32
  return
}
