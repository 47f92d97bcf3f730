// Tests that kvc-kernels writes the kernels under the names the runtime
// launches (runtime/test/PlanTest.cpp checks the same strings), that they
// lower to PTX with 16-byte loads, ex2 and warp shuffles, and to a cubin.
//
// RUN: kvc-kernels --emit=mlir --head-dims=128 --groups=4 --element-types=bf16 | FileCheck %s --check-prefix=MLIR
// RUN: kvc-kernels --emit=mlir --head-dims=64 --groups=32 --element-types=f16,f32 | FileCheck %s --check-prefix=NAMES
// RUN: kvc-kernels --emit=ptx --head-dims=128 --groups=4 --element-types=bf16 | FileCheck %s --check-prefix=PTX
// RUN: kvc-kernels --emit=ptx --head-dims=128 --groups=4 --element-types=bf16 | FileCheck %s --check-prefix=WAIT
// RUN: kvc-kernels --help | FileCheck %s --check-prefix=HELP
// RUN: not kvc-kernels --head-dims=60 2>&1 | FileCheck %s --check-prefix=BAD
// RUN: not kvc-kernels --element-types=f64 2>&1 | FileCheck %s --check-prefix=TYPE
// RUN: not kvc-kernels --emit=sass 2>&1 | FileCheck %s --check-prefix=EMIT

// MLIR: module attributes {gpu.container_module}
// MLIR: gpu.module @kvc_kernels
// MLIR-DAG: gpu.func @kvc_set_lengths(
// MLIR-DAG: gpu.func @kvc_append_d128_bf16(
// MLIR-DAG: gpu.func @kvc_decode_split_d128_g4_bf16(
// MLIR-DAG: gpu.func @kvc_decode_split1_d128_g4_bf16(
// MLIR-DAG: gpu.func @kvc_prefill_d128_g4_bf16(
// MLIR-DAG: gpu.func @kvc_decode_combine_d128_bf16(
// MLIR-DAG: gpu.func @kvc_decode_mma_d128_g4_bf16(

// NAMES-DAG: gpu.func @kvc_decode_split_d64_g32_f16(
// NAMES-DAG: gpu.func @kvc_decode_split_d64_g32_f32(
// NAMES-DAG: gpu.func @kvc_append_d64_f32(
// NAMES-DAG: gpu.func @kvc_prefill_d64_g32_f16(
// NAMES-DAG: gpu.func @kvc_decode_combine_d64_f16(
// RUN: kvc-kernels --emit=mlir --head-dims=64 --groups=32 --element-types=f32 | FileCheck %s --check-prefix=F32
// F32-NOT: gpu.func @kvc_prefill_
// F32-NOT: gpu.func @kvc_decode_mma_
// Prefill tiles are 64-column slices of the head dim; other head dims take
// the runtime's decode-kernel path.
// RUN: kvc-kernels --emit=mlir --head-dims=32 --groups=4 --element-types=bf16 | FileCheck %s --check-prefix=D32
// D32: gpu.func @kvc_decode_mma_d32_g4_bf16(
// D32-NOT: gpu.func @kvc_prefill_

// PTX: .target sm_90a
// PTX: .entry kvc_decode_split_d128_g4_bf16(
// PTX: ld.global.v4.b32
// PTX: shfl.sync.bfly
// PTX: ex2.approx
// PTX: .entry kvc_decode_mma_d128_g4_bf16(
// PTX: cp.async
// PTX: ldmatrix.sync.aligned.m8n8.x4.shared.b16
// PTX: mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32
// PTX: ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16
// With all splits in one cluster, the blocks merge through each other's
// shared memory between two cluster barriers.
// PTX: %cluster_nctarank
// PTX: barrier.cluster.arrive;
// PTX-NEXT: barrier.cluster.wait;
// PTX: mapa.shared::cluster.u64
// PTX: ld.shared::cluster.b32
// PTX: ld.shared::cluster.v4.b32
// PTX: barrier.cluster.arrive;
// PTX-NEXT: barrier.cluster.wait;
// Prefill on Hopper's warpgroup MMA: thread 0 sets up three mbarriers and
// loads q, k and v with the tensor memory accelerator (two 64-column boxes
// of head dim 128 each); S = q k^T with both operands in shared memory
// (descriptors, k not transposed), then O += P v with P in registers and v
// transposed.
// PTX: .entry kvc_prefill_d128_g4_bf16(
// PTX-COUNT-3: mbarrier.init.shared::cta.b64 [%r{{[0-9]+}}], 1;
// PTX: fence.mbarrier_init.release.cluster;
// PTX: mbarrier.arrive.expect_tx.shared::cta.b64 _, [%r{{[0-9]+}}], %r{{[0-9]+}};
// PTX-COUNT-2: cp.async.bulk.tensor.3d.shared::cluster.global.tile.mbarrier::complete_tx::bytes
// PTX: mbarrier.try_wait.parity.shared::cta.b64
// PTX: wgmma.fence.sync.aligned;
// PTX: wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16
// PTX-SAME: p, 1, 1, 0, 0; }
// PTX: wgmma.commit_group.sync.aligned;
// PTX-NEXT: wgmma.wait_group.sync.aligned 0;
// PTX: wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16
// PTX-SAME: p, 1, 1, 1; }

// Programmatic launch: kernels read nothing before griddepcontrol.wait
// (inline PTX, so that no load moves across it) except kvc_gemv and
// kvc_gemm16, which load their first 8 pieces of w (weights) before it.
// The tensor-core decode kernel only asks L2 for its split's first keys
// and values there (one bulk prefetch of each, by thread 0).
// WAIT-LABEL: .entry kvc_decode_split_d128_g4_bf16(
// WAIT-NOT: ld.global
// WAIT: griddepcontrol.wait;
// WAIT-NEXT: // end inline asm
// WAIT: griddepcontrol.launch_dependents;
// WAIT-LABEL: .entry kvc_decode_mma_d128_g4_bf16(
// WAIT-NOT: ld.global
// WAIT-COUNT-2: cp.async.bulk.prefetch.L2.global [%rd{{[0-9]+}}], %r{{[0-9]+}};
// WAIT-NOT: ld.global
// WAIT: griddepcontrol.wait;
// WAIT-NEXT: // end inline asm
// WAIT: griddepcontrol.launch_dependents;
// WAIT-LABEL: .entry kvc_gemv_bf16_f32(
// WAIT-COUNT-8: ld.global.v4.b32
// WAIT-NOT: ld.global
// WAIT: griddepcontrol.wait;
// WAIT: griddepcontrol.launch_dependents;
// WAIT: ld.global.v4.b32
// kvc_gemm16 likewise with its first two chunks of w (8 pieces), then x,
// on the tensor cores.
// WAIT-LABEL: .entry kvc_gemm16_bf16_f32(
// WAIT-COUNT-8: ld.global.v4.b32
// WAIT-NOT: ld.global
// WAIT: griddepcontrol.wait;
// WAIT: griddepcontrol.launch_dependents;
// WAIT: ld.global.v4.b32
// WAIT: mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32

// HELP: kvc-kernels options:
// HELP-NOT: amdgpu

// BAD: kvc GPU kernels need a head dim that is a multiple of 8 up to 256 and a query group of at most 8 or a multiple of 8; found head dim 60
// TYPE: kvc-kernels: error: unknown element type 'f64' (bf16, f16, f32)
// EMIT: kvc-kernels: error: --emit must be mlir, ptx or cubin, found 'sass'
