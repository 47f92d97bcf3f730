// RUN: kvc-opt %s --kvc-fuse-launches --canonicalize | FileCheck %s
// RUN: %if ptxas %{ kvc-opt %s --kvc-fuse-launches --kvc-gpu-pipeline | FileCheck %s --check-prefix=BIN %}

// @scale and @shift read %x and write their own buffers: one launch of a
// merged kernel, whose grid is the sum of theirs, at the second one. @sum
// reads what @scale wrote: it stays a launch of its own. The call between
// @sum and the last @scale is a barrier to moving launches.

// CHECK-LABEL: func.func @step
// CHECK-SAME: (%[[X:.+]]: memref<?xf32>, %[[N:.+]]: index, %[[M:.+]]: index)
// CHECK: %[[A:.+]] = memref.alloc
// CHECK: %[[B:.+]] = memref.alloc
// CHECK: %[[END:.+]] = arith.addi %[[N]], %[[M]] : index
// CHECK: gpu.launch_func @kernels::@scale_with_shift blocks in (%[[END]], %c1, %c1) threads in (%c256, %c1, %c1) args(%[[X]] : memref<?xf32>, %[[A]] : memref<?xf32>, %[[B]] : memref<?xf32>, %[[N]] : index, %[[END]] : index)
// CHECK-NEXT: gpu.launch_func @kernels::@sum blocks in (%[[N]],
// CHECK-NEXT: call @opaque
// CHECK-NEXT: gpu.launch_func @kernels::@scale blocks in (%[[N]],
// CHECK-NEXT: return
// CHECK: gpu.module @kernels
// CHECK: gpu.func @scale(
// CHECK-NOT: gpu.func @shift(
// CHECK: gpu.func @sum(
// CHECK: gpu.func @scale_with_shift(%[[X2:.+]]: memref<?xf32>, %[[A2:.+]]: memref<?xf32>, %[[B2:.+]]: memref<?xf32>, %[[E1:.+]]: index, %[[E2:.+]]: index) kernel attributes {known_block_size = array<i32: 256, 1, 1>}
// CHECK-NOT: gpu.block_id
// CHECK: nvvm.griddepcontrol wait
// CHECK-NEXT: nvvm.griddepcontrol launch_dependents
// CHECK-NEXT: %[[BID:.+]] = gpu.block_id x
// CHECK: %[[IN1:.+]] = arith.cmpi ult, %[[BID]], %[[E1]]
// CHECK: scf.if %[[IN1]] {
// CHECK: arith.mulf
// CHECK: memref.store %{{.+}}, %[[A2]]
// CHECK: %[[LT:.+]] = arith.cmpi ult, %[[BID]], %[[E2]]
// CHECK: %[[GE:.+]] = arith.cmpi uge, %[[BID]], %[[E1]]
// CHECK: %[[IN2:.+]] = arith.andi %[[GE]], %[[LT]]
// CHECK: scf.if %[[IN2]] {
// CHECK: %[[REBASED:.+]] = arith.subi %[[BID]], %[[E1]]
// CHECK: arith.muli %[[REBASED]]
// CHECK: arith.addf
// CHECK: memref.store %{{.+}}, %[[B2]]
// BIN: gpu.binary @kernels
module attributes {gpu.container_module} {
func.func private @opaque()
func.func @step(%x: memref<?xf32>, %n: index, %m: index) {
  %c1 = arith.constant 1 : index
  %c256 = arith.constant 256 : index
  %a = memref.alloc(%n) : memref<?xf32>
  gpu.launch_func @kernels::@scale blocks in (%n, %c1, %c1) threads in (%c256, %c1, %c1) args(%x : memref<?xf32>, %a : memref<?xf32>)
  %b = memref.alloc(%n) : memref<?xf32>
  gpu.launch_func @kernels::@shift blocks in (%m, %c1, %c1) threads in (%c256, %c1, %c1) args(%x : memref<?xf32>, %b : memref<?xf32>)
  gpu.launch_func @kernels::@sum blocks in (%n, %c1, %c1) threads in (%c256, %c1, %c1) args(%a : memref<?xf32>, %b : memref<?xf32>)
  call @opaque() : () -> ()
  gpu.launch_func @kernels::@scale blocks in (%n, %c1, %c1) threads in (%c256, %c1, %c1) args(%x : memref<?xf32>, %a : memref<?xf32>)
  return
}
gpu.module @kernels {
  gpu.func @scale(%x: memref<?xf32>, %out: memref<?xf32>) kernel attributes {known_block_size = array<i32: 256, 1, 1>} {
    %c256 = arith.constant 256 : index
    %b = gpu.block_id x
    %t = gpu.thread_id x
    %s = arith.muli %b, %c256 : index
    %i = arith.addi %s, %t : index
    %v = memref.load %x[%i] : memref<?xf32>
    %w = arith.mulf %v, %v : f32
    memref.store %w, %out[%i] : memref<?xf32>
    gpu.return
  }
  gpu.func @shift(%x: memref<?xf32>, %out: memref<?xf32>) kernel attributes {known_block_size = array<i32: 256, 1, 1>} {
    %c256 = arith.constant 256 : index
    %b = gpu.block_id x
    %t = gpu.thread_id x
    %s = arith.muli %b, %c256 : index
    %i = arith.addi %s, %t : index
    %v = memref.load %x[%i] : memref<?xf32>
    %w = arith.addf %v, %v : f32
    memref.store %w, %out[%i] : memref<?xf32>
    gpu.return
  }
  gpu.func @sum(%a: memref<?xf32>, %b: memref<?xf32>) kernel attributes {known_block_size = array<i32: 256, 1, 1>} {
    %t = gpu.thread_id x
    %u = memref.load %a[%t] : memref<?xf32>
    %v = memref.load %b[%t] : memref<?xf32>
    %w = arith.addf %u, %v : f32
    memref.store %w, %a[%t] : memref<?xf32>
    gpu.return
  }
}
}
