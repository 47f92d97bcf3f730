// Probe (not part of kvc): a persistent TinyLlama decode step at batch 1 in
// which half of the projections need no grid-wide wait.
//
// persistent-step.cu waits for the whole grid before every projection, and
// each wait and its prologue (x from L2, the norm) cost ~0.1 ms a step on
// top of the stream (bench/RESULTS.md). Here the projections that read a
// vector the block itself produced are split along k instead of n:
// - qkv (row split, needs RMSNorm(h), so waits for h): block b computes the
//   q rows of its slice of the 2048 attention outputs, and a share of k/v.
// - o (k split): attention of a q row needs only that row here (the
//   modeled attention is a delay and the identity), so block b multiplies
//   its own q values by its rows of W_o^T and adds the 2048 partial sums
//   into the residual h with float4 atomics. No wait for the grid.
// - gate/up (row split, waits for h): block b computes gate and up for its
//   slice j of the 5632 intermediate features, so SiLU(gate_j) * up_j is
//   local.
// - down (k split): W_down^T rows of the block's slice, atomics into h.
// - lm_head (row split) after the last layer.
// So a layer has two grid-wide waits (h complete), not four. A k split
// projection adds into h only after every block has read h for the
// projection before it (a `loaded` counter, almost always already there).
// Weights of k split projections are stored transposed (rows of n = 2048),
// so every projection's block slice is contiguous rows of 4 KB, streamed
// through a shared-memory ring by one producer thread as in
// persistent-step.cu. A k split consumer thread owns 8 output columns and
// needs no shuffles: one 16-byte load and 8 FMAs a row.
//
// Checked against plain kernels (final h and logits of one step).
//   nvcc -O3 -gencode arch=compute_90a,code=sm_90a -o dataflow dataflow-step.cu
//   ./dataflow [--att-ns NS] [--slots S] [--slot-kb KB] [--steps-per-launch N] [--skip BITS]
//              [--claim]
// --claim: row split projections' rows claimed by the blocks as they stream
// (a block's k split rows follow its claims), not fixed slices.
#include "probe-common.cuh"

#include <cmath>
#include <cstring>

constexpr int kConsumerWarps = 8;
constexpr int kThreads = (kConsumerWarps + 1) * 32;
constexpr int kMaxSlots = 8;
constexpr int kHidden = 2048, kKv = 512, kInter = 5632, kVocab = 32000, kLayers = 22;
constexpr int kRowBytes = kHidden * 2; // every streamed row: 2048 bf16
constexpr int kCap = 256;       // most rows of q or of the intermediate a block takes
constexpr int kMaxChunks = 64; // most chunks of them
constexpr int kProjs = kLayers * 4 + 1;
enum { kQkv, kO, kGateUp, kDown };

// The step's weights, in streaming order: per layer W_qkv [2560][2048],
// W_o^T [2048][2048], W_gate/up [11264][2048], W_down^T [5632][2048]; then
// W_lm [32000][2048].
constexpr size_t kLayerRows = (kHidden + kKv) + kHidden + 2 * kInter + kInter;
__host__ __device__ inline const __nv_bfloat16 *proj(const __nv_bfloat16 *w, int layer, int kind) {
  size_t row = (size_t)layer * kLayerRows; // lm_head: layer kLayers
  if (layer < kLayers && kind >= kO)
    row += kHidden + kKv;
  if (layer < kLayers && kind >= kGateUp)
    row += kHidden;
  if (layer < kLayers && kind >= kDown)
    row += 2 * kInter;
  return w + row * kHidden;
}

__host__ __device__ inline int split(int n, int b, int G) { return (int)((long long)n * b / G); }

__device__ __forceinline__ void consumersSync() {
  asm volatile("bar.sync 1, %0;" ::"n"(kConsumerWarps * 32) : "memory");
}
__device__ __forceinline__ void waitCount(const unsigned *c, unsigned want) {
  while (ldAcquire(c) < want) {}
}
__device__ __forceinline__ void signal(unsigned *c) {
  __threadfence();
  atomicAdd(c, 1u);
}

// Where a block's rows of a projection come from. Static: its fixed slice,
// in chunks of a slot. Claimed (`--claim`): chunks taken from a counter per
// step and projection with an atomic add by the producer as it streams, so
// a block that runs ahead takes more rows and the grid finishes together.
// The next claim is issued as the current one is taken, so the producer
// does not wait for the atomic's round trip before each copy.
struct Rows {
  unsigned *ctr; // null: static
  int hi, chunk, next;
  __device__ Rows(unsigned *ctr, int n, int chunk, int b, int G)
      : ctr(ctr), hi(ctr ? n : split(n, b + 1, G)), chunk(chunk),
        next(ctr ? (int)atomicAdd(ctr, (unsigned)chunk) : split(n, b, G)) {}
  __device__ int take(int &first) {
    first = next;
    if (first >= hi)
      return 0; // the counter only grows: every later claim is past the end too
    next = ctr ? (int)atomicAdd(ctr, (unsigned)chunk) : next + chunk;
    return min(chunk, hi - first);
  }
};

// `done[p]`: blocks whose atomics of k split projection p are in h;
// `loaded[p]`: blocks that have read h for row split projection p. Both grow
// by G a step; step e of the run is complete at G * (e + 1). `claims`: two
// counters per step and projection (null: static slices).
template <int Copies>
__global__ void __launch_bounds__(kThreads, 1)
step(const __nv_bfloat16 *w, float *h, float *logits, unsigned *done, unsigned *loaded,
     unsigned *claims, unsigned epoch0, int steps, int slots, int slotBytes,
     int attNs, unsigned long long *stats, int skip) {
  extern __shared__ __align__(128) unsigned char shm[];
  __shared__ __align__(8) unsigned long long full[kMaxSlots], empty[kMaxSlots];
  __shared__ __align__(16) float xs[kHidden];
  __shared__ float red[kConsumerWarps], mine[2][kCap], act[kCap];
  // What the producer put in a slot: rows of the weight from `lo` (0 rows:
  // the projection ends here), their index in the block's sequence, part.
  __shared__ int metaLo[kMaxSlots], metaRows[kMaxSlots], metaLocal[kMaxSlots],
      metaPart[kMaxSlots];
  __shared__ int2 listQ[kMaxChunks], listJ[kMaxChunks]; // claimed q and j chunks
  const int G = gridDim.x, b = blockIdx.x;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int perSlot = slotBytes / kRowBytes;
  initRing(full, empty, slots, kConsumerWarps);
  if (warp == kConsumerWarps) {
    if (lane)
      return;
    int slot = 0, nq = 0, nj = 0;
    unsigned parity = 1;
    auto push = [&](const __nv_bfloat16 *base, int row, int rows, int lo, int local, int part) {
      const unsigned long long t0 = stats ? now() : 0;
      mbarWait(smem(&empty[slot]), parity);
      if (stats)
        stats[b * 3 + 0] += now() - t0;
      metaLo[slot] = lo, metaRows[slot] = rows, metaLocal[slot] = local, metaPart[slot] = part;
      if (rows) {
        mbarExpect(smem(&full[slot]), rows * kRowBytes);
        bulkCopy(smem(shm + slot * slotBytes), base + (size_t)row * kHidden, rows * kRowBytes,
                 smem(&full[slot]));
      } else {
        mbarArrive(smem(&full[slot]));
      }
      if (++slot == slots)
        slot = 0, parity ^= 1;
    };
    for (int st = 0; st < steps; ++st)
      for (int p = 0; p < kProjs; ++p) {
        const int kind = p == kProjs - 1 ? 4 : p % 4;
        const __nv_bfloat16 *base = proj(w, p / 4, kind);
        unsigned *ctr = claims ? claims + ((size_t)(epoch0 + st) * kProjs + p) * 2 : nullptr;
        if (kind == kO || kind == kDown) {
          // W^T rows of the block's own q values or intermediate features.
          const int2 *list = kind == kO ? listQ : listJ;
          for (int c = 0, local = 0, n = kind == kO ? nq : nj; c < n; local += list[c++].y)
            push(base, list[c].x, list[c].y, list[c].x, local, 0);
        } else {
          // Part 0: q rows, gate with up, logits; part 1: k/v rows.
          const int n0 = kind == kQkv ? kHidden : kind == kGateUp ? kInter : kVocab;
          for (int part = 0; part < (kind == kQkv ? 2 : 1); ++part) {
            const int n = part ? kKv : n0;
            Rows src(ctr ? ctr + part : nullptr, n, perSlot, b, G);
            int first, rows, local = 0, chunks = 0;
            while ((rows = src.take(first))) {
              const bool kept = kind != 4 && !part; // rows whose results the block keeps
              if (kept && (local + rows > kCap || chunks == kMaxChunks))
                __trap(); // a claim taken must be computed: fail loudly instead
              const int row = part ? kHidden + first : first;
              push(base, row, rows, first, local, part);
              if (kind == kGateUp)
                push(base, kInter + first, rows, first, local, 1);
              if (kept)
                (kind == kQkv ? listQ : listJ)[chunks] = make_int2(first, rows);
              local += rows, ++chunks;
            }
            if (kind == kQkv && !part)
              nq = chunks;
            if (kind == kGateUp)
              nj = chunks;
          }
        }
        push(base, 0, 0, 0, 0, 0);
      }
    return;
  }
  int slot = 0;
  unsigned parity = 0;
  for (int st = 0; st < steps; ++st) {
    const unsigned e = epoch0 + st, target = (unsigned)G * (e + 1);
    for (int p = 0; p < kProjs; ++p) {
      const int kind = p == kProjs - 1 ? 4 : p % 4;
      const bool rowSplit = kind != kO && kind != kDown;
      const unsigned long long t0 = stats && threadIdx.x == 0 ? now() : 0;
      if (rowSplit) {
        // h complete: the k split projection before this one, everywhere.
        if (threadIdx.x == 0 && (p || e) && !(skip & 2))
          waitCount(&done[p ? p - 1 : kProjs - 2], p ? target : target - G);
        consumersSync();
        loadInput<kConsumerWarps, Copies>(h, xs, kHidden, true, red);
        consumersSync();
        if (threadIdx.x == 0)
          signal(&loaded[p]);
      } else if (kind == kO && attNs && threadIdx.x == 0) {
        const unsigned long long t = now() + attNs; // modeled attention
        while (now() < t) {}
      }
      if (stats && threadIdx.x == 0)
        stats[b * 3 + 1] += now() - t0;
      consumersSync();
      float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      int count = 0; // the block's rows of part 0 so far
      // A row split lane's 64 values of x, in registers for the projection
      // (-DX_IN_SMEM: read from shared memory with every row instead).
#ifndef X_IN_SMEM
      float xr[kHidden / 32];
      if (rowSplit)
#pragma unroll
        for (int j = 0; j < kHidden / 256; ++j) {
          *reinterpret_cast<float4 *>(xr + 8 * j) =
              *reinterpret_cast<const float4 *>(xs + lane * 8 + 256 * j);
          *reinterpret_cast<float4 *>(xr + 8 * j + 4) =
              *reinterpret_cast<const float4 *>(xs + lane * 8 + 256 * j + 4);
        }
#endif
      for (;;) {
        const unsigned long long tw = stats && threadIdx.x == 0 ? now() : 0;
        mbarWait(smem(&full[slot]), parity);
        if (stats && threadIdx.x == 0)
          stats[b * 3 + 2] += now() - tw;
        const int rows = metaRows[slot], lo = metaLo[slot], local = metaLocal[slot],
                  part = metaPart[slot];
        const __nv_bfloat16 *ws = reinterpret_cast<const __nv_bfloat16 *>(shm + slot * slotBytes);
        if (rowSplit) {
          // A warp a row: the dot product with RMSNorm(h).
          for (int row = warp; row < rows; row += kConsumerWarps) {
            const __nv_bfloat16 *wr = ws + row * kHidden;
            float a0 = 0, a1 = 0;
#pragma unroll
            for (int j = 0; j < kHidden / 256; ++j) {
              const int c = lane * 8 + 256 * j;
              const uint4 raw = *reinterpret_cast<const uint4 *>(wr + c);
              const __nv_bfloat162 *hw = reinterpret_cast<const __nv_bfloat162 *>(&raw);
#ifdef X_IN_SMEM
              const float4 xa = *reinterpret_cast<const float4 *>(xs + c),
                           xb = *reinterpret_cast<const float4 *>(xs + c + 4);
#else
              const float4 xa = *reinterpret_cast<const float4 *>(xr + 8 * j),
                           xb = *reinterpret_cast<const float4 *>(xr + 8 * j + 4);
#endif
              float2 f0 = __bfloat1622float2(hw[0]), f1 = __bfloat1622float2(hw[1]),
                     f2 = __bfloat1622float2(hw[2]), f3 = __bfloat1622float2(hw[3]);
              a0 = fmaf(f0.x, xa.x, a0); a1 = fmaf(f0.y, xa.y, a1);
              a0 = fmaf(f1.x, xa.z, a0); a1 = fmaf(f1.y, xa.w, a1);
              a0 = fmaf(f2.x, xb.x, a0); a1 = fmaf(f2.y, xb.y, a1);
              a0 = fmaf(f3.x, xb.z, a0); a1 = fmaf(f3.y, xb.w, a1);
            }
            a0 += a1;
#pragma unroll
            for (int o = 16; o; o /= 2)
              a0 += __shfl_xor_sync(0xffffffffu, a0, o);
            if (lane == 0) {
              if (kind == 4)
                logits[lo + row] = a0;
              else if (!(kind == kQkv && part == 1)) // k, v: the cache, not modeled
                mine[part][local + row] = a0;
            }
          }
        } else {
          // Thread t owns columns 8t..8t+7: W^T row times this block's value.
          const float *x = (kind == kO ? mine[0] : act) + local;
          for (int row = 0; row < rows; ++row) {
            const uint4 raw =
                *reinterpret_cast<const uint4 *>(ws + row * kHidden + threadIdx.x * 8);
            const __nv_bfloat162 *hw = reinterpret_cast<const __nv_bfloat162 *>(&raw);
            const float xv = x[row];
#pragma unroll
            for (int j = 0; j < 4; ++j) {
              const float2 f = __bfloat1622float2(hw[j]);
              acc[2 * j] = fmaf(f.x, xv, acc[2 * j]);
              acc[2 * j + 1] = fmaf(f.y, xv, acc[2 * j + 1]);
            }
          }
        }
        if (!part)
          count = max(count, local + rows);
        __syncwarp();
        if (lane == 0)
          mbarArrive(smem(&empty[slot]));
        if (++slot == slots)
          slot = 0, parity ^= 1;
        if (!rows)
          break;
      }
      consumersSync();
      if (kind == kGateUp)
        for (int j = threadIdx.x; j < count; j += kConsumerWarps * 32) {
          const float g = mine[0][j];
          act[j] = g / (1.f + __expf(-g)) * mine[1][j]; // SiLU(gate) * up
        }
      if (!rowSplit) {
        // Add into h once every block has read h for the projection before.
        if (threadIdx.x == 0 && !(skip & 2))
          waitCount(&loaded[p - 1], target);
        consumersSync();
        if (!(skip & 1)) {
          float4 *hc = reinterpret_cast<float4 *>(h + b % Copies * kHidden) + threadIdx.x * 2;
          atomicAdd(hc, make_float4(acc[0], acc[1], acc[2], acc[3]));
          atomicAdd(hc + 1, make_float4(acc[4], acc[5], acc[6], acc[7]));
        }
        consumersSync();
        if (threadIdx.x == 0)
          signal(&done[p]);
      }
      consumersSync();
    }
  }
}

// References, one plain kernel each.
__global__ void refNormGemv(const __nv_bfloat16 *w, const float *x, float *y, int n) {
  const int row = blockIdx.x * 4 + threadIdx.x / 32, lane = threadIdx.x % 32;
  if (row >= n)
    return;
  float ss = 0;
  for (int e = lane; e < kHidden; e += 32)
    ss += x[e] * x[e];
  for (int o = 16; o; o /= 2)
    ss += __shfl_xor_sync(0xffffffffu, ss, o);
  const float inv = rsqrtf(ss / kHidden + 1e-5f);
  float acc = 0;
  for (int e = lane; e < kHidden; e += 32)
    acc = fmaf(__bfloat162float(w[(size_t)row * kHidden + e]), x[e] * inv, acc);
  for (int o = 16; o; o /= 2)
    acc += __shfl_xor_sync(0xffffffffu, acc, o);
  if (lane == 0)
    y[row] = acc;
}
// h[j] += sum_i wT[i][j] * x[i], i < k.
__global__ void refAddT(const __nv_bfloat16 *wT, const float *x, float *h, int k) {
  const int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= kHidden)
    return;
  float acc = 0;
  for (int i = 0; i < k; ++i)
    acc = fmaf(__bfloat162float(wT[(size_t)i * kHidden + j]), x[i], acc);
  h[j] += acc;
}
__global__ void refSilu(const float *gu, float *act) {
  const int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j < kInter)
    act[j] = gu[j] / (1.f + __expf(-gu[j])) * gu[kInter + j];
}

__global__ void sumCopies(const float *h, int copies, float *out) {
  const int j = blockIdx.x * blockDim.x + threadIdx.x;
  float v = 0;
  for (int c = 0; c < copies; ++c)
    v += h[c * kHidden + j];
  out[j] = v;
}

static double worstRelative(const float *a, const float *r, int n) {
  std::vector<float> ha(n), hr(n);
  CK(cudaMemcpy(ha.data(), a, n * 4, cudaMemcpyDeviceToHost));
  CK(cudaMemcpy(hr.data(), r, n * 4, cudaMemcpyDeviceToHost));
  double mx = 1e-30, d = 0;
  for (int i = 0; i < n; ++i) {
    mx = std::max(mx, (double)std::fabs(hr[i]));
    d = std::max(d, std::isfinite(ha[i]) ? (double)std::fabs(ha[i] - hr[i]) : INFINITY);
  }
  return d / mx;
}

int main(int argc, char **argv) {
  int stepsPerLaunch = 8, attNs = 4000, slotKb = 24, slots = 8, launches = 20, skip = 0;
  bool claim = false;
  int copies = 1;
  for (int i = 1; i < argc; i += 2) {
    if (!strcmp(argv[i], "--claim")) {
      claim = true, --i; // no value
      continue;
    }
    if (i + 1 == argc) {
      std::fprintf(stderr, "%s needs a value\n", argv[i]);
      return 2;
    }
    if (!strcmp(argv[i], "--steps-per-launch")) stepsPerLaunch = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--att-ns")) attNs = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--slot-kb")) slotKb = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--slots")) slots = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--launches")) launches = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--copies")) copies = atoi(argv[i + 1]);
    // Diagnosis of the timed runs only (the check runs everything), bits:
    // 1 leaves out the atomics into h, 2 every wait on another block.
    else if (!strcmp(argv[i], "--skip")) skip = atoi(argv[i + 1]);
    else {
      std::fprintf(stderr, "unknown option %s\n", argv[i]);
      return 2;
    }
  }
  const int slotBytes = slotKb * 1024;
  if (slots < 2 || slots > kMaxSlots || slotBytes < kRowBytes || slots * slotBytes > 200 * 1024) {
    std::fprintf(stderr, "--slots in [2, %d], --slot-kb at least 4, the ring within 200 KB\n",
                 kMaxSlots);
    return 2;
  }
  auto *kernel = copies == 1 ? step<1> : copies == 2 ? step<2> : copies == 4 ? step<4>
                 : copies == 8 ? step<8> : copies == 16 ? step<16> : nullptr;
  if (!kernel) {
    std::fprintf(stderr, "--copies: 1, 2, 4, 8 or 16\n");
    return 2;
  }
  int sms;
  CK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  if (kInter / sms + 1 + slotBytes / kRowBytes > kCap) {
    std::fprintf(stderr, "%d SMs: a block's slice exceeds %d rows\n", sms, kCap);
    return 2;
  }
  const size_t rows = kLayerRows * kLayers + kVocab, bytes = rows * kRowBytes;
  __nv_bfloat16 *w;
  CK(cudaMalloc(&w, bytes));
  fill<<<1024, 256>>>(w, bytes / 2, 1.7f / sqrtf(2048.0f), 7);
  float *x0, *h, *logits, *hRef, *logitsRef, *y, *act;
  CK(cudaMalloc(&x0, kHidden * 4));
  CK(cudaMalloc(&h, copies * kHidden * 4)); // h is the sum of the copies
  CK(cudaMemset(h, 0, copies * kHidden * 4));
  CK(cudaMalloc(&hRef, kHidden * 4));
  CK(cudaMalloc(&logits, kVocab * 4));
  CK(cudaMalloc(&logitsRef, kVocab * 4));
  CK(cudaMalloc(&y, 2 * kInter * 4));
  CK(cudaMalloc(&act, kInter * 4));
  std::vector<float> hx(kHidden);
  for (int i = 0; i < kHidden; ++i)
    hx[i] = std::sin(0.37f * i);
  CK(cudaMemcpy(x0, hx.data(), kHidden * 4, cudaMemcpyHostToDevice));
  unsigned *done, *loaded;
  CK(cudaMalloc(&done, kProjs * 4));
  CK(cudaMalloc(&loaded, kProjs * 4));
  CK(cudaMemset(done, 0, kProjs * 4));
  CK(cudaMemset(loaded, 0, kProjs * 4));
  // Two counters per step and projection for every step of the run.
  const size_t epochs = 1 + (3 * launches + 1) * (size_t)stepsPerLaunch;
  unsigned *claims = nullptr;
  if (claim) {
    CK(cudaMalloc(&claims, epochs * kProjs * 2 * 4));
    CK(cudaMemset(claims, 0, epochs * kProjs * 2 * 4));
  }
  const int smemBytes = slots * slotBytes;
  CK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smemBytes));

  // One step from x0, against the references.
  CK(cudaMemcpy(h, x0, kHidden * 4, cudaMemcpyDeviceToDevice));
  unsigned epoch = 0;
  kernel<<<sms, kThreads, smemBytes>>>(w, h, logits, done, loaded, claims, epoch, 1, slots,
                                     slotBytes, attNs, nullptr, 0);
  epoch += 1;
  CK(cudaGetLastError());
  CK(cudaMemcpy(hRef, x0, kHidden * 4, cudaMemcpyDeviceToDevice));
  for (int l = 0; l < kLayers; ++l) {
    refNormGemv<<<(kHidden + kKv + 3) / 4, 128>>>(proj(w, l, kQkv), hRef, y, kHidden + kKv);
    refAddT<<<kHidden / 256, 256>>>(proj(w, l, kO), y, hRef, kHidden);
    refNormGemv<<<(2 * kInter + 3) / 4, 128>>>(proj(w, l, kGateUp), hRef, y, 2 * kInter);
    refSilu<<<(kInter + 255) / 256, 256>>>(y, act);
    refAddT<<<kHidden / 256, 256>>>(proj(w, l, kDown), act, hRef, kInter);
  }
  refNormGemv<<<(kVocab + 3) / 4, 128>>>(proj(w, kLayers, 0), hRef, logitsRef, kVocab);
  CK(cudaDeviceSynchronize());
  sumCopies<<<kHidden / 256, 256>>>(h, copies, y);
  const double eh = worstRelative(y, hRef, kHidden), el = worstRelative(logits, logitsRef, kVocab);
  std::printf("check: worst relative error, h %.2e, logits %.2e (%s)\n", eh, el,
              eh < 1e-3 && el < 1e-3 ? "ok" : "FAIL");

  const double readMs = plainReadMs(w, bytes, sms);
  std::printf("weights %.3f GB; plain read %.3f ms (%.0f GB/s)\n", bytes / 1e9, readMs,
              bytes / (readMs * 1e-3) / 1e9);
  cudaEvent_t a, z;
  CK(cudaEventCreate(&a));
  CK(cudaEventCreate(&z));
  // h grows by a few units a step; it stays finite for these runs.
  for (int rep = 0; rep < 3; ++rep) {
    CK(cudaEventRecord(a));
    for (int l = 0; l < launches; ++l) {
      kernel<<<sms, kThreads, smemBytes>>>(w, h, logits, done, loaded, claims, epoch,
                                         stepsPerLaunch, slots, slotBytes, attNs, nullptr, skip);
      epoch += stepsPerLaunch;
    }
    CK(cudaEventRecord(z));
    CK(cudaEventSynchronize(z));
    CK(cudaGetLastError());
    float ms;
    CK(cudaEventElapsedTime(&ms, a, z));
    const double perStep = ms / (launches * stepsPerLaunch);
    std::printf("dataflow%s, h in %d: %d slots x %d KB, attention %d ns, %d steps/launch: "
                "%.3f ms/step (%.0f GB/s, %.0f%% of the plain read)\n",
                claim ? " (claimed rows)" : "", copies, slots, slotKb, attNs, stepsPerLaunch,
                perStep, bytes / (perStep * 1e-3) / 1e9, 100.0 * readMs / perStep);
  }
  // Where a block's time goes, one launch.
  unsigned long long *d;
  std::vector<unsigned long long> hs(sms * 3);
  CK(cudaMalloc(&d, hs.size() * 8));
  CK(cudaMemset(d, 0, hs.size() * 8));
  kernel<<<sms, kThreads, smemBytes>>>(w, h, logits, done, loaded, claims, epoch,
                                     stepsPerLaunch, slots, slotBytes, attNs, d, skip);
  epoch += stepsPerLaunch;
  CK(cudaMemcpy(hs.data(), d, hs.size() * 8, cudaMemcpyDeviceToHost));
  const char *names[3] = {"producer waits for an empty slot",
                          "waits for h (or attention) + prologue", "waits for a full slot"};
  for (int i = 0; i < 3; ++i) {
    double sum = 0, mx = 0;
    for (int b = 0; b < sms; ++b)
      sum += hs[b * 3 + i], mx = std::max(mx, (double)hs[b * 3 + i]);
    std::printf("stats: %-40s mean %.1f us/step, max block %.1f\n", names[i],
                sum / sms / stepsPerLaunch / 1e3, mx / stepsPerLaunch / 1e3);
  }
  return 0;
}
