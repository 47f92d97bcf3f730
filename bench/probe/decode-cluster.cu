// Probe (not part of kvc): can a batch-1 decode (Hq 32, Hkv 8, D 128, bf16)
// over a 4096-row cache get under 12 us if each split block keeps more of
// its keys and values in flight? A block streams its split through a ring
// of `stages` shared-memory tiles of `rows` rows, filled by bulk copies
// (cp.async.bulk) that complete on mbarriers, so that it keeps stages x
// rows x 512 bytes in flight instead of one tile; the math is on CUDA cores
// (warp w takes query row w, lane l key row l of a 32-row slice). Each kv
// head is a cluster of S blocks (non-portable above 8) that merges its
// splits through distributed shared memory and writes the output: one
// kernel, no combine. Timed as kvc's bench times (a CUDA graph of 16 calls
// over 8 caches, 134 MB against a 50 MB L2), next to a plain read of the
// same bytes. Checked against a float reference on the host first.
//   nvcc -O3 -gencode arch=compute_90a,code=sm_90a decode-cluster.cu
//   ./a.out [--len 4096] [--splits 16] [--rows 32] [--stages 4] [--math 1]
//           [--cluster 1] [--heads 8]
// Other shapes: -DKD=64 -DKG=8 sets head dim and group at compile time;
// --heads is batch x kv heads (TinyLlama at B=16: -DKD=64 -DKG=8 --heads 64).
// --cluster 0 launches the splits without clusters: each writes a partial
// and a combine kernel (a block per query row) merges them.
// --math 0 only reads the tiles (the output is then wrong): the floor of
// this data movement and merge, whatever does the math.
#include "probe-common.cuh"

#include <cooperative_groups.h>
#include <cmath>
#include <cstring>

namespace cg = cooperative_groups;

#ifndef KD
#define KD 128
#endif
#ifndef KG
#define KG 4
#endif
// Head dim, query rows per kv head (one warp each), value columns per lane.
constexpr int kD = KD, kG = KG, kCols = kD / 32;
static_assert(kD % 64 == 0 && kD <= 256, "head dim: 64, 128, 192 or 256");

struct Args {
  int len = 4096, splits = 16, rows = 32, stages = 4, math = 1, cluster = 1, heads = 8;
};

// q [Hkv*G][D] bf16, k/v [Hkv][len][D] bf16, out [Hkv*G][D] bf16.
__global__ void __launch_bounds__(32 * kG)
    decodeCluster(const __nv_bfloat16 *q, const __nv_bfloat16 *k,
                  const __nv_bfloat16 *v, __nv_bfloat16 *out, float *partials,
                  int len, int rows, int stages, int math, float scale) {
  extern __shared__ __align__(128) unsigned char dyn[];
  cg::cluster_group cluster = cg::this_cluster();
  // Without a cluster (`partials`) the splits are blockIdx.x of gridDim.x.
  const int split = partials ? blockIdx.x : cluster.block_rank();
  const int splits = partials ? gridDim.x : cluster.num_blocks();
  const int head = blockIdx.y, warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int splitLen = len / splits, start = split * splitLen;
  const int tiles = splitLen / rows;
  const size_t tileBytes = (size_t)rows * kD * 2;
  unsigned long long *full = reinterpret_cast<unsigned long long *>(dyn);
  __nv_bfloat16 *ring = reinterpret_cast<__nv_bfloat16 *>(dyn + 256);
  float *qs = reinterpret_cast<float *>(dyn + 256 + 2 * tileBytes * stages);
  float *os = qs + kG * kD; // [G][D]
  float *ml = os + kG * kD; // [G][2]
  const __nv_bfloat16 *kh = k + ((size_t)head * len + start) * kD;
  const __nv_bfloat16 *vh = v + ((size_t)head * len + start) * kD;
  if (threadIdx.x == 0) {
    for (int s = 0; s < stages; ++s)
      mbarInit(smem(&full[s]), 1);
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
    for (int t = 0; t < stages && t < tiles; ++t) {
      mbarExpect(smem(&full[t]), 2 * tileBytes);
      bulkCopy(smem(ring + (size_t)2 * t * rows * kD), kh + (size_t)t * rows * kD, tileBytes,
               smem(&full[t]));
      bulkCopy(smem(ring + (size_t)(2 * t + 1) * rows * kD), vh + (size_t)t * rows * kD,
               tileBytes, smem(&full[t]));
    }
  }
  for (int i = threadIdx.x; i < kG * kD; i += blockDim.x)
    qs[i] = __bfloat162float(q[(size_t)head * kG * kD + i]) * scale * 1.44269504f;
  __syncthreads();
  float m = -1e30f, l = 0, acc[kCols] = {};
  const float *qw = qs + warp * kD;
  for (int t = 0; t < tiles; ++t) {
    const int slot = t % stages;
    mbarWait(smem(&full[slot]), (t / stages) & 1);
    const __nv_bfloat16 *kt = ring + (size_t)2 * slot * rows * kD;
    const __nv_bfloat16 *vt = kt + (size_t)rows * kD;
    if (!math) {
      // Only read the tile: each thread sums its 16-byte words (the floor of
      // any math on it).
      const uint4 *words = reinterpret_cast<const uint4 *>(kt);
      for (int i = threadIdx.x; i < 2 * rows * kD / 8; i += blockDim.x) {
        uint4 x = words[i];
        acc[0] += __uint_as_float(x.x ^ x.y ^ x.z ^ x.w);
      }
    }
    for (int r0 = 0; math && r0 < rows; r0 += 32) {
      // S: lane l dots key row r0 + l with query row `warp` (the words
      // rotated by lane, so that the 32 rows fall in 32 banks).
      const __nv_bfloat162 *kr =
          reinterpret_cast<const __nv_bfloat162 *>(kt + (size_t)(r0 + lane) * kD);
      float s = 0;
#pragma unroll 16
      for (int j = 0; j < kD / 2; ++j) {
        int w = (j + lane) % (kD / 2);
        float2 kk = __bfloat1622float2(kr[w]);
        s += kk.x * qw[2 * w] + kk.y * qw[2 * w + 1];
      }
      float mx = s;
      for (int o = 16; o; o /= 2)
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
      float mNew = fmaxf(m, mx), alpha = exp2f(m - mNew), p = exp2f(s - mNew);
      float ps = p;
      for (int o = 16; o; o /= 2)
        ps += __shfl_xor_sync(0xffffffffu, ps, o);
      l = l * alpha + ps;
      m = mNew;
#pragma unroll
      for (int e = 0; e < kCols; ++e)
        acc[e] *= alpha;
      // O: lane l owns columns kCols l .. kCols l + kCols - 1.
#pragma unroll 8
      for (int r = 0; r < 32; ++r) {
        float pr = __shfl_sync(0xffffffffu, p, r);
        const __nv_bfloat162 *vr =
            reinterpret_cast<const __nv_bfloat162 *>(vt + (size_t)(r0 + r) * kD + kCols * lane);
#pragma unroll
        for (int e = 0; e < kCols / 2; ++e) {
          float2 a = __bfloat1622float2(vr[e]);
          acc[2 * e] += pr * a.x;
          acc[2 * e + 1] += pr * a.y;
        }
      }
    }
    __syncthreads(); // the slot is read: refill it
    if (threadIdx.x == 0 && t + stages < tiles) {
      const int n = t + stages;
      mbarExpect(smem(&full[slot]), 2 * tileBytes);
      bulkCopy(smem(ring + (size_t)2 * slot * rows * kD), kh + (size_t)n * rows * kD, tileBytes,
               smem(&full[slot]));
      bulkCopy(smem(ring + (size_t)(2 * slot + 1) * rows * kD), vh + (size_t)n * rows * kD,
               tileBytes, smem(&full[slot]));
    }
  }
  for (int e = 0; e < kCols; ++e)
    os[warp * kD + kCols * lane + e] = acc[e];
  if (lane == 0) {
    ml[2 * warp] = m;
    ml[2 * warp + 1] = l;
  }
  if (partials) {
    // (m, l, acc[D]) per query row of this split, for the combine kernel.
    __syncthreads();
    float *p = partials + ((size_t)head * splits + split) * kG * (kD + 2);
    for (int i = threadIdx.x; i < kG * kD; i += blockDim.x)
      p[(i / kD) * (kD + 2) + 2 + i % kD] = os[i];
    if (threadIdx.x < 2 * kG)
      p[(threadIdx.x / 2) * (kD + 2) + threadIdx.x % 2] = ml[threadIdx.x];
    return;
  }
  cluster.sync();
  // Block `split` merges outputs split, split + S, ... of the G x D.
  for (int i = split * blockDim.x + threadIdx.x; i < kG * kD; i += splits * blockDim.x) {
    const int row = i / kD;
    float mAll = -1e30f;
    for (int s = 0; s < splits; ++s)
      mAll = fmaxf(mAll, cluster.map_shared_rank(ml, s)[2 * row]);
    float sum = 0, o = 0;
    for (int s = 0; s < splits; ++s) {
      const float *r = cluster.map_shared_rank(ml, s);
      const float w = exp2f(r[2 * row] - mAll);
      sum += r[2 * row + 1] * w;
      o += cluster.map_shared_rank(os, s)[i] * w;
    }
    out[(size_t)head * kG * kD + i] = __float2bfloat16(o / sum);
  }
  cluster.sync();
}

// One block per query row (head * G + g): merges the splits' partials.
__global__ void __launch_bounds__(128)
    combine(const float *partials, __nv_bfloat16 *out, int splits) {
  const int row = blockIdx.x, head = row / kG, g = row % kG;
  if (threadIdx.x >= kD)
    return;
  auto at = [&](int s) {
    return partials + (((size_t)head * splits + s) * kG + g) * (kD + 2);
  };
  float mAll = -1e30f;
  for (int s = 0; s < splits; ++s)
    mAll = fmaxf(mAll, at(s)[0]);
  float sum = 0, o = 0;
  for (int s = 0; s < splits; ++s) {
    const float w = exp2f(at(s)[0] - mAll);
    sum += at(s)[1] * w;
    o += at(s)[2 + threadIdx.x] * w;
  }
  out[(size_t)row * kD + threadIdx.x] = __float2bfloat16(o / sum);
}

static size_t sharedBytes(const Args &a) {
  return 256 + 2 * (size_t)a.rows * kD * 2 * a.stages + (2 * kG * kD + 2 * kG) * 4;
}

static void launch(const Args &a, const __nv_bfloat16 *q, const __nv_bfloat16 *k,
                   const __nv_bfloat16 *v, __nv_bfloat16 *out, float *partials,
                   cudaStream_t stream) {
  cudaLaunchConfig_t config = {};
  config.gridDim = dim3(a.splits, a.heads, 1);
  config.blockDim = dim3(32 * kG, 1, 1);
  config.dynamicSmemBytes = sharedBytes(a);
  config.stream = stream;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeClusterDimension;
  attr[0].val.clusterDim.x = a.splits;
  attr[0].val.clusterDim.y = 1;
  attr[0].val.clusterDim.z = 1;
  config.attrs = attr;
  config.numAttrs = a.cluster ? 1 : 0;
  float *p = a.cluster ? nullptr : partials;
  CK(cudaLaunchKernelEx(&config, decodeCluster, q, k, v, out, p, a.len, a.rows, a.stages,
                        a.math, 1.0f / std::sqrt((float)kD)));
  if (!a.cluster)
    combine<<<a.heads * kG, 128, 0, stream>>>(partials, out, a.splits);
}

static float bf(__nv_bfloat16 x) { return __bfloat162float(x); }

int main(int argc, char **argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--len")) a.len = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--splits")) a.splits = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--rows")) a.rows = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--stages")) a.stages = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--math")) a.math = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--cluster")) a.cluster = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--heads")) a.heads = std::atoi(argv[i + 1]);
  }
  if (a.len % (a.splits * a.rows) || a.rows % 32) {
    std::fprintf(stderr, "len must be a multiple of splits x rows, rows of 32\n");
    return 1;
  }
  CK(cudaFuncSetAttribute(decodeCluster, cudaFuncAttributeNonPortableClusterSizeAllowed, 1));
  CK(cudaFuncSetAttribute(decodeCluster, cudaFuncAttributeMaxDynamicSharedMemorySize,
                          (int)sharedBytes(a)));
  const int caches = 8;
  const size_t cacheElems = (size_t)a.heads * a.len * kD, qElems = (size_t)a.heads * kG * kD;
  std::vector<__nv_bfloat16 *> ks(caches), vs(caches);
  __nv_bfloat16 *q, *out;
  float *partials;
  CK(cudaMalloc(&partials, (size_t)a.heads * a.splits * kG * (kD + 2) * 4));
  CK(cudaMalloc(&q, qElems * 2));
  CK(cudaMalloc(&out, qElems * 2));
  fill<<<256, 256>>>(q, qElems, 1.0f, 7);
  for (int c = 0; c < caches; ++c) {
    CK(cudaMalloc(&ks[c], cacheElems * 2));
    CK(cudaMalloc(&vs[c], cacheElems * 2));
    fill<<<1024, 256>>>(ks[c], cacheElems, 1.0f, 100 + c);
    fill<<<1024, 256>>>(vs[c], cacheElems, 1.0f, 200 + c);
  }
  cudaStream_t stream;
  CK(cudaStreamCreate(&stream));
  launch(a, q, ks[0], vs[0], out, partials, stream);
  CK(cudaStreamSynchronize(stream));
  // Float reference of cache 0.
  std::vector<__nv_bfloat16> hq(qElems), hk(cacheElems), hv(cacheElems), ho(qElems);
  CK(cudaMemcpy(hq.data(), q, qElems * 2, cudaMemcpyDeviceToHost));
  CK(cudaMemcpy(hk.data(), ks[0], cacheElems * 2, cudaMemcpyDeviceToHost));
  CK(cudaMemcpy(hv.data(), vs[0], cacheElems * 2, cudaMemcpyDeviceToHost));
  CK(cudaMemcpy(ho.data(), out, qElems * 2, cudaMemcpyDeviceToHost));
  double worst = 0;
  for (int h = 0; h < a.heads; ++h)
    for (int g = 0; g < kG; ++g) {
      const __nv_bfloat16 *qr = &hq[((size_t)h * kG + g) * kD];
      std::vector<double> s(a.len), o(kD, 0);
      double mx = -1e300, sum = 0, norm = 0, err = 0;
      for (int r = 0; r < a.len; ++r) {
        double d = 0;
        for (int j = 0; j < kD; ++j)
          d += bf(qr[j]) * bf(hk[((size_t)h * a.len + r) * kD + j]);
        s[r] = d / std::sqrt((double)kD);
        mx = std::max(mx, s[r]);
      }
      for (int r = 0; r < a.len; ++r) {
        double p = std::exp(s[r] - mx);
        sum += p;
        for (int j = 0; j < kD; ++j)
          o[j] += p * bf(hv[((size_t)h * a.len + r) * kD + j]);
      }
      for (int j = 0; j < kD; ++j) {
        double ref = o[j] / sum, got = bf(ho[((size_t)h * kG + g) * kD + j]);
        norm = std::max(norm, std::fabs(ref));
        err = std::max(err, std::fabs(ref - got));
      }
      worst = std::max(worst, err / norm);
    }
  // Graphs of 16 calls over the 8 caches, and of 16 plain reads of them.
  auto timeGraph = [&](auto body) {
    cudaGraph_t graph;
    cudaGraphExec_t exec;
    CK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
    for (int i = 0; i < 16; ++i)
      body(i % caches);
    CK(cudaStreamEndCapture(stream, &graph));
    CK(cudaGraphInstantiate(&exec, graph, 0));
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    std::vector<float> ts;
    for (int rep = 0; rep < 60; ++rep) {
      CK(cudaEventRecord(e0, stream));
      CK(cudaGraphLaunch(exec, stream));
      CK(cudaEventRecord(e1, stream));
      CK(cudaEventSynchronize(e1));
      float ms;
      CK(cudaEventElapsedTime(&ms, e0, e1));
      if (rep >= 10) ts.push_back(ms * 1000 / 16);
    }
    std::sort(ts.begin(), ts.end());
    return ts[ts.size() / 2];
  };
  unsigned *sink;
  CK(cudaMalloc(&sink, 4));
  float us = timeGraph([&](int c) { launch(a, q, ks[c], vs[c], out, partials, stream); });
  float read = timeGraph([&](int c) {
    readAll<<<528, 512, 0, stream>>>(reinterpret_cast<const uint4 *>(ks[c]), cacheElems / 8, sink);
    readAll<<<528, 512, 0, stream>>>(reinterpret_cast<const uint4 *>(vs[c]), cacheElems / 8, sink);
  });
  std::printf("D %d G %d heads %d len %d splits %d cluster %d rows %d stages %d math %d smem %zu B: %.2f us (rel err %.1e); "
              "plain read of k and v (two kernels) %.2f us\n",
              kD, kG, a.heads, a.len, a.splits, a.cluster, a.rows, a.stages, a.math, sharedBytes(a), us, worst, read);
  return 0;
}
