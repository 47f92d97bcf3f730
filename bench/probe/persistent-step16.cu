// Feasibility probe (not part of kvc), batch 16: can one persistent kernel
// per decode step stream every weight of a TinyLlama step through shared
// memory and multiply it with 16 rows of activations on the tensor cores,
// near the weight-read floor? (The target in issue 6 is 1.0 ms/step.)
//
// As persistent-step.cu, one block per SM: thread 0 of warp 8 streams the
// block's rows of every projection, in step order, into a ring of slots
// (1-D bulk copies, a row piece each, full / empty mbarriers). Here a slot
// is a group of up to 64 of the block's rows times a chunk of k (as many
// columns as fill the slot), in the order: for each chunk of k, for each
// row group. The 8 consumer warps, for each chunk, load x's 16 rows of that
// chunk from L2 (f32, times each row's RMS factor, rounded to bf16) into
// shared memory, then take the chunk's row groups: warp w multiplies rows
// 8w..8w+7 of a group with mma.sync m16n8k16 (x as A, the weight rows as
// B), accumulating in registers across chunks; at the end of a projection
// it writes its rows of y (f32, [16][n]). Rows of slots and of x are padded
// by 16 bytes, so that the fragment loads hit 32 distinct banks. Checked
// against a plain reference that rounds the scaled x to bf16 as the kernel
// does (a rounding flip from the RMS factor's last bits stays under 2e-3).
//
//   nvcc -O3 -gencode arch=compute_90a,code=sm_90a -o probe16 persistent-step16.cu
//   ./probe16 [--att-ns NS] [--steps-per-launch N]
#include "probe-common.cuh"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>


constexpr int kBatch = 16;
constexpr int kConsumerWarps = 8;
constexpr int kThreads = (kConsumerWarps + 1) * 32;
constexpr int kSlots = 4;
constexpr int kSlotBytes = 34816;  // 64 rows of 256 columns, padded
constexpr int kGroup = 64;         // rows of a slot at most
constexpr int kMaxGroups = 4;      // row groups of a block at most
constexpr int kPad = 8;            // bf16 of padding a row
constexpr int kMaxChunk = 1024;    // columns of a chunk at most

struct Proj {
  const __nv_bfloat16 *w;
  const float *x; // [16][xStride]
  float *y;       // [16][yStride]
  int n, k, xStride, yStride;
  int delayAfter;
  int norm;
};

// A block's rows of a projection and how they are cut.
struct Cut {
  int r0, rows, group, groups, chunk, chunks;
};
__host__ __device__ inline Cut cutOf(const Proj &p, int b, int G) {
  Cut c;
  c.r0 = (int)((long long)p.n * b / G);
  c.rows = (int)((long long)p.n * (b + 1) / G) - c.r0;
  c.group = c.rows < 1 ? 1 : c.rows < kGroup ? c.rows : kGroup;
  c.groups = (c.rows + c.group - 1) / c.group;
  // Columns per slot: a multiple of 16, at most kMaxChunk.
  const int fit = (kSlotBytes / (c.group * 2) - kPad) / 16 * 16;
  c.chunk = fit < kMaxChunk ? fit : kMaxChunk;
  c.chunks = (p.k + c.chunk - 1) / c.chunk;
  return c;
}

__device__ __forceinline__ void consumersSync() {
  asm volatile("bar.sync 1, %0;" ::"n"(kConsumerWarps * 32) : "memory");
}

__global__ void __launch_bounds__(kThreads, 1)
step(const Proj *projs, int count, unsigned *counters, unsigned epoch0, int steps) {
  extern __shared__ __align__(128) unsigned char shm[];
  __nv_bfloat16 *xs = reinterpret_cast<__nv_bfloat16 *>(shm + kSlots * kSlotBytes);
  __shared__ __align__(8) unsigned long long full[kSlots], empty[kSlots];
  __shared__ float inv[kBatch];
  const int G = gridDim.x, b = blockIdx.x;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  initRing(full, empty, kSlots, kConsumerWarps);
  if (warp == kConsumerWarps) {
    if (lane)
      return;
    int slot = 0;
    unsigned parity = 1;
    for (int st = 0; st < steps; ++st)
      for (int p = 0; p < count; ++p) {
        const Proj pr = projs[p];
        const Cut c = cutOf(pr, b, G);
        if (!c.rows)
          continue;
        for (int ch = 0; ch < c.chunks; ++ch) {
          const int k0 = ch * c.chunk, cols = min(c.chunk, pr.k - k0);
          for (int g = 0; g < c.groups; ++g) {
            const int g0 = g * c.group, rows = min(c.group, c.rows - g0);
            mbarWait(smem(&empty[slot]), parity);
            mbarExpect(smem(&full[slot]), rows * cols * 2);
            unsigned char *dst = shm + slot * kSlotBytes;
            for (int r = 0; r < rows; ++r)
              bulkCopy(smem(dst + r * (c.chunk + kPad) * 2),
                       pr.w + (size_t)(c.r0 + g0 + r) * pr.k + k0, cols * 2, smem(&full[slot]));
            if (++slot == kSlots) slot = 0, parity ^= 1;
          }
        }
      }
    return;
  }
  int slot = 0;
  unsigned parity = 0;
  const int gq = lane / 4, tq = lane % 4;
  for (int st = 0; st < steps; ++st) {
    const unsigned target = (unsigned)G * (epoch0 + st + 1);
    for (int p = 0; p < count; ++p) {
      const Proj pr = projs[p];
      const Cut c = cutOf(pr, b, G);
      if (threadIdx.x == 0) {
        if (p)
          while (ldAcquire(&counters[p - 1]) < target) {}
        else if (st)
          while (ldAcquire(&counters[count - 1]) < target - G) {}
        if (p && projs[p - 1].delayAfter) {
          unsigned long long t = now() + projs[p - 1].delayAfter;
          while (now() < t) {}
        }
      }
      consumersSync();
      // Each row's RMS factor (1 where the projection takes x as it is).
      if (warp < kBatch / 2 && c.rows) {
        for (int i = 0; i < 2; ++i) {
          const int row = warp * 2 + i;
          float ss = 0;
          if (pr.norm)
            for (int e = lane; e < pr.k; e += 32) {
              float v = __ldcg(pr.x + (size_t)row * pr.xStride + e);
              ss += v * v;
            }
          for (int o = 16; o; o /= 2) ss += __shfl_xor_sync(0xffffffffu, ss, o);
          if (lane == 0) inv[row] = pr.norm ? rsqrtf(ss / pr.k + 1e-5f) : 1.0f;
        }
      }
      consumersSync();
      float acc[kMaxGroups][4] = {};
      for (int ch = 0; ch < c.chunks && c.rows; ++ch) {
        const int k0 = ch * c.chunk, cols = min(c.chunk, pr.k - k0);
        // x's chunk, 16 rows, into shared memory as bf16 (zeros past k).
        for (int i = threadIdx.x; i < kBatch * c.chunk; i += kConsumerWarps * 32) {
          const int row = i / c.chunk, col = i % c.chunk;
          float v = col < cols ? __ldcg(pr.x + (size_t)row * pr.xStride + k0 + col) * inv[row] : 0.f;
          xs[row * (c.chunk + kPad) + col] = __float2bfloat16(v);
        }
        consumersSync();
#pragma unroll
        for (int g = 0; g < kMaxGroups; ++g) {
          if (g >= c.groups)
            break;
          const int rows = min(c.group, c.rows - g * c.group);
          mbarWait(smem(&full[slot]), parity);
          const __nv_bfloat16 *ws = reinterpret_cast<const __nv_bfloat16 *>(shm + slot * kSlotBytes);
          if (warp * 8 < rows) {
            // B: weight row 8 warp + gq (clamped), k pairs 2 tq and 2 tq + 8.
            const int wr = min(warp * 8 + gq, rows - 1);
            const __nv_bfloat16 *wrow = ws + wr * (c.chunk + kPad);
            const __nv_bfloat16 *x0 = xs + gq * (c.chunk + kPad), *x1 = x0 + 8 * (c.chunk + kPad);
            for (int kk = 0; kk < cols; kk += 16) {
              // Columns past `cols` hold stale weights but meet zeros of x.
              unsigned a0 = *reinterpret_cast<const unsigned *>(x0 + kk + 2 * tq);
              unsigned a1 = *reinterpret_cast<const unsigned *>(x1 + kk + 2 * tq);
              unsigned a2 = *reinterpret_cast<const unsigned *>(x0 + kk + 2 * tq + 8);
              unsigned a3 = *reinterpret_cast<const unsigned *>(x1 + kk + 2 * tq + 8);
              unsigned b0 = *reinterpret_cast<const unsigned *>(wrow + kk + 2 * tq);
              unsigned b1 = *reinterpret_cast<const unsigned *>(wrow + kk + 2 * tq + 8);
              asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, "
                           "{%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                           : "+f"(acc[g][0]), "+f"(acc[g][1]), "+f"(acc[g][2]), "+f"(acc[g][3])
                           : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
            }
          }
          __syncwarp();
          if (lane == 0)
            mbarArrive(smem(&empty[slot]));
          if (++slot == kSlots) slot = 0, parity ^= 1;
        }
        consumersSync(); // every warp is done with this chunk of x
      }
      // C: batch rows gq and gq + 8, weight rows 2 tq and 2 tq + 1 of the tile.
#pragma unroll
      for (int g = 0; g < kMaxGroups; ++g) {
        if (g >= c.groups)
          break;
        const int rows = min(c.group, c.rows - g * c.group);
        for (int j = 0; j < 2; ++j) {
          const int r = warp * 8 + 2 * tq + j;
          if (r < rows) {
            const int row = c.r0 + g * c.group + r;
            pr.y[(size_t)gq * pr.yStride + row] = acc[g][j];
            pr.y[(size_t)(gq + 8) * pr.yStride + row] = acc[g][2 + j];
          }
        }
      }
      consumersSync();
      if (threadIdx.x == 0) {
        __threadfence();
        atomicAdd(&counters[p], 1u);
      }
    }
  }
}

// Reference: out[b][r] = sum_k W[r][k] bf16(x[b][k] * inv_b).
__global__ void gemv16(const Proj pr) {
  const int r = blockIdx.x, lane = threadIdx.x % 32, bb = threadIdx.x / 32;
  if (r >= pr.n) return;
  for (int bi = bb; bi < kBatch; bi += 4) {
    const float *x = pr.x + (size_t)bi * pr.xStride;
    float inv = 1, acc = 0;
    if (pr.norm) {
      float ss = 0;
      for (int e = lane; e < pr.k; e += 32) ss += x[e] * x[e];
      for (int o = 16; o; o /= 2) ss += __shfl_xor_sync(0xffffffffu, ss, o);
      inv = rsqrtf(ss / pr.k + 1e-5f);
    }
    for (int e = lane; e < pr.k; e += 32)
      acc = fmaf(__bfloat162float(pr.w[(size_t)r * pr.k + e]),
                 __bfloat162float(__float2bfloat16(x[e] * inv)), acc);
    for (int o = 16; o; o /= 2) acc += __shfl_xor_sync(0xffffffffu, acc, o);
    if (lane == 0) pr.y[(size_t)bi * pr.yStride + r] = acc;
  }
}


int main(int argc, char **argv) {
  int stepsPerLaunch = 1, attNs = 4000, launches = 20;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--steps-per-launch")) stepsPerLaunch = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--att-ns")) attNs = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--launches")) launches = atoi(argv[i + 1]);
  }
  int sms;
  CK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  const std::vector<Shape> shapes = tinyLlamaStep(attNs);
  const int count = shapes.size();
  size_t bytes;
  __nv_bfloat16 *wAll = randomWeights(shapes, bytes);
  const int stride0 = 5632;
  float *x0;
  CK(cudaMalloc(&x0, (size_t)kBatch * stride0 * 4));
  std::vector<float> hx((size_t)kBatch * stride0);
  for (size_t i = 0; i < hx.size(); ++i) hx[i] = std::sin(0.37f * i + 0.1f * (i / stride0));
  CK(cudaMemcpy(x0, hx.data(), hx.size() * 4, cudaMemcpyHostToDevice));
  std::vector<Proj> projs(count);
  std::vector<float *> ys(count), refs(count);
  size_t off = 0;
  for (int p = 0; p < count; ++p) {
    const int stride = std::max(shapes[p].n, 5632);
    CK(cudaMalloc(&ys[p], (size_t)kBatch * stride * 4));
    CK(cudaMalloc(&refs[p], (size_t)kBatch * stride * 4));
    CK(cudaMemset(ys[p], 0, (size_t)kBatch * stride * 4));
    projs[p] = {wAll + off, p ? ys[p - 1] : x0, ys[p], shapes[p].n, shapes[p].k,
                p ? projs[p - 1].yStride : stride0, stride, shapes[p].delay, shapes[p].norm};
    off += (size_t)shapes[p].n * shapes[p].k;
    const Cut c = cutOf(projs[p], 0, sms);
    if ((c.rows + c.group - 1) / c.group > kMaxGroups) {
      std::fprintf(stderr, "projection %d: %d rows a block need more than %d groups\n", p,
                   c.rows, kMaxGroups);
      return 2;
    }
  }
  Proj *dProjs;
  CK(cudaMalloc(&dProjs, count * sizeof(Proj)));
  CK(cudaMemcpy(dProjs, projs.data(), count * sizeof(Proj), cudaMemcpyHostToDevice));
  unsigned *counters;
  CK(cudaMalloc(&counters, count * 4));
  CK(cudaMemset(counters, 0, count * 4));
  const int smemBytes = kSlots * kSlotBytes + kBatch * (kMaxChunk + kPad) * 2;
  CK(cudaFuncSetAttribute(step, cudaFuncAttributeMaxDynamicSharedMemorySize, smemBytes));

  unsigned epoch = 0;
  step<<<sms, kThreads, smemBytes>>>(dProjs, count, counters, epoch, 1);
  epoch += 1;
  CK(cudaGetLastError());
  CK(cudaDeviceSynchronize());
  double worst = 0;
  for (int p = 0; p < count; ++p) {
    Proj ref = projs[p];
    ref.y = refs[p];
    gemv16<<<ref.n, 128>>>(ref);
  }
  CK(cudaDeviceSynchronize());
  for (int p = 0; p < count; ++p) {
    const size_t size = (size_t)kBatch * projs[p].yStride;
    std::vector<float> a(size), r(size);
    CK(cudaMemcpy(a.data(), ys[p], size * 4, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(r.data(), refs[p], size * 4, cudaMemcpyDeviceToHost));
    double mx = 1e-30, d = 0;
    for (int bi = 0; bi < kBatch; ++bi)
      for (int i = 0; i < shapes[p].n; ++i) {
        const size_t at = (size_t)bi * projs[p].yStride + i;
        mx = std::max(mx, (double)std::fabs(r[at]));
        d = std::max(d, (double)std::fabs(a[at] - r[at]));
        if (!std::isfinite(a[at])) d = INFINITY;
      }
    worst = std::max(worst, d / mx);
  }
  std::printf("check: worst relative error over %d projections x %d rows %.2e (%s)\n", count,
              kBatch, worst, worst < 2e-3 ? "ok" : "FAIL");

  cudaEvent_t a, z;
  CK(cudaEventCreate(&a));
  CK(cudaEventCreate(&z));
  float ms;
  const double readMs = plainReadMs(wAll, bytes, sms);
  std::printf("weights %.3f GB; plain read %.3f ms (%.0f GB/s)\n", bytes / 1e9, readMs,
              bytes / (readMs * 1e-3) / 1e9);
  for (int rep = 0; rep < 3; ++rep) {
    CK(cudaEventRecord(a));
    for (int l = 0; l < launches; ++l) {
      step<<<sms, kThreads, smemBytes>>>(dProjs, count, counters, epoch, stepsPerLaunch);
      epoch += stepsPerLaunch;
    }
    CK(cudaEventRecord(z));
    CK(cudaEventSynchronize(z));
    CK(cudaGetLastError());
    CK(cudaEventElapsedTime(&ms, a, z));
    const double perStep = ms / (launches * stepsPerLaunch);
    std::printf("persistent, batch 16: attention %d ns, %d steps/launch: %.3f ms/step (%.0f%% "
                "of the plain read)\n", attNs, stepsPerLaunch, perStep, 100.0 * readMs / perStep);
  }
  return 0;
}
