// RUN: kvc-opt %s --convert-kvc-to-gpu -split-input-file -verify-diagnostics | FileCheck %s
// RUN: %if ptxas %{ kvc-opt %s --convert-kvc-to-gpu --kvc-gpu-pipeline -split-input-file -verify-diagnostics | FileCheck %s --check-prefix=BIN %}

// Tests that a decode step becomes runtime calls on device pointers, that
// caches become runtime handles across function boundaries, and that the
// kernels the calls launch (GQA group 4, head dim 128, bf16) are added.

// CHECK-DAG: func.func private @kvc_rt_op_append(!llvm.ptr, !llvm.ptr, !llvm.ptr, !llvm.ptr, i64, f32)
// CHECK-DAG: func.func private @kvc_rt_op_decode_attention(!llvm.ptr, !llvm.ptr, i64, i64, !llvm.ptr, !llvm.ptr, f32, i32)
// CHECK-DAG: func.func private @kvc_rt_op_cache_new(i64, i64, i64, i64, i32) -> !llvm.ptr
// CHECK-LABEL: func.func @step(
// CHECK-SAME: %[[C:[^:]+]]: !llvm.ptr, %[[Q:[^:]+]]: tensor<2x8x1x128xbf16>, %[[K:[^:]+]]: tensor<2x2x1x128xbf16>, %[[V:[^:]+]]: tensor<2x2x1x128xbf16>, %[[POS:[^:]+]]: tensor<2xi32>)
// CHECK: %[[NOROPE:.+]] = arith.constant 0.000000e+00 : f32
// CHECK: %[[KB:.+]] = bufferization.to_buffer %[[K]] read_only
// CHECK: %[[KI:.+]] = memref.extract_aligned_pointer_as_index %[[KB]]
// CHECK: %[[KI64:.+]] = arith.index_cast %[[KI]] : index to i64
// CHECK: %[[KP:.+]] = llvm.inttoptr %[[KI64]] : i64 to !llvm.ptr
// CHECK: %[[ROWS:.+]] = arith.constant 1 : i64
// CHECK: call @kvc_rt_op_append(%[[C]], %[[KP]], %{{.+}}, %{{.+}}, %[[ROWS]], %[[NOROPE]]) : (!llvm.ptr, !llvm.ptr, !llvm.ptr, !llvm.ptr, i64, f32) -> ()
// CHECK: %[[ROPE:.+]] = arith.constant 1.000000e+04 : f32
// CHECK: call @kvc_rt_op_append(%[[C]], %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %[[ROPE]])
// CHECK: %[[OUT:.+]] = memref.alloc() : memref<2x8x1x128xbf16>
// CHECK: %[[SCALE:.+]] = arith.constant 0.0883883461 : f32
// CHECK: %[[FIRST:.+]] = arith.constant 0 : i32
// CHECK: %[[HEADS:.+]] = arith.constant 8 : i64
// CHECK: call @kvc_rt_op_decode_attention(%[[C]], %{{.+}}, %[[HEADS]], %{{.+}}, %{{.+}}, %{{.+}}, %[[SCALE]], %[[FIRST]]) : (!llvm.ptr, !llvm.ptr, i64, i64, !llvm.ptr, !llvm.ptr, f32, i32) -> ()
// CHECK: %[[O:.+]] = bufferization.to_tensor %[[OUT]] restrict writable
// CHECK: return %[[O]]

// CHECK-LABEL: func.func @run(
// CHECK: %[[CAP:.+]] = arith.index_cast %{{.+}} : index to i64
// CHECK: %[[TYPE:.+]] = arith.constant 1 : i32
// CHECK: %[[CACHE:.+]] = call @kvc_rt_op_cache_new(%{{.+}}, %{{.+}}, %[[CAP]], %{{.+}}, %[[TYPE]]) : (i64, i64, i64, i64, i32) -> !llvm.ptr
// CHECK: call @step(%[[CACHE]],
// CHECK: call @kvc_rt_op_truncate(%[[CACHE]], %{{.+}}) : (!llvm.ptr, !llvm.ptr) -> ()
// CHECK: call @kvc_rt_op_lengths(%[[CACHE]], %{{.+}}) : (!llvm.ptr, !llvm.ptr) -> ()
// CHECK: call @kvc_rt_op_cache_free(%[[CACHE]]) : (!llvm.ptr) -> ()

// CHECK: gpu.module @kvc_kernels
// CHECK-DAG: gpu.func @kvc_append_d128_bf16(
// CHECK-DAG: gpu.func @kvc_append_rope_d128_bf16(
// CHECK-DAG: gpu.func @kvc_decode_split_d128_g4_bf16(
// CHECK-DAG: gpu.func @kvc_decode_combine_d128_bf16(
// CHECK-DAG: gpu.func @kvc_set_lengths(

// BIN: gpu.binary @kvc_kernels [#gpu.object<#nvvm.target<O = 3, chip = "sm_90a">, properties = {{.+}}, bin = "

func.func @step(%c: !kvc.cache<2x2x?x128xbf16>, %q: tensor<2x8x1x128xbf16>,
                %k: tensor<2x2x1x128xbf16>, %v: tensor<2x2x1x128xbf16>,
                %pos: tensor<2xi32>) -> tensor<2x8x1x128xbf16> {
  kvc.cache.append %c[%pos], %k, %v : !kvc.cache<2x2x?x128xbf16>, tensor<2x2x1x128xbf16>
  kvc.cache.append %c[%pos], %k, %v {rotary_theta = 1.0e+04 : f32} : !kvc.cache<2x2x?x128xbf16>, tensor<2x2x1x128xbf16>
  %o = kvc.decode_attention %q, %c[%pos] : tensor<2x8x1x128xbf16>, !kvc.cache<2x2x?x128xbf16>
  return %o : tensor<2x8x1x128xbf16>
}

func.func @run(%cap: index, %q: tensor<2x8x1x128xbf16>, %k: tensor<2x2x1x128xbf16>,
               %v: tensor<2x2x1x128xbf16>, %pos: tensor<2xi32>) -> tensor<2xi32> {
  %c = kvc.cache.alloc(%cap) : !kvc.cache<2x2x?x128xbf16>
  %o = call @step(%c, %q, %k, %v, %pos)
      : (!kvc.cache<2x2x?x128xbf16>, tensor<2x8x1x128xbf16>, tensor<2x2x1x128xbf16>,
         tensor<2x2x1x128xbf16>, tensor<2xi32>) -> tensor<2x8x1x128xbf16>
  kvc.cache.truncate %c[%pos] : !kvc.cache<2x2x?x128xbf16>
  %l = kvc.cache.length %c : !kvc.cache<2x2x?x128xbf16>
  kvc.cache.dealloc %c : !kvc.cache<2x2x?x128xbf16>
  return %l : tensor<2xi32>
}

// -----

// Tests that a transpose to heads last, the only user of decode attention,
// becomes the kernel's output layout (no copy after attention).

// CHECK-LABEL: func.func @heads_last(
// CHECK-SAME: %[[Q:[^:]+]]: tensor<?x8x?x64xbf16>
// CHECK: %[[B:.+]] = tensor.dim %[[Q]], %c0
// CHECK: %[[T:.+]] = tensor.dim %[[Q]], %c2
// CHECK: %[[OUT:.+]] = memref.alloc(%[[B]], %[[T]]) : memref<?x?x8x64xbf16>
// CHECK: %[[LAST:.+]] = arith.constant 1 : i32
// CHECK: call @kvc_rt_op_decode_attention(%{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %[[LAST]])
// CHECK-NOT: linalg.transpose
// CHECK: %[[O:.+]] = bufferization.to_tensor %[[OUT]] restrict writable : memref<?x?x8x64xbf16>
// CHECK: tensor.collapse_shape %[[O]]
func.func @heads_last(%c: !kvc.cache<?x2x?x64xbf16>, %q: tensor<?x8x?x64xbf16>,
                      %pos: tensor<?xi32>) -> tensor<?x?x512xbf16> {
  %c0 = arith.constant 0 : index
  %c2 = arith.constant 2 : index
  %o = kvc.decode_attention %q, %c[%pos] : tensor<?x8x?x64xbf16>, !kvc.cache<?x2x?x64xbf16>
  %b = tensor.dim %q, %c0 : tensor<?x8x?x64xbf16>
  %t = tensor.dim %q, %c2 : tensor<?x8x?x64xbf16>
  %init = tensor.empty(%b, %t) : tensor<?x?x8x64xbf16>
  %tr = linalg.transpose ins(%o : tensor<?x8x?x64xbf16>) outs(%init : tensor<?x?x8x64xbf16>) permutation = [0, 2, 1, 3]
  %flat = tensor.collapse_shape %tr [[0], [1], [2, 3]] : tensor<?x?x8x64xbf16> into tensor<?x?x512xbf16>
  return %flat : tensor<?x?x512xbf16>
}

// -----

// Tests that a dynamic batch asks the runtime for it before sizing the
// lengths it copies out.

// CHECK-LABEL: func.func @lengths(
// CHECK: %[[B:.+]] = call @kvc_rt_op_cache_batch(%{{.+}}) : (!llvm.ptr) -> i64
// CHECK: %[[BI:.+]] = arith.index_cast %[[B]] : i64 to index
// CHECK: memref.alloc(%[[BI]]) : memref<?xi32>
func.func @lengths(%c: !kvc.cache<?x2x16x64xf16>) -> tensor<?xi32> {
  %l = kvc.cache.length %c : !kvc.cache<?x2x16x64xf16>
  return %l : tensor<?xi32>
}

// -----

// Tests that causal prefill attention becomes a runtime call on the
// tensor-core kernel, with the batch and sequence from the query's shape.

// CHECK-LABEL: func.func @prefill(
// CHECK-SAME: %[[Q:[^:]+]]: tensor<?x8x?x64xbf16>, %[[K:[^:]+]]: tensor<?x2x?x64xbf16>
// CHECK: %[[OUT:.+]] = memref.alloc(%{{.+}}, %{{.+}}) : memref<?x8x?x64xbf16>
// CHECK-DAG: %[[HQ:.+]] = arith.constant 8 : i64
// CHECK-DAG: %[[HKV:.+]] = arith.constant 2 : i64
// CHECK-DAG: %[[D:.+]] = arith.constant 64 : i64
// CHECK-DAG: %[[TYPE:.+]] = arith.constant 1 : i32
// CHECK: call @kvc_rt_op_prefill_attention(%{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %[[HQ]], %[[HKV]], %{{.+}}, %[[D]], %[[TYPE]], %{{.+}}) : (!llvm.ptr, !llvm.ptr, !llvm.ptr, !llvm.ptr, i64, i64, i64, i64, i64, i32, f32) -> ()
// CHECK: gpu.func @kvc_prefill_d64_g4_bf16(
// CHECK-NEXT: nvvm.griddepcontrol wait
// CHECK-NEXT: nvvm.griddepcontrol launch_dependents
func.func @prefill(%q: tensor<?x8x?x64xbf16>, %k: tensor<?x2x?x64xbf16>) -> tensor<?x8x?x64xbf16> {
  %o = kvc.attention %q, %k, %k {causal} : tensor<?x8x?x64xbf16>, tensor<?x2x?x64xbf16>
  return %o : tensor<?x8x?x64xbf16>
}

// -----

// Tests that attention the kernels do not cover is refused, by name.

func.func @bidirectional(%q: tensor<1x4x8x64xf16>) -> tensor<1x4x8x64xf16> {
  // expected-error @+1 {{'kvc.attention' op has no GPU kernel unless causal and unmasked (the prefill kernel)}}
  %o = kvc.attention %q, %q, %q : tensor<1x4x8x64xf16>, tensor<1x4x8x64xf16>
  return %o : tensor<1x4x8x64xf16>
}

// -----

// f32 has no tensor-core kernel: the runtime runs it as decode attention
// over the whole sequence, so only the decode kernels are added.
// CHECK-LABEL: func.func @f32_prefill
// CHECK: call @kvc_rt_op_prefill_attention
// CHECK: gpu.func @kvc_decode_split_d64_g1_f32(
// CHECK-NOT: gpu.func @kvc_prefill_d64_g1_f32
func.func @f32_prefill(%q: tensor<1x4x8x64xf32>) -> tensor<1x4x8x64xf32> {
  %o = kvc.attention %q, %q, %q {causal} : tensor<1x4x8x64xf32>, tensor<1x4x8x64xf32>
  return %o : tensor<1x4x8x64xf32>
}
