// Pieces the persistent-step probes share (not part of kvc): CUDA error
// checks, the mbarrier / bulk-copy / acquire instructions as inline PTX, the
// global timer, random bf16 weights and a plain read of them.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

#define CK(x)                                                                  \
  do {                                                                         \
    cudaError_t e = (x);                                                       \
    if (e != cudaSuccess) {                                                    \
      std::fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #x,           \
                   cudaGetErrorString(e));                                     \
      std::exit(1);                                                            \
    }                                                                          \
  } while (0)

__device__ __forceinline__ unsigned smem(const void *p) {
  return static_cast<unsigned>(__cvta_generic_to_shared(p));
}
__device__ __forceinline__ void mbarInit(unsigned bar, unsigned count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(bar), "r"(count) : "memory");
}
__device__ __forceinline__ void mbarWait(unsigned bar, unsigned parity) {
  asm volatile("{ .reg .pred p; W: mbarrier.try_wait.parity.shared::cta.b64 p, [%0], %1; @!p bra W; }"
               ::"r"(bar), "r"(parity) : "memory");
}
__device__ __forceinline__ void mbarArrive(unsigned bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(bar) : "memory");
}
__device__ __forceinline__ void mbarExpect(unsigned bar, unsigned bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(bar), "r"(bytes) : "memory");
}
__device__ __forceinline__ void bulkCopy(unsigned dst, const void *src, unsigned bytes, unsigned bar) {
  asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];"
               ::"r"(dst), "l"(src), "r"(bytes), "r"(bar) : "memory");
}
__device__ __forceinline__ unsigned ldAcquire(const unsigned *p) {
  unsigned v;
  asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
  return v;
}
__device__ __forceinline__ unsigned long long now() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %globaltimer;" : "=l"(t));
  return t;
}
// Thread 0 sets up a ring's full barriers (one arrival a phase: the
// producer's) and empty barriers (one a consumer warp); then every thread
// of the block waits for it.
__device__ inline void initRing(unsigned long long *full, unsigned long long *empty, int slots,
                                int consumerWarps) {
  if (threadIdx.x == 0) {
    for (int s = 0; s < slots; ++s) {
      mbarInit(smem(&full[s]), 1);
      mbarInit(smem(&empty[s]), consumerWarps);
    }
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
  }
  __syncthreads();
}

// Consumer warps 0 to W - 1 (named barrier 1): xs[0, k) <- x[0, k) from L2
// (the sum of C vectors of k, one after another), RMS-normalized (eps
// 1e-5) where `norm`; `red` holds W floats. The caller synchronizes the
// consumers before reading xs.
template <int W, int C = 1>
__device__ inline void loadInput(const float *x, float *xs, int k, bool norm, float *red) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  float ss = 0;
  for (int i = threadIdx.x; i < k; i += W * 32) {
    float v = 0;
#pragma unroll
    for (int c = 0; c < C; ++c)
      v += __ldcg(x + c * k + i);
    xs[i] = v;
    ss += v * v;
  }
  if (!norm)
    return;
#pragma unroll
  for (int o = 16; o; o /= 2)
    ss += __shfl_xor_sync(0xffffffffu, ss, o);
  if (lane == 0)
    red[warp] = ss;
  asm volatile("bar.sync 1, %0;" ::"n"(W * 32) : "memory");
  float total = 0;
  for (int i = 0; i < W; ++i)
    total += red[i];
  const float inv = rsqrtf(total / k + 1e-5f);
  for (int i = threadIdx.x; i < k; i += W * 32)
    xs[i] *= inv;
}

__global__ void fill(__nv_bfloat16 *w, size_t n, float scale, unsigned seed) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
       i += (size_t)gridDim.x * blockDim.x) {
    unsigned h = (unsigned)i * 2654435761u ^ seed;
    h ^= h >> 13; h *= 0x5bd1e995u; h ^= h >> 15;
    w[i] = __float2bfloat16(((h & 0xffff) / 32768.0f - 1.0f) * scale);
  }
}

__global__ void readAll(const uint4 *p, size_t n, unsigned *sink) {
  uint4 acc = {0, 0, 0, 0};
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
       i += (size_t)gridDim.x * blockDim.x) {
    uint4 v = __ldcs(p + i);
    acc.x ^= v.x; acc.y ^= v.y; acc.z ^= v.z; acc.w ^= v.w;
  }
  if ((acc.x ^ acc.y ^ acc.z ^ acc.w) == 0x12345678u) *sink = 1;
}

// A TinyLlama decode step's projections in order: 22 layers of qkv
// 2560x2048, o 2048x2048, gate/up 11264x2048, down 2048x5632, then lm_head
// 32000x2048; `delay` ns of modeled attention after each qkv; `norm`: the
// input is RMS-normalized first.
struct Shape {
  int n, k, delay, norm;
};
inline std::vector<Shape> tinyLlamaStep(int attentionNs) {
  std::vector<Shape> shapes;
  for (int l = 0; l < 22; ++l) {
    shapes.push_back({2560, 2048, attentionNs, 1});
    shapes.push_back({2048, 2048, 0, 0});
    shapes.push_back({11264, 2048, 0, 1});
    shapes.push_back({2048, 5632, 0, 0});
  }
  shapes.push_back({32000, 2048, 0, 1});
  return shapes;
}

// All the step's weights in one allocation (each projection 16-byte
// aligned, as k * 2 is), random; `bytes` is set to their size.
inline __nv_bfloat16 *randomWeights(const std::vector<Shape> &shapes, size_t &bytes) {
  bytes = 0;
  for (const Shape &s : shapes)
    bytes += (size_t)s.n * s.k * 2;
  __nv_bfloat16 *w;
  CK(cudaMalloc(&w, bytes));
  fill<<<1024, 256>>>(w, bytes / 2, 1.7f / sqrtf(2048.0f), 7);
  return w;
}

// Median ms of 10 plain reads of `bytes` at `p`.
inline double plainReadMs(const void *p, size_t bytes, int sms) {
  unsigned *sink;
  CK(cudaMalloc(&sink, 4));
  cudaEvent_t a, z;
  CK(cudaEventCreate(&a));
  CK(cudaEventCreate(&z));
  std::vector<float> reads;
  for (int i = 0; i < 10; ++i) {
    float ms;
    CK(cudaEventRecord(a));
    readAll<<<sms * 8, 512>>>(reinterpret_cast<const uint4 *>(p), bytes / 16, sink);
    CK(cudaEventRecord(z));
    CK(cudaEventSynchronize(z));
    CK(cudaEventElapsedTime(&ms, a, z));
    reads.push_back(ms);
  }
  std::sort(reads.begin(), reads.end());
  CK(cudaFree(sink));
  return reads[reads.size() / 2];
}
