// Feasibility probe (not part of kvc): can one persistent kernel per decode
// step, streaming every weight of a TinyLlama step through a shared-memory
// ring, reach the weight-read floor at batch 1?
//
// One block per SM. Warp 8 (lane 0) is the producer: it walks the step's
// projections in order and bulk-copies the block's contiguous slice of rows
// of each weight (cp.async.bulk, 1-D) into a ring of kSlots slots with full /
// empty mbarriers. Weights depend on nothing, so it runs ahead across
// projection boundaries as far as the ring allows. Warps 0-7 consume: for
// each projection they wait (grid-wide counter) for its input vector, copy
// it to shared memory, and take the ring's rows (one warp per row). After a
// projection's rows, thread 0 bumps the projection's counter (release).
// The qkv, gate/up and lm_head projections RMSNorm their input in the
// prologue (every block for itself, as a fused step would). An "attention"
// delay of --att-ns after each qkv projection models the latency-bound work
// between qkv and o.
//
// For comparison in the same run: the same projections as a chain of
// kernels, kvc's design today (kvc_gemv's shape with its first weights
// loaded before griddepcontrol.wait, a norm kernel ahead of each normed
// projection, a delay kernel for attention, programmatic dependent
// launches in one CUDA graph). Both are checked against a plain GEMV of
// the input each projection saw.
//
//   nvcc -O3 -gencode arch=compute_90a,code=sm_90a [-DCONSUMER_WARPS=W] -o probe persistent-step.cu
//   ./probe [--steps-per-launch N] [--att-ns NS] [--slot-kb KB] [--slots S]
//           [--flat 1] [--xbf16 1] [--direct 1] [--stats 1] [--skip BITS]
// Variants and what they measured on the H100: bench/RESULTS.md (issue 6).
// In short, the step stays at ~0.97-1.07 ms against a 0.68 ms read: the
// dot products and the grid-wide waits each add ~0.1 ms to the ring's own
// streaming (0.78 ms with neither), rather than hiding under it.
#include "probe-common.cuh"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>


#ifndef CONSUMER_WARPS
#define CONSUMER_WARPS 8
#endif
constexpr int kConsumerWarps = CONSUMER_WARPS; // -DCONSUMER_WARPS=16 to try more
constexpr int kThreads = (kConsumerWarps + 1) * 32;
constexpr int kMaxSlots = 8;
constexpr int kMaxK = 5632;
constexpr int kMaxBlockRows = 256; // rows of one projection in one block
// --stats: per block, ns spent by the producer waiting for an empty slot, by
// thread 0 waiting for a projection's input (the grid), waiting for a full
// slot, and in the prologue (x load, norm); then per projection of the first
// step, the first and last block's input-ready and done times.
constexpr int kStats = 4;

struct Proj {
  const __nv_bfloat16 *w;
  const float *x; // input vector (k)
  float *y;       // output vector (n)
  int n, k;
  int delayAfter; // ns of modeled attention before the next projection
  int norm;       // RMSNorm the input first
};

__device__ __forceinline__ void consumersSync() {
  asm volatile("bar.sync 1, %0;" ::"n"(kConsumerWarps * 32) : "memory");
}

// --flat: the slot's rows cut into pieces of 256 elements (a warp's 16 bytes
// a lane), each warp a contiguous run of pieces, two in flight, reduced
// across the warp once per row it touches and added into rowAcc (shared).
// Needs k a multiple of 256 (TinyLlama's are).
// 8 weights (16 bytes) times x[e, e + 8), x from f32 or (--xbf16) bf16 in
// shared memory: two 16-byte loads a lane (each a 2-way bank conflict) or one.
__device__ __forceinline__ float dot8(uint4 raw, const float *xs, const __nv_bfloat16 *xh, int e,
                                      bool xbf, float acc) {
  const __nv_bfloat162 *h = reinterpret_cast<const __nv_bfloat162 *>(&raw);
  float xv[8];
  if (xbf) {
    uint4 xr = *reinterpret_cast<const uint4 *>(xh + e);
    const __nv_bfloat162 *xp = reinterpret_cast<const __nv_bfloat162 *>(&xr);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      float2 f = __bfloat1622float2(xp[j]);
      xv[2 * j] = f.x, xv[2 * j + 1] = f.y;
    }
  } else {
    const float4 xa = *reinterpret_cast<const float4 *>(xs + e),
                 xb = *reinterpret_cast<const float4 *>(xs + e + 4);
    xv[0] = xa.x, xv[1] = xa.y, xv[2] = xa.z, xv[3] = xa.w;
    xv[4] = xb.x, xv[5] = xb.y, xv[6] = xb.z, xv[7] = xb.w;
  }
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    float2 f = __bfloat1622float2(h[j]);
    acc = fmaf(f.x, xv[2 * j], acc);
    acc = fmaf(f.y, xv[2 * j + 1], acc);
  }
  return acc;
}
__device__ __forceinline__ float piece(const __nv_bfloat16 *w, const float *xs,
                                       const __nv_bfloat16 *xh, int e, bool xbf) {
  return dot8(*reinterpret_cast<const uint4 *>(w + e), xs, xh, e, xbf, 0.f);
}
__device__ __forceinline__ void flatSlot(const __nv_bfloat16 *w, int rows, int k, const float *xs,
                                         const __nv_bfloat16 *xh, bool xbf, float *acc, int warp,
                                         int lane) {
  const int ppr = k / 256, total = rows * ppr;
  int q = total * warp / kConsumerWarps;
  const int q1 = total * (warp + 1) / kConsumerWarps;
  while (q < q1) {
    const int row = q / ppr, end = min(q1, (row + 1) * ppr);
    const __nv_bfloat16 *wr = w + (size_t)row * k;
    float a0 = 0, a1 = 0;
    for (; q + 1 < end; q += 2) {
      const int e = (q - row * ppr) * 256 + lane * 8;
      a0 += piece(wr, xs, xh, e, xbf);
      a1 += piece(wr, xs, xh, e + 256, xbf);
    }
    if (q < end) {
      a0 += piece(wr, xs, xh, (q - row * ppr) * 256 + lane * 8, xbf);
      ++q;
    }
    a0 += a1;
#pragma unroll
    for (int o = 16; o; o /= 2)
      a0 += __shfl_xor_sync(0xffffffffu, a0, o);
    if (lane == 0)
      atomicAdd(acc + row, a0);
  }
}

// --direct: the warp's rows of a projection straight from global memory, 8
// 16-byte loads a lane in flight; the first row's first 8 came in `first`.
__device__ __forceinline__ void directRows(const Proj &pr, int r0, int r1, const uint4 (&first)[8],
                                           const float *xs, const __nv_bfloat16 *xh, bool xbf,
                                           int warp, int lane) {
  for (int row = r0 + warp; row < r1; row += kConsumerWarps) {
    const __nv_bfloat16 *wr = pr.w + (size_t)row * pr.k;
    float acc0 = 0, acc1 = 0;
    for (int e0 = 0; e0 < pr.k; e0 += 2048) {
      uint4 v[8];
#pragma unroll
      for (int u = 0; u < 8; ++u) {
        const int e = e0 + lane * 8 + u * 256;
        if (row == r0 + warp && e0 == 0)
          v[u] = first[u];
        else if (e < pr.k)
          v[u] = __ldcs(reinterpret_cast<const uint4 *>(wr + e));
      }
#pragma unroll
      for (int u = 0; u < 8; u += 2) {
        const int e = e0 + lane * 8 + u * 256;
        if (e < pr.k)
          acc0 = dot8(v[u], xs, xh, e, xbf, acc0);
        if (e + 256 < pr.k)
          acc1 = dot8(v[u + 1], xs, xh, e + 256, xbf, acc1);
      }
    }
    acc0 += acc1;
#pragma unroll
    for (int o = 16; o; o /= 2)
      acc0 += __shfl_xor_sync(0xffffffffu, acc0, o);
    if (lane == 0)
      pr.y[row] = acc0;
  }
}

__global__ void __launch_bounds__(kThreads, 1)
step(const Proj *projs, int count, unsigned *counters, unsigned epoch0,
     int steps, int slots, int slotBytes, int flat, int xbf,
     unsigned long long *stats, int skip, int direct) {
  extern __shared__ __align__(128) unsigned char shm[];
  __shared__ __align__(8) unsigned long long full[kMaxSlots], empty[kMaxSlots];
  __shared__ __align__(16) float xs[kMaxK];
  __shared__ __align__(16) __nv_bfloat16 xh[kMaxK];
  __shared__ float red[kConsumerWarps];
  __shared__ float rowAcc[kMaxBlockRows];
  const int G = gridDim.x, b = blockIdx.x;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  for (int i = threadIdx.x; i < kMaxBlockRows; i += blockDim.x)
    rowAcc[i] = 0;
  initRing(full, empty, slots, kConsumerWarps);
  if (warp == kConsumerWarps) {
    if (lane || direct)
      return;
    int slot = 0;
    unsigned parity = 1;
    for (int st = 0; st < steps; ++st)
      for (int p = 0; p < count; ++p) {
        const Proj pr = projs[p];
        const int r0 = (long long)pr.n * b / G, r1 = (long long)pr.n * (b + 1) / G;
        const int rowBytes = pr.k * 2, per = slotBytes / rowBytes;
        for (int r = r0; r < r1; r += per) {
          const int rows = min(per, r1 - r);
          const unsigned long long t0 = stats ? now() : 0;
          mbarWait(smem(&empty[slot]), parity);
          if (stats) stats[b * kStats + 0] += now() - t0;
          mbarExpect(smem(&full[slot]), rows * rowBytes);
          bulkCopy(smem(shm + slot * slotBytes), pr.w + (size_t)r * pr.k, rows * rowBytes,
                   smem(&full[slot]));
          if (++slot == slots) slot = 0, parity ^= 1;
        }
      }
    return;
  }
  int slot = 0;
  unsigned parity = 0;
  for (int st = 0; st < steps; ++st) {
    const unsigned target = (unsigned)G * (epoch0 + st + 1);
    for (int p = 0; p < count; ++p) {
      const Proj pr = projs[p];
      // --direct: no ring; each warp loads its first row's first 2048
      // weights now, before the input is ready (as kvc_gemv does before
      // griddepcontrol.wait), and the rest straight from global memory.
      uint4 first[8];
      if (direct && (long long)pr.n * b / G + warp < (long long)pr.n * (b + 1) / G) {
        const __nv_bfloat16 *wr = pr.w + (size_t)((long long)pr.n * b / G + warp) * pr.k;
#pragma unroll
        for (int u = 0; u < 8; ++u)
          first[u] = __ldcs(reinterpret_cast<const uint4 *>(wr + lane * 8 + u * 256));
      }
      // The input: written by every block's previous projection.
      unsigned long long tIn = 0;
      if (threadIdx.x == 0) {
        const unsigned *c = p ? &counters[p - 1] : (st ? &counters[count - 1] : nullptr);
        const unsigned want = p ? target : target - G;
        const unsigned long long t0 = stats ? now() : 0;
        if (c && (p || st) && !(skip & 2))
          while (ldAcquire(c) < want) {}
        if (stats) {
          tIn = now();
          stats[b * kStats + 1] += tIn - t0;
          if (st == 0) {
            atomicMin(stats + G * kStats + p * 4 + 0, tIn);
            atomicMax(stats + G * kStats + p * 4 + 1, tIn);
          }
        }
        if (p && projs[p - 1].delayAfter) {
          unsigned long long t = now() + projs[p - 1].delayAfter;
          while (now() < t) {}
        }
      }
      consumersSync();
      // The input, RMS-normalized in the prologue where a norm precedes the
      // projection (as a fused step would).
      loadInput<kConsumerWarps>(pr.x, xs, pr.k, pr.norm, red);
      if (xbf) {
        consumersSync();
        for (int i = threadIdx.x; i < pr.k; i += kConsumerWarps * 32)
          xh[i] = __float2bfloat16(xs[i]);
      }
      consumersSync();
      if (stats && threadIdx.x == 0)
        stats[b * kStats + 3] += now() - tIn;
      const int r0 = (long long)pr.n * b / G, r1 = (long long)pr.n * (b + 1) / G;
      const int rowBytes = pr.k * 2, per = slotBytes / rowBytes;
      if (direct)
        directRows(pr, r0, r1, first, xs, xh, xbf, warp, lane);
      for (int r = r0; r < r1 && !direct; r += per) {
        const int rows = min(per, r1 - r);
        const unsigned long long tw = stats && threadIdx.x == 0 ? now() : 0;
        mbarWait(smem(&full[slot]), parity);
        if (stats && threadIdx.x == 0)
          stats[b * kStats + 2] += now() - tw;
        const __nv_bfloat16 *w = reinterpret_cast<const __nv_bfloat16 *>(shm + slot * slotBytes);
        if (skip & 1)
          ;
        else if (flat)
          flatSlot(w, rows, pr.k, xs, xh, xbf, rowAcc + (r - r0), warp, lane);
        else
        for (int row = warp; row < rows; row += kConsumerWarps) {
          const __nv_bfloat16 *wr = w + (size_t)row * pr.k;
          float acc = 0;
          if (skip & 8) { // the weights' loads only
            unsigned bits = 0;
#pragma unroll 4
            for (int e = lane * 8; e < pr.k; e += 256) {
              const uint4 raw = *reinterpret_cast<const uint4 *>(wr + e);
              bits ^= raw.x ^ raw.y ^ raw.z ^ raw.w;
            }
            acc = __int_as_float(bits & 0x3fffffff);
          } else if (skip & 4) { // no x: the weights' loads, unpacking and FMAs
#pragma unroll 4
            for (int e = lane * 8; e < pr.k; e += 256) {
              const uint4 raw = *reinterpret_cast<const uint4 *>(wr + e);
              const __nv_bfloat162 *h = reinterpret_cast<const __nv_bfloat162 *>(&raw);
#pragma unroll
              for (int j = 0; j < 4; ++j) {
                const float2 f = __bfloat1622float2(h[j]);
                acc = fmaf(f.x, f.y, acc);
              }
            }
          } else {
#pragma unroll 4
            for (int e = lane * 8; e < pr.k; e += 256)
              acc = dot8(*reinterpret_cast<const uint4 *>(wr + e), xs, xh, e, xbf, acc);
          }
#pragma unroll
          for (int o = 16; o; o /= 2)
            acc += __shfl_xor_sync(0xffffffffu, acc, o);
          if (lane == 0)
            pr.y[r + row] = acc;
        }
        __syncwarp();
        if (lane == 0)
          mbarArrive(smem(&empty[slot]));
        if (++slot == slots) slot = 0, parity ^= 1;
      }
      if (flat) {
        consumersSync();
        for (int i = threadIdx.x; i < r1 - r0; i += kConsumerWarps * 32) {
          pr.y[r0 + i] = rowAcc[i];
          rowAcc[i] = 0;
        }
      }
      consumersSync();
      if (threadIdx.x == 0) {
        if (stats && st == 0) {
          atomicMin(stats + G * kStats + p * 4 + 2, now());
          atomicMax(stats + G * kStats + p * 4 + 3, now());
        }
        __threadfence();
        atomicAdd(&counters[p], 1u);
      }
    }
  }
}

// Reference: one warp per row, plain loads.
__global__ void gemv(const __nv_bfloat16 *w, const float *x, float *y, int n, int k, int norm,
                     int xbf) {
  int row = blockIdx.x * 4 + threadIdx.x / 32, lane = threadIdx.x % 32;
  if (row >= n) return;
  float inv = 1;
  if (norm) {
    float ss = 0;
    for (int e = lane; e < k; e += 32) ss += x[e] * x[e];
    for (int o = 16; o; o /= 2) ss += __shfl_xor_sync(0xffffffffu, ss, o);
    inv = rsqrtf(ss / k + 1e-5f);
  }
  float acc = 0;
  for (int e = lane; e < k; e += 32)
    acc = fmaf(__bfloat162float(w[(size_t)row * k + e]),
               xbf ? __bfloat162float(__float2bfloat16(x[e] * inv)) : x[e] * inv, acc);
  for (int o = 16; o; o /= 2)
    acc += __shfl_xor_sync(0xffffffffu, acc, o);
  if (lane == 0) y[row] = acc;
}


// The chain-of-kernels design kvc runs today, for comparison in the same
// run: kvc_gemv's shape (a warp per row, 8 16-byte pieces of w per lane
// loaded before griddepcontrol.wait), each projection a programmatic
// dependent launch, a normed input RMS-normalized by a kernel of its own
// ahead of it (kvc's residual + RMSNorm kernel), all in one CUDA graph.
__global__ void __launch_bounds__(128) gemvPdl(const __nv_bfloat16 *w, const float *x, float *y,
                                               int n, int k) {
  const int lane = threadIdx.x % 32;
  const int row = min(blockIdx.x * 4 + threadIdx.x / 32, n - 1);
  const __nv_bfloat16 *wr = w + (size_t)row * k;
  uint4 first[8];
#pragma unroll
  for (int u = 0; u < 8; ++u)
    first[u] = *reinterpret_cast<const uint4 *>(wr + min(lane * 8 + u * 256, k - 8));
  asm volatile("griddepcontrol.wait;" ::: "memory");
  asm volatile("griddepcontrol.launch_dependents;");
  float acc = 0;
  for (int e0 = 0; e0 < k; e0 += 2048) {
#pragma unroll
    for (int u = 0; u < 8; ++u) {
      const int e = e0 + lane * 8 + u * 256;
      if (e >= k) continue;
      uint4 raw = e0 ? *reinterpret_cast<const uint4 *>(wr + e) : first[u];
      const __nv_bfloat162 *h = reinterpret_cast<const __nv_bfloat162 *>(&raw);
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        float2 f = __bfloat1622float2(h[j]);
        acc = fmaf(f.x, x[e + 2 * j], acc);
        acc = fmaf(f.y, x[e + 2 * j + 1], acc);
      }
    }
  }
  for (int o = 16; o; o /= 2) acc += __shfl_xor_sync(0xffffffffu, acc, o);
  if (lane == 0 && blockIdx.x * 4 + threadIdx.x / 32 < n) y[row] = acc;
}

// xn = x * rsqrt(mean(x^2) + eps): one block of 256 threads.
__global__ void __launch_bounds__(256) normPdl(const float *x, float *xn, int k) {
  __shared__ float red[8];
  asm volatile("griddepcontrol.wait;" ::: "memory");
  asm volatile("griddepcontrol.launch_dependents;");
  float ss = 0;
  for (int i = threadIdx.x; i < k; i += 256) ss += x[i] * x[i];
  for (int o = 16; o; o /= 2) ss += __shfl_xor_sync(0xffffffffu, ss, o);
  if (threadIdx.x % 32 == 0) red[threadIdx.x / 32] = ss;
  __syncthreads();
  float total = 0;
  for (int i = 0; i < 8; ++i) total += red[i];
  const float inv = rsqrtf(total / k + 1e-5f);
  for (int i = threadIdx.x; i < k; i += 256) xn[i] = x[i] * inv;
}

// Modeled attention between qkv and o in the chain of kernels.
__global__ void delay(int ns) {
  asm volatile("griddepcontrol.wait;" ::: "memory");
  asm volatile("griddepcontrol.launch_dependents;");
  unsigned long long t0, t;
  asm volatile("mov.u64 %0, %globaltimer;" : "=l"(t0));
  do asm volatile("mov.u64 %0, %globaltimer;" : "=l"(t)); while (t < t0 + ns);
}

template <typename... Args>
void launchPdlOn(cudaStream_t stream, void (*kernel)(Args...), dim3 grid, dim3 block,
                 Args... args) {
  cudaLaunchConfig_t config = {};
  config.stream = stream;
  config.gridDim = grid;
  config.blockDim = block;
  cudaLaunchAttribute attribute;
  attribute.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attribute.val.programmaticStreamSerializationAllowed = 1;
  config.attrs = &attribute;
  config.numAttrs = 1;
  CK(cudaLaunchKernelEx(&config, kernel, args...));
}

int main(int argc, char **argv) {
  int stepsPerLaunch = 1, attNs = 4000, slotKb = 44, slots = 4, launches = 20;
  int flat = 0, stats = 0, xbf = 0, skip = 0, direct = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--steps-per-launch")) stepsPerLaunch = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--att-ns")) attNs = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--slot-kb")) slotKb = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--slots")) slots = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--launches")) launches = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--flat")) flat = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--stats")) stats = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--xbf16")) xbf = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--direct")) direct = atoi(argv[i + 1]);
    // Diagnosis only (results then wrong), bits: 1 leaves out the dot
    // products, 2 the wait for each projection's input, 4 the reads of x (the
    // FMAs multiply weights), 8 everything but the weights' loads.
    else if (!strcmp(argv[i], "--skip")) skip = atoi(argv[i + 1]);
  }
  const int slotBytes = slotKb * 1024;
  if (slots < 2 || slots > kMaxSlots || slotBytes < kMaxK * 2 ||
      slots * slotBytes > 200 * 1024) {
    std::fprintf(stderr, "--slots must lie in [2, %d], --slot-kb hold a row of %d bf16 "
                 "(11 KB), and the ring fit 200 KB of shared memory\n", kMaxSlots, kMaxK);
    return 2;
  }
  int sms;
  CK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  const std::vector<Shape> shapes = tinyLlamaStep(attNs);
  const int count = shapes.size();
  for (const Shape &sh : shapes)
    if (sh.k % 256 || sh.n / sms + 1 > kMaxBlockRows) {
      std::fprintf(stderr, "shape %d x %d: --flat needs k %% 256 == 0 and n / SMs < %d\n", sh.n,
                   sh.k, kMaxBlockRows);
      return 2;
    }
  size_t bytes;
  __nv_bfloat16 *wAll = randomWeights(shapes, bytes);
  // Activations: a vector per projection output, plus the step input.
  std::vector<float *> ys(count), refs(count);
  float *x0;
  CK(cudaMalloc(&x0, kMaxK * 4));
  std::vector<float> hx(kMaxK);
  for (int i = 0; i < kMaxK; ++i) hx[i] = std::sin(0.37f * i);
  CK(cudaMemcpy(x0, hx.data(), kMaxK * 4, cudaMemcpyHostToDevice));
  std::vector<Proj> projs(count);
  size_t off = 0;
  for (int p = 0; p < count; ++p) {
    CK(cudaMalloc(&ys[p], std::max(shapes[p].n, kMaxK) * 4));
    CK(cudaMalloc(&refs[p], std::max(shapes[p].n, kMaxK) * 4));
    CK(cudaMemset(ys[p], 0, std::max(shapes[p].n, kMaxK) * 4));
    projs[p] = {wAll + off, p ? ys[p - 1] : x0, ys[p], shapes[p].n, shapes[p].k, shapes[p].delay,
                shapes[p].norm};
    off += (size_t)shapes[p].n * shapes[p].k;
  }
  Proj *dProjs;
  CK(cudaMalloc(&dProjs, count * sizeof(Proj)));
  CK(cudaMemcpy(dProjs, projs.data(), count * sizeof(Proj), cudaMemcpyHostToDevice));
  unsigned *counters;
  CK(cudaMalloc(&counters, count * 4));
  CK(cudaMemset(counters, 0, count * 4));
  const int smemBytes = slots * slotBytes;
  CK(cudaFuncSetAttribute(step, cudaFuncAttributeMaxDynamicSharedMemorySize, smemBytes));

  // Correctness: each projection against a plain GEMV of the input it saw.
  auto check = [&](const char *what, int roundX) {
  for (int p = 0; p < count; ++p)
    gemv<<<(shapes[p].n + 3) / 4, 128>>>(projs[p].w, p ? ys[p - 1] : x0, refs[p], shapes[p].n,
                                         shapes[p].k, shapes[p].norm, roundX);
  CK(cudaDeviceSynchronize());
  double worst = 0;
  for (int p = 0; p < count; ++p) {
    std::vector<float> a(shapes[p].n), r(shapes[p].n);
    CK(cudaMemcpy(a.data(), ys[p], shapes[p].n * 4, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(r.data(), refs[p], shapes[p].n * 4, cudaMemcpyDeviceToHost));
    double mx = 1e-30, d = 0;
    for (int i = 0; i < shapes[p].n; ++i) {
      mx = std::max(mx, (double)std::fabs(r[i]));
      d = std::max(d, (double)std::fabs(a[i] - r[i]));
      if (!std::isfinite(a[i])) d = INFINITY;
    }
    worst = std::max(worst, d / mx);
  }
  std::printf("check %s: worst relative error over %d projections %.2e (%s)\n", what, count,
              worst, worst < 1e-4 ? "ok" : "FAIL");
  };
  unsigned epoch = 0;
  step<<<sms, kThreads, smemBytes>>>(dProjs, count, counters, epoch, 1, slots, slotBytes, flat, xbf,
                                     nullptr, skip, direct);
  epoch += 1;
  CK(cudaGetLastError());
  CK(cudaDeviceSynchronize());
  check("persistent", xbf);

  // Floors: a plain read of the weights, and a device copy.
  cudaEvent_t a, z;
  CK(cudaEventCreate(&a));
  CK(cudaEventCreate(&z));
  float ms;
  void *c0, *c1;
  size_t cb = 1ull << 30;
  CK(cudaMalloc(&c0, cb));
  CK(cudaMalloc(&c1, cb));
  std::vector<float> copies;
  for (int i = 0; i < 5; ++i) {
    CK(cudaEventRecord(a));
    CK(cudaMemcpyAsync(c1, c0, cb, cudaMemcpyDeviceToDevice));
    CK(cudaEventRecord(z));
    CK(cudaEventSynchronize(z));
    CK(cudaEventElapsedTime(&ms, a, z));
    copies.push_back(ms);
  }
  std::sort(copies.begin(), copies.end());
  double copyBw = 2.0 * cb / (copies[copies.size() / 2] * 1e-3);
  const double readMs = plainReadMs(wAll, bytes, sms);
  std::printf("weights %.3f GB; plain read %.3f ms (%.0f GB/s); copy %.0f GB/s -> floor %.3f ms\n",
              bytes / 1e9, readMs, bytes / (readMs * 1e-3) / 1e9, copyBw / 1e9,
              bytes / copyBw * 1e3);

  // The chain of kernels, captured in a graph of one step.
  cudaStream_t stream;
  CK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  cudaGraph_t g;
  cudaGraphExec_t exec;
  CK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeRelaxed));
  std::vector<float *> normed(count);
  for (int p = 0; p < count; ++p) {
    const Proj &pr = projs[p];
    const float *x = pr.x;
    if (pr.norm) {
      CK(cudaMalloc(&normed[p], kMaxK * 4));
      launchPdlOn(stream, normPdl, dim3(1), dim3(256), x, normed[p], pr.k);
      x = normed[p];
    }
    launchPdlOn(stream, gemvPdl, dim3((pr.n + 3) / 4), dim3(128), pr.w, x, pr.y, pr.n, pr.k);
    if (pr.delayAfter)
      launchPdlOn(stream, delay, dim3(1), dim3(32), pr.delayAfter);
  }
  CK(cudaStreamEndCapture(stream, &g));
  CK(cudaGraphInstantiate(&exec, g, 0));
  CK(cudaGraphLaunch(exec, stream));
  CK(cudaStreamSynchronize(stream));
  check("chain of kernels", 0);
  for (int rep = 0; rep < 3; ++rep) {
    CK(cudaEventRecord(a, stream));
    for (int l = 0; l < launches; ++l)
      CK(cudaGraphLaunch(exec, stream));
    CK(cudaEventRecord(z, stream));
    CK(cudaEventSynchronize(z));
    CK(cudaEventElapsedTime(&ms, a, z));
    double perStep = ms / launches;
    std::printf("chain of kernels (kvc today, in a graph): attention %d ns: %.3f ms/step "
                "(%.0f%% of the plain read)\n", attNs, perStep, 100.0 * readMs / perStep);
  }

  // Timing: back-to-back launches of `stepsPerLaunch` steps each.
  for (int rep = 0; rep < 3; ++rep) {
    CK(cudaEventRecord(a));
    for (int l = 0; l < launches; ++l) {
      step<<<sms, kThreads, smemBytes>>>(dProjs, count, counters, epoch, stepsPerLaunch, slots,
                                         slotBytes, flat, xbf, nullptr, skip, direct);
      epoch += stepsPerLaunch;
    }
    CK(cudaEventRecord(z));
    CK(cudaEventSynchronize(z));
    CK(cudaGetLastError());
    CK(cudaEventElapsedTime(&ms, a, z));
    double perStep = ms / (launches * stepsPerLaunch);
    std::printf("persistent%s: %d slots x %d KB, attention %d ns, %d steps/launch: %.3f ms/step "
                "(%.0f GB/s, %.0f%% of the plain read)\n",
                direct ? " (direct)" : flat ? " (flat)" : xbf ? " (x bf16)" : "", slots, slotKb,
                attNs, stepsPerLaunch, perStep, bytes / (perStep * 1e-3) / 1e9,
                100.0 * readMs / perStep);
  }
  if (stats) {
    const size_t words = (size_t)sms * kStats + count * 4;
    std::vector<unsigned long long> h(words, 0);
    for (int p = 0; p < count; ++p)
      h[sms * kStats + p * 4] = h[sms * kStats + p * 4 + 2] = ~0ull;
    unsigned long long *d;
    CK(cudaMalloc(&d, words * 8));
    CK(cudaMemcpy(d, h.data(), words * 8, cudaMemcpyHostToDevice));
    step<<<sms, kThreads, smemBytes>>>(dProjs, count, counters, epoch, stepsPerLaunch, slots,
                                       slotBytes, flat, xbf, d, skip, direct);
    epoch += stepsPerLaunch;
    CK(cudaDeviceSynchronize());
    CK(cudaMemcpy(h.data(), d, words * 8, cudaMemcpyDeviceToHost));
    const char *names[kStats] = {"producer waits for an empty slot", "waits for the input",
                                 "waits for a full slot", "prologue (x, norm)"};
    for (int i = 0; i < kStats; ++i) {
      double sum = 0, mx = 0;
      for (int b = 0; b < sms; ++b) {
        sum += h[b * kStats + i];
        mx = std::max(mx, (double)h[b * kStats + i]);
      }
      std::printf("stats: %-34s mean %.1f us/step, max block %.1f\n", names[i],
                  sum / sms / stepsPerLaunch / 1e3, mx / stepsPerLaunch / 1e3);
    }
    // Per kind of projection (qkv, o, gate/up, down) over the 22 layers of step 0.
    const char *kinds[4] = {"qkv", "o", "gate/up", "down"};
    for (int kind = 0; kind < 4; ++kind) {
      double doneSpread = 0, inSpread = 0, sync = 0, span = 0;
      int m = 0;
      for (int p = kind; p + 1 < count; p += 4, ++m) {
        const unsigned long long *q = &h[sms * kStats + p * 4];
        doneSpread += q[3] - q[2];
        inSpread += q[1] - q[0];
        span += q[3] - q[0];
        sync += (double)h[sms * kStats + (p + 1) * 4 + 0] - q[3];
      }
      std::printf("stats: %-8s first input -> last done %.2f us, done spread %.2f, input spread "
                  "%.2f, last done -> next's first input %.2f\n", kinds[kind], span / m / 1e3,
                  doneSpread / m / 1e3, inSpread / m / 1e3, sync / m / 1e3);
    }
  }
  return 0;
}
