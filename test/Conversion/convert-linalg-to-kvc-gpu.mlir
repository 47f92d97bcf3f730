// RUN: kvc-opt %s --convert-linalg-to-kvc-gpu --canonicalize --cse -split-input-file -verify-diagnostics | FileCheck %s
// RUN: %if ptxas %{ kvc-opt %s --convert-linalg-to-kvc-gpu --kvc-gpu-pipeline -split-input-file -verify-diagnostics | FileCheck %s --check-prefix=BIN %}

// Tests that a projection with its zero fill becomes one cuBLASLt call
// (x, w of bf16 widened in the body, f32 sum), that a sum only rounded to
// bf16 is written rounded by that call, and that both ops go away.

#xk = affine_map<(b, s, n, k) -> (b, s, k)>
#wnk = affine_map<(b, s, n, k) -> (n, k)>
#xn = affine_map<(b, s, n, k) -> (b, s, n)>
#id = affine_map<(b, s, n) -> (b, s, n)>
// CHECK-LABEL: func.func @projection
// CHECK-NOT: linalg.
// CHECK: %[[OUT:.+]] = memref.extract_aligned_pointer_as_index %arg2
// CHECK: %[[ROWS:.+]] = arith.muli
// CHECK: %[[M:.+]] = arith.index_cast %[[ROWS]] : index to i64
// CHECK: call @kvc_rt_op_matmul(%{{.+}}, %{{.+}}, %{{.+}}, %[[M]], %c16_i64, %c64_i64, %c1_i32, %c1_i32) : (!llvm.ptr, !llvm.ptr, !llvm.ptr, i64, i64, i64, i32, i32) -> ()
// CHECK-NOT: linalg.
// CHECK: return
func.func @projection(%x: memref<?x?x64xbf16>, %w: memref<16x64xbf16>, %out: memref<?x?x16xbf16>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %b = memref.dim %x, %c0 : memref<?x?x64xbf16>
  %s = memref.dim %x, %c1 : memref<?x?x64xbf16>
  %zero = arith.constant 0.0 : f32
  %sum = memref.alloc(%b, %s) : memref<?x?x16xf32>
  linalg.fill ins(%zero : f32) outs(%sum : memref<?x?x16xf32>)
  linalg.generic {indexing_maps = [#xk, #wnk, #xn], iterator_types = ["parallel", "parallel", "parallel", "reduction"]} ins(%x, %w : memref<?x?x64xbf16>, memref<16x64xbf16>) outs(%sum : memref<?x?x16xf32>) {
  ^bb0(%a: bf16, %v: bf16, %acc: f32):
    %af = arith.extf %a : bf16 to f32
    %vf = arith.extf %v : bf16 to f32
    %p = arith.mulf %af, %vf : f32
    %r = arith.addf %acc, %p : f32
    linalg.yield %r : f32
  }
  linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel", "parallel"]} ins(%sum : memref<?x?x16xf32>) outs(%out : memref<?x?x16xbf16>) {
  ^bb0(%v: f32, %unused: bf16):
    %t = arith.truncf %v : f32 to bf16
    linalg.yield %t : bf16
  }
  memref.dealloc %sum : memref<?x?x16xf32>
  return
}

// -----

// Tests that a sum of squares filled right before and the scaling that reads
// it per row become one kernel (one block per row, threads striding the
// row, shuffles and shared memory, then the scaling over the same row), that
// the second, identical RMSNorm launches the same kernel, and that an
// elementwise op gets one thread per element.

#r3 = affine_map<(b, s, h) -> (b, s, h)>
#r2 = affine_map<(b, s, h) -> (b, s)>
#h1 = affine_map<(b, s, h) -> (h)>
// CHECK-LABEL: func.func @norms
// CHECK: %[[ROWS:.+]] = arith.muli
// CHECK: gpu.launch_func @kvc_model_kernels::@[[NORM:kvc_model_[0-9]+]] blocks in (%[[ROWS]], %c1, %c1) threads in (%c1024, %c1, %c1) args(%{{.+}} : memref<?x?x64xf32>, %{{.+}} : memref<?x?xf32>, %{{.+}} : memref<64xf32>, %{{.+}} : memref<?x?x64xf32>, %cst : f32)
// CHECK: gpu.launch_func @kvc_model_kernels::@[[NORM]] blocks
// CHECK: %[[N:.+]] = arith.ceildivui %{{.+}}, %c256 : index
// CHECK: gpu.launch_func @kvc_model_kernels::@[[ADD:kvc_model_[0-9]+]] blocks in (%[[N]], %c1, %c1) threads in (%c256, %c1, %c1)
// CHECK-NOT: linalg.
// CHECK: gpu.module @kvc_model_kernels
// CHECK: gpu.func @[[NORM]]({{.+}}) workgroup(%{{.+}} : memref<32xf32, #gpu.address_space<workgroup>>) kernel attributes {known_block_size = array<i32: 1024, 1, 1>}
// CHECK-NOT: memref.dim
// CHECK: nvvm.griddepcontrol wait
// CHECK-NEXT: nvvm.griddepcontrol launch_dependents
// CHECK: scf.for
// CHECK-COUNT-5: gpu.shuffle xor
// CHECK: gpu.barrier
// CHECK-COUNT-5: gpu.shuffle xor
// CHECK: gpu.barrier
// CHECK: scf.for
// CHECK: math.rsqrt
// CHECK: gpu.func @[[ADD]](
// CHECK-NOT: memref.dim
// CHECK: nvvm.griddepcontrol wait
// CHECK-NOT: gpu.func
// BIN: gpu.binary @kvc_model_kernels
func.func @norms(%x: memref<?x?x64xf32>, %w: memref<64xf32>, %y: memref<?x?x64xf32>, %z: memref<?x?x64xf32>, %sum: memref<?x?x64xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %b = memref.dim %x, %c0 : memref<?x?x64xf32>
  %s = memref.dim %x, %c1 : memref<?x?x64xf32>
  %zero = arith.constant 0.0 : f32
  %eps = arith.constant 1.0e-5 : f32
  %ss = memref.alloc(%b, %s) : memref<?x?xf32>
  %ss2 = memref.alloc(%b, %s) : memref<?x?xf32>
  linalg.fill ins(%zero : f32) outs(%ss : memref<?x?xf32>)
  linalg.generic {indexing_maps = [#r3, #r2], iterator_types = ["parallel", "parallel", "reduction"]} ins(%x : memref<?x?x64xf32>) outs(%ss : memref<?x?xf32>) {
  ^bb0(%v: f32, %acc: f32):
    %sq = arith.mulf %v, %v : f32
    %r = arith.addf %acc, %sq : f32
    linalg.yield %r : f32
  }
  linalg.generic {indexing_maps = [#r3, #r2, #h1, #r3], iterator_types = ["parallel", "parallel", "parallel"]} ins(%x, %ss, %w : memref<?x?x64xf32>, memref<?x?xf32>, memref<64xf32>) outs(%y : memref<?x?x64xf32>) {
  ^bb0(%v: f32, %t: f32, %g: f32, %unused: f32):
    %m = arith.addf %t, %eps : f32
    %inv = math.rsqrt %m : f32
    %n = arith.mulf %v, %inv : f32
    %o = arith.mulf %n, %g : f32
    linalg.yield %o : f32
  }
  linalg.fill ins(%zero : f32) outs(%ss2 : memref<?x?xf32>)
  linalg.generic {indexing_maps = [#r3, #r2], iterator_types = ["parallel", "parallel", "reduction"]} ins(%y : memref<?x?x64xf32>) outs(%ss2 : memref<?x?xf32>) {
  ^bb0(%v: f32, %acc: f32):
    %sq = arith.mulf %v, %v : f32
    %r = arith.addf %acc, %sq : f32
    linalg.yield %r : f32
  }
  linalg.generic {indexing_maps = [#r3, #r2, #h1, #r3], iterator_types = ["parallel", "parallel", "parallel"]} ins(%y, %ss2, %w : memref<?x?x64xf32>, memref<?x?xf32>, memref<64xf32>) outs(%z : memref<?x?x64xf32>) {
  ^bb0(%v: f32, %t: f32, %g: f32, %unused: f32):
    %m = arith.addf %t, %eps : f32
    %inv = math.rsqrt %m : f32
    %n = arith.mulf %v, %inv : f32
    %o = arith.mulf %n, %g : f32
    linalg.yield %o : f32
  }
  linalg.generic {indexing_maps = [#r3, #r3, #r3], iterator_types = ["parallel", "parallel", "parallel"]} ins(%x, %z : memref<?x?x64xf32>, memref<?x?x64xf32>) outs(%sum : memref<?x?x64xf32>) {
  ^bb0(%u: f32, %v: f32, %unused: f32):
    %a = arith.addf %u, %v : f32
    linalg.yield %a : f32
  }
  return
}

// -----

// Tests that a row of a known size of a few points per thread (2048: two)
// stays in registers: the norm's weights and the residual add's inputs are
// loaded first, the sum is stored and never loaded back, the scaling reads
// the held values after the barrier, and there are no loops.

#r3 = affine_map<(b, s, h) -> (b, s, h)>
#r2 = affine_map<(b, s, h) -> (b, s)>
#h1 = affine_map<(b, s, h) -> (h)>
// CHECK-LABEL: func.func @held_row
// CHECK: gpu.func @[[K:kvc_model_[0-9]+]](%[[H:[^:]+]]: memref<?x?x2048xf32>, %{{[^:]+}}: memref<?x?xf32>, %[[W:[^:]+]]: memref<2048xf32>, %[[Y:[^:]+]]: memref<?x?x2048xf32>, %[[X:[^:]+]]: memref<?x?x2048xf32>, %[[P:[^:]+]]: memref<?x?x2048xf32>, %{{[^:]+}}: f32)
// CHECK-NOT: scf.for
// CHECK: nvvm.griddepcontrol launch_dependents
// CHECK: %[[T:.+]] = gpu.thread_id x
// CHECK: %[[T2:.+]] = arith.addi %[[T]], %c1024
// CHECK-NEXT: memref.load %[[W]][%[[T]]]
// CHECK-NEXT: memref.load %[[W]][%[[T2]]]
// CHECK-NEXT: memref.load %[[X]]
// CHECK-NEXT: memref.load %[[X]]
// CHECK-NEXT: memref.load %[[P]]
// CHECK-NEXT: memref.load %[[P]]
// CHECK: memref.store %{{.+}}, %[[H]]
// CHECK-NEXT: memref.store %{{.+}}, %[[H]]
// CHECK-NOT: memref.load %[[H]]
// CHECK: gpu.barrier
// CHECK: gpu.barrier
// CHECK-NOT: memref.load %[[H]]
// CHECK: math.rsqrt
// CHECK: memref.store %{{.+}}, %[[Y]]
// CHECK-NEXT: memref.store %{{.+}}, %[[Y]]
// CHECK-NOT: scf.for
// CHECK: gpu.return
func.func @held_row(%x: memref<?x?x2048xf32>, %p: memref<?x?x2048xf32>, %w: memref<2048xf32>, %h: memref<?x?x2048xf32>, %y: memref<?x?x2048xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %b = memref.dim %x, %c0 : memref<?x?x2048xf32>
  %s = memref.dim %x, %c1 : memref<?x?x2048xf32>
  %zero = arith.constant 0.0 : f32
  linalg.generic {indexing_maps = [#r3, #r3, #r3], iterator_types = ["parallel", "parallel", "parallel"]} ins(%x, %p : memref<?x?x2048xf32>, memref<?x?x2048xf32>) outs(%h : memref<?x?x2048xf32>) {
  ^bb0(%u: f32, %v: f32, %unused: f32):
    %a = arith.addf %u, %v : f32
    linalg.yield %a : f32
  }
  %ss = memref.alloc(%b, %s) : memref<?x?xf32>
  linalg.fill ins(%zero : f32) outs(%ss : memref<?x?xf32>)
  linalg.generic {indexing_maps = [#r3, #r2], iterator_types = ["parallel", "parallel", "reduction"]} ins(%h : memref<?x?x2048xf32>) outs(%ss : memref<?x?xf32>) {
  ^bb0(%v: f32, %acc: f32):
    %sq = arith.mulf %v, %v : f32
    %r = arith.addf %acc, %sq : f32
    linalg.yield %r : f32
  }
  linalg.generic {indexing_maps = [#r3, #r2, #h1, #r3], iterator_types = ["parallel", "parallel", "parallel"]} ins(%h, %ss, %w : memref<?x?x2048xf32>, memref<?x?xf32>, memref<2048xf32>) outs(%y : memref<?x?x2048xf32>) {
  ^bb0(%v: f32, %t: f32, %g: f32, %unused: f32):
    %inv = math.rsqrt %t : f32
    %n = arith.mulf %v, %inv : f32
    %o = arith.mulf %n, %g : f32
    linalg.yield %o : f32
  }
  return
}

// -----

// Tests that a held row's consumer reads a buffer that views what the kernel
// writes (here a subview of the residual sum) only after the barrier, not
// with its early loads.

#r3 = affine_map<(b, s, h) -> (b, s, h)>
#r2 = affine_map<(b, s, h) -> (b, s)>
// CHECK-LABEL: func.func @held_row_view
// CHECK: gpu.func @{{kvc_model_[0-9]+}}(%[[H:[^:]+]]: memref<?x?x2048xf32>, %{{[^:]+}}: memref<?x?xf32>, %[[V:[^:]+]]: memref<?x?x2048xf32, strided
// CHECK-NOT: memref.load %[[V]]
// CHECK: gpu.barrier
// CHECK: gpu.barrier
// CHECK: memref.load %[[V]]
// CHECK: memref.load %[[V]]
// CHECK: math.rsqrt
func.func @held_row_view(%x: memref<?x?x2048xf32>, %p: memref<?x?x2048xf32>, %h: memref<?x?x2048xf32>, %y: memref<?x?x2048xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %b = memref.dim %x, %c0 : memref<?x?x2048xf32>
  %s = memref.dim %x, %c1 : memref<?x?x2048xf32>
  %zero = arith.constant 0.0 : f32
  %hv = memref.subview %h[0, 0, 0] [%b, %s, 2048] [1, 1, 1] : memref<?x?x2048xf32> to memref<?x?x2048xf32, strided<[?, 2048, 1]>>
  linalg.generic {indexing_maps = [#r3, #r3, #r3], iterator_types = ["parallel", "parallel", "parallel"]} ins(%x, %p : memref<?x?x2048xf32>, memref<?x?x2048xf32>) outs(%h : memref<?x?x2048xf32>) {
  ^bb0(%u: f32, %v: f32, %unused: f32):
    %a = arith.addf %u, %v : f32
    linalg.yield %a : f32
  }
  %ss = memref.alloc(%b, %s) : memref<?x?xf32>
  linalg.fill ins(%zero : f32) outs(%ss : memref<?x?xf32>)
  linalg.generic {indexing_maps = [#r3, #r2], iterator_types = ["parallel", "parallel", "reduction"]} ins(%h : memref<?x?x2048xf32>) outs(%ss : memref<?x?xf32>) {
  ^bb0(%v: f32, %acc: f32):
    %sq = arith.mulf %v, %v : f32
    %r = arith.addf %acc, %sq : f32
    linalg.yield %r : f32
  }
  linalg.generic {indexing_maps = [#r3, #r2, #r3, #r3], iterator_types = ["parallel", "parallel", "parallel"]} ins(%h, %ss, %hv : memref<?x?x2048xf32>, memref<?x?xf32>, memref<?x?x2048xf32, strided<[?, 2048, 1]>>) outs(%y : memref<?x?x2048xf32>) {
  ^bb0(%v: f32, %t: f32, %w: f32, %unused: f32):
    %inv = math.rsqrt %t : f32
    %n = arith.mulf %v, %inv : f32
    %o = arith.addf %n, %w : f32
    linalg.yield %o : f32
  }
  return
}

// -----

// Tests that a residual add, the sum of squares of its result and the
// scaling run as one kernel: each thread adds the points it then reduces
// (and stores the sum, which later ops read).

#r3 = affine_map<(b, s, h) -> (b, s, h)>
#r2 = affine_map<(b, s, h) -> (b, s)>
// CHECK-LABEL: func.func @add_then_norm
// CHECK: gpu.launch_func @kvc_model_kernels::@[[K:kvc_model_[0-9]+]] blocks
// CHECK-NOT: gpu.launch_func
// CHECK: gpu.func @[[K]](
// CHECK: scf.for
// CHECK: arith.addf
// CHECK: memref.store
// CHECK: scf.for
// CHECK: arith.mulf
// CHECK: gpu.barrier
// CHECK: scf.for
// CHECK: math.rsqrt
func.func @add_then_norm(%x: memref<?x?x64xf32>, %p: memref<?x?x64xf32>, %h: memref<?x?x64xf32>, %y: memref<?x?x64xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %b = memref.dim %x, %c0 : memref<?x?x64xf32>
  %s = memref.dim %x, %c1 : memref<?x?x64xf32>
  %zero = arith.constant 0.0 : f32
  linalg.generic {indexing_maps = [#r3, #r3, #r3], iterator_types = ["parallel", "parallel", "parallel"]} ins(%x, %p : memref<?x?x64xf32>, memref<?x?x64xf32>) outs(%h : memref<?x?x64xf32>) {
  ^bb0(%u: f32, %v: f32, %unused: f32):
    %a = arith.addf %u, %v : f32
    linalg.yield %a : f32
  }
  %ss = memref.alloc(%b, %s) : memref<?x?xf32>
  linalg.fill ins(%zero : f32) outs(%ss : memref<?x?xf32>)
  linalg.generic {indexing_maps = [#r3, #r2], iterator_types = ["parallel", "parallel", "reduction"]} ins(%h : memref<?x?x64xf32>) outs(%ss : memref<?x?xf32>) {
  ^bb0(%v: f32, %acc: f32):
    %sq = arith.mulf %v, %v : f32
    %r = arith.addf %acc, %sq : f32
    linalg.yield %r : f32
  }
  linalg.generic {indexing_maps = [#r3, #r2, #r3], iterator_types = ["parallel", "parallel", "parallel"]} ins(%h, %ss : memref<?x?x64xf32>, memref<?x?xf32>) outs(%y : memref<?x?x64xf32>) {
  ^bb0(%v: f32, %t: f32, %unused: f32):
    %inv = math.rsqrt %t : f32
    %n = arith.mulf %v, %inv : f32
    linalg.yield %n : f32
  }
  return
}

// -----

// Tests that a reduction the kernels cannot combine is refused by name.

#r2 = affine_map<(i, j) -> (i, j)>
#r1 = affine_map<(i, j) -> (i)>
func.func @product_of_bf16(%x: memref<4x8xbf16>, %out: memref<4xbf16>) {
  // expected-error @+1 {{'linalg.generic' op kvc GPU lowering: a reduction must have one reduction loop and one f32 output combined by an op with a neutral element (add, max, ...)}}
  linalg.generic {indexing_maps = [#r2, #r1], iterator_types = ["parallel", "reduction"]} ins(%x : memref<4x8xbf16>) outs(%out : memref<4xbf16>) {
  ^bb0(%v: bf16, %acc: bf16):
    %r = arith.mulf %acc, %v : bf16
    linalg.yield %r : bf16
  }
  return
}
