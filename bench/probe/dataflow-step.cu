// Probe (not part of kvc): a persistent TinyLlama decode step at batch 1 in
// which half of the projections need no grid-wide wait, with real attention.
//
// persistent-step.cu waits for the whole grid before every projection, and
// each wait and its prologue (x from L2, the norm) cost ~0.1 ms a step on
// top of the stream (bench/RESULTS.md). Here the projections that add into
// the residual h are split along k instead of n:
// - qkv (row split, needs RMSNorm(h), so waits for h): raw q, k, v rows to
//   global memory, k/v rows first. Chunks are 8 rows, so one head each,
//   counted per head. Four attention warps beside the streaming ones wait
//   for a head's count: in blocks 32-35 they append a kv head's rotated k
//   and its v to the cache at the position, in blocks 0-31 they run a q
//   head's attention (rotary, the cache's rows 0..pos, softmax) once its kv
//   head is in the cache, and write the head's 64 outputs.
// - o (k split): a chunk of W_o^T rows (8 attention outputs of one head)
//   waits for its head only, and adds its 2048 partial sums into h with
//   float4 atomics. No wait for the grid.
// - gate/up (row split, waits for h): block b computes gate and up for its
//   features j, so SiLU(gate_j) * up_j is local.
// - down (k split): W_down^T rows of the block's features, atomics into h.
// - lm_head (row split) after the last layer.
// So a layer has two grid-wide waits (h complete), not four. A k split
// projection adds into h only after every block has read h for the
// projection before it (a `loaded` counter, almost always already there).
// No cycle of waits: every block streams its k/v chunks before any q chunk,
// and a head's attention waits only for its kv head.
// Weights of k split projections are stored transposed (rows of n = 2048),
// so every chunk is contiguous rows of 4 KB, streamed through a
// shared-memory ring by one producer thread as in persistent-step.cu. A k
// split consumer thread owns 8 output columns and needs no shuffles.
//
// Checked against plain kernels (final h and logits of one step).
//   nvcc -O3 -gencode arch=compute_90a,code=sm_90a -o dataflow dataflow-step.cu
//   ./dataflow [--len L] [--slots S] [--steps-per-launch N] [--skip BITS] [--claim]
//              [--copies C] [--l2-ahead-mb MB]
// --len: the cache's length before the step (the new row goes to position
// L, every step of a run, so each step attends L + 1 rows). --claim: row
// split projections' and o's rows claimed by the blocks as they stream
// (down's rows follow the block's gate/up claims), not fixed slices.
// --copies: h kept as the sum of C copies, block b adding into b % C.
// --l2-ahead-mb: with each chunk, the weights that many MB further down the
// stream are prefetched into L2.
#include "probe-common.cuh"

#include <cmath>
#include <cstring>

constexpr int kConsumerWarps = 8;
constexpr int kAttWarps = 4; // after the producer warp: attention and the cache append
constexpr int kAttBase = (kConsumerWarps + 1) * 32;
constexpr int kThreads = kAttBase + kAttWarps * 32;
constexpr int kMaxSlots = 8;
constexpr int kHidden = 2048, kKv = 512, kInter = 5632, kVocab = 32000, kLayers = 22;
constexpr int kHeads = 32, kKvHeads = 4, kHeadDim = 64, kGroup = kHeads / kKvHeads;
constexpr int kRowBytes = kHidden * 2; // every streamed row: 2048 bf16
constexpr int kChunk = 8;              // rows a slot: a head's rows in 8 chunks
constexpr int kSlotBytes = kChunk * kRowBytes;
constexpr int kMaxLen = 2048;  // most cache rows attended
constexpr int kCap = 256;      // most intermediate features a block takes
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

// Rotary embedding (rotate-half pairs d, d +- 32, theta 10000) of element d
// of a head whose element d is x and whose partner is y.
__device__ inline float rotary(float x, float y, int d, int pos) {
  const int i = d % (kHeadDim / 2);
  const float angle = pos * powf(10000.f, -2.f * i / kHeadDim);
  const float c = cosf(angle), s = sinf(angle);
  return d < kHeadDim / 2 ? x * c - y * s : x * c + y * s;
}
__device__ inline int partner(int d) { return (d + kHeadDim / 2) % kHeadDim; }

// The KV cache: [layer][kv head][kMaxLen + 1][64] bf16, K and V apart.
__host__ __device__ inline size_t cacheRow(int layer, int g, int row) {
  return ((size_t)(layer * kKvHeads + g) * (kMaxLen + 1) + row) * kHeadDim;
}

__device__ __forceinline__ void consumersSync() {
  asm volatile("bar.sync 1, %0;" ::"n"(kConsumerWarps * 32) : "memory");
}
__device__ __forceinline__ void attSync() {
  asm volatile("bar.sync 2, %0;" ::"n"(kAttWarps * 32) : "memory");
}
__device__ __forceinline__ void waitCount(const unsigned *c, unsigned want) {
  while (ldAcquire(c) < want) {}
}
__device__ __forceinline__ void signal(unsigned *c) {
  __threadfence();
  atomicAdd(c, 1u);
}
__device__ __forceinline__ void publish(unsigned *c, unsigned v) {
  __threadfence();
  asm volatile("st.release.gpu.global.u32 [%0], %1;" ::"l"(c), "r"(v) : "memory");
}

// Where a block's rows of a projection come from. Static: its fixed slice,
// in chunks. Claimed (`--claim`): chunks taken from a counter per step and
// projection with an atomic add by the producer as it streams, so a block
// that runs ahead takes more rows and the grid finishes together. The next
// claim is issued as the current one is taken, so the producer does not
// wait for the atomic's round trip before each copy.
struct Rows {
  unsigned *ctr; // null: static
  int hi, next;
  __device__ Rows(unsigned *ctr, int n, int b, int G)
      : ctr(ctr), hi(ctr ? n : split(n / kChunk, b + 1, G) * kChunk),
        next(ctr ? (int)atomicAdd(ctr, (unsigned)kChunk) : split(n / kChunk, b, G) * kChunk) {}
  __device__ int take(int &first) {
    first = next;
    if (first >= hi)
      return 0; // the counter only grows: every later claim is past the end too
    next = ctr ? (int)atomicAdd(ctr, (unsigned)kChunk) : next + kChunk;
    return min(kChunk, hi - first);
  }
};

// What a step reads and writes besides the weights and h.
struct State {
  float *logits, *qkv, *att;   // raw q/k/v rows and attention outputs of a layer
  __nv_bfloat16 *kc, *vc;      // the cache
  unsigned *done, *loaded;     // per projection, G a step (below)
  unsigned *headRows;          // per layer, q heads then kv heads: rows computed
  unsigned *kvReady, *headReady; // per layer and head: the step + 1 when ready
  unsigned *claims;            // two per step and projection, or null
};

// The attention warps of the block that appends kv head g of `layer`: its
// rotated k and its v into the cache at `pos`.
__device__ void appendKv(const State &s, int layer, int g, int pos, unsigned e) {
  const int d = threadIdx.x - kAttBase;
  if (d < kHeadDim) {
    const float *k = s.qkv + kHidden + g * kHeadDim, *v = s.qkv + kHidden + kKv / 2 + g * kHeadDim;
    const float kr = rotary(__ldcg(k + d), __ldcg(k + partner(d)), d, pos);
    s.kc[cacheRow(layer, g, pos) + d] = __float2bfloat16(kr);
    s.vc[cacheRow(layer, g, pos) + d] = __float2bfloat16(__ldcg(v + d));
  }
  attSync();
  if (d == 0)
    publish(&s.kvReady[layer * kKvHeads + g], e + 1);
}

// The attention warps of the block that runs q head hd of `layer`: attention
// of the rotated q over cache rows 0..pos once its kv head is there. Eight
// lanes a row (16 bytes each), 16 rows a pass, 16 passes' loads in flight
// (-DATT_UNROLL=N: N);
// `sc` holds kMaxLen + 1 floats, `red` kAttWarps x 64.
__device__ void attend(const State &s, int layer, int hd, int pos, unsigned e, bool wait,
                       float *sc, float (*red)[kHeadDim], float *qs) {
#ifndef ATT_UNROLL
#define ATT_UNROLL 16
#endif
  constexpr int kPass = kAttWarps * 32 / 8, kUnroll = ATT_UNROLL;
  const int g = hd / kGroup, t = threadIdx.x - kAttBase, warp = t / 32, lane = t % 32;
  const int cg = t % 8, rs = t / 8; // a row's 8 columns, a pass's row
  if (t == 0 && wait)
    waitCount(&s.kvReady[layer * kKvHeads + g], e + 1);
  if (t < kHeadDim) {
    const float *q = s.qkv + hd * kHeadDim;
    qs[t] = rotary(__ldcg(q + t), __ldcg(q + partner(t)), t, pos) * rsqrtf((float)kHeadDim);
  }
  attSync();
  float qr[8];
#pragma unroll
  for (int j = 0; j < 8; ++j)
    qr[j] = qs[cg * 8 + j];
  const uint4 *kc = reinterpret_cast<const uint4 *>(s.kc + cacheRow(layer, g, 0)) + cg;
  const uint4 *vc = reinterpret_cast<const uint4 *>(s.vc + cacheRow(layer, g, 0)) + cg;
  auto dot8 = [](const uint4 &raw, const float *x) {
    const __nv_bfloat162 *hw = reinterpret_cast<const __nv_bfloat162 *>(&raw);
    float a = 0;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const float2 f = __bfloat1622float2(hw[j]);
      a = fmaf(f.x, x[2 * j], fmaf(f.y, x[2 * j + 1], a));
    }
    return a;
  };
  // kUnroll passes' rows from r0 (the last row again past pos).
  auto loadRows = [&](const uint4 *c, int r0, uint4 *raw) {
#pragma unroll
    for (int u = 0; u < kUnroll; ++u)
      raw[u] = __ldcg(c + (size_t)min(r0 + u * kPass, pos) * (kHeadDim / 8));
  };
  float mx = -INFINITY;
  for (int r0 = rs; r0 - lane / 8 <= pos; r0 += kPass * kUnroll) { // warp-uniform
    uint4 raw[kUnroll];
    loadRows(kc, r0, raw);
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      float a = dot8(raw[u], qr);
      a += __shfl_xor_sync(0xffffffffu, a, 1);
      a += __shfl_xor_sync(0xffffffffu, a, 2);
      a += __shfl_xor_sync(0xffffffffu, a, 4);
      const int r = r0 + u * kPass;
      if (r <= pos) {
        mx = fmaxf(mx, a);
        if (cg == 0)
          sc[r] = a;
      }
    }
  }
  // The block's max, then its sum of exponentials, through red[0].
  for (int o = 16; o; o /= 2)
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
  if (lane == 0)
    red[0][warp] = mx;
  attSync();
  mx = red[0][0];
  for (int i = 1; i < kAttWarps; ++i)
    mx = fmaxf(mx, red[0][i]);
  float sum = 0;
  for (int r = t; r <= pos; r += kAttWarps * 32) {
    const float p = __expf(sc[r] - mx);
    sc[r] = p;
    sum += p;
  }
  for (int o = 16; o; o /= 2)
    sum += __shfl_xor_sync(0xffffffffu, sum, o);
  attSync(); // everyone has read red[0] and written sc
  if (lane == 0)
    red[0][kAttWarps + warp] = sum;
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (int r0 = rs; r0 - lane / 8 <= pos; r0 += kPass * kUnroll) {
    uint4 raw[kUnroll];
    loadRows(vc, r0, raw);
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int r = r0 + u * kPass;
      const float p = r <= pos ? sc[r] : 0.f;
      const __nv_bfloat162 *hw = reinterpret_cast<const __nv_bfloat162 *>(&raw[u]);
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const float2 f = __bfloat1622float2(hw[j]);
        acc[2 * j] = fmaf(p, f.x, acc[2 * j]), acc[2 * j + 1] = fmaf(p, f.y, acc[2 * j + 1]);
      }
    }
  }
#pragma unroll
  for (int j = 0; j < 8; ++j) {
    acc[j] += __shfl_xor_sync(0xffffffffu, acc[j], 8);
    acc[j] += __shfl_xor_sync(0xffffffffu, acc[j], 16);
  }
  attSync(); // red[0]'s sums written; red's rows free past them
  float total = 0;
  for (int i = 0; i < kAttWarps; ++i)
    total += red[0][kAttWarps + i];
  attSync();
  if (lane < 8)
#pragma unroll
    for (int j = 0; j < 8; ++j)
      red[warp][cg * 8 + j] = acc[j];
  attSync();
  if (t < kHeadDim) {
    float o = 0;
    for (int i = 0; i < kAttWarps; ++i)
      o += red[i][t];
    s.att[hd * kHeadDim + t] = o / total;
  }
  attSync();
  if (t == 0)
    publish(&s.headReady[layer * kHeads + hd], e + 1);
}

// `done[p]`: blocks whose atomics of k split projection p are in h;
// `loaded[p]`: blocks that have read h for row split projection p. Both grow
// by G a step; step e of the run is complete at G * (e + 1). Head counters
// grow by a head's rows a step.
template <int Copies>
__global__ void __launch_bounds__(kThreads, 1)
step(const __nv_bfloat16 *w, float *h, State s, unsigned epoch0, int steps, int slots, int pos,
     size_t ahead, const void *end, unsigned long long *stats, int skip) {
  extern __shared__ __align__(128) unsigned char shm[];
  __shared__ __align__(8) unsigned long long full[kMaxSlots], empty[kMaxSlots];
  __shared__ __align__(16) float xs[kHidden];
  __shared__ float red[kConsumerWarps][kHeadDim], mine[2][kCap], act[kCap], xo[kChunk];
  __shared__ float sc[kMaxLen + 1], attRed[kAttWarps][kHeadDim], qs[kHeadDim]; // attention
  // What the producer put in a slot: rows of the weight from `lo` (0 rows:
  // the projection ends here), their index in the block's sequence, part.
  __shared__ int metaLo[kMaxSlots], metaRows[kMaxSlots], metaLocal[kMaxSlots],
      metaPart[kMaxSlots];
  __shared__ int2 listJ[kMaxChunks]; // the block's chunks of intermediate features
  const int G = gridDim.x, b = blockIdx.x;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  initRing(full, empty, slots, kConsumerWarps);
  if (warp > kConsumerWarps) {
    // Blocks 0-31 run q head b's attention, 32-35 append kv head b - 32,
    // once the head's rows are all computed.
    const int job = b;
    if (job >= kHeads + kKvHeads)
      return;
    for (int st = 0; st < steps; ++st) {
      const unsigned e = epoch0 + st;
      for (int layer = 0; layer < kLayers; ++layer) {
        const unsigned want = (job < kHeads ? kHeadDim : 2 * kHeadDim) * (e + 1);
        if (threadIdx.x == kAttBase && !(skip & 2))
          waitCount(&s.headRows[layer * (kHeads + kKvHeads) + job], want);
        attSync();
        if (job < kHeads)
          attend(s, layer, job, pos, e, !(skip & 2), sc, attRed, qs);
        else
          appendKv(s, layer, job - kHeads, pos, e);
      }
    }
    return;
  }
  if (warp == kConsumerWarps) {
    if (lane)
      return;
    int slot = 0, nj = 0;
    unsigned parity = 1;
    auto push = [&](const __nv_bfloat16 *base, int row, int rows, int lo, int local, int part) {
      const unsigned long long t0 = stats ? now() : 0;
      mbarWait(smem(&empty[slot]), parity);
      if (stats)
        stats[b * 3 + 0] += now() - t0;
      metaLo[slot] = lo, metaRows[slot] = rows, metaLocal[slot] = local, metaPart[slot] = part;
      if (rows) {
        mbarExpect(smem(&full[slot]), rows * kRowBytes);
        bulkCopy(smem(shm + slot * kSlotBytes), base + (size_t)row * kHidden, rows * kRowBytes,
                 smem(&full[slot]));
        // The weights `ahead` bytes further down the stream, into L2, so that
        // DRAM keeps streaming while the ring is full and the block waits.
        const char *next = reinterpret_cast<const char *>(base + (size_t)row * kHidden) + ahead;
        if (ahead && next + rows * kRowBytes <= end)
          asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(next),
                       "r"(rows * kRowBytes) : "memory");
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
        unsigned *ctr = s.claims ? s.claims + ((size_t)(epoch0 + st) * kProjs + p) * 2 : nullptr;
        if (kind == kDown) {
          // W_down^T rows of the block's own intermediate features.
          for (int c = 0, local = 0; c < nj; local += listJ[c++].y)
            push(base, listJ[c].x, listJ[c].y, listJ[c].x, local, 0);
        } else {
          // qkv: k/v rows (part 1) before q rows (part 0); gate with up.
          const int n0 = kind == kQkv || kind == kO ? kHidden : kind == kGateUp ? kInter : kVocab;
          for (int part = kind == kQkv; part >= 0; --part) {
            const int n = part ? kKv : n0;
            Rows src(ctr ? ctr + part : nullptr, n, b, G);
            int first, rows, local = 0, chunks = 0;
            while ((rows = src.take(first))) {
              if (kind == kGateUp && (local + rows > kCap || chunks == kMaxChunks))
                __trap(); // a claim taken must be computed: fail loudly instead
              push(base, part ? kHidden + first : first, rows, part ? kHidden + first : first,
                   local, part);
              if (kind == kGateUp) {
                push(base, kInter + first, rows, first, local, 1);
                listJ[chunks] = make_int2(first, rows);
              }
              local += rows, ++chunks;
            }
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
      const int kind = p == kProjs - 1 ? 4 : p % 4, layer = p / 4;
      const bool rowSplit = kind != kO && kind != kDown;
      const unsigned long long t0 = stats && threadIdx.x == 0 ? now() : 0;
      if (rowSplit) {
        // h complete: the k split projection before this one, everywhere.
        if (threadIdx.x == 0 && (p || e) && !(skip & 2))
          waitCount(&s.done[p ? p - 1 : kProjs - 2], p ? target : target - G);
        consumersSync();
        loadInput<kConsumerWarps, Copies>(h, xs, kHidden, true, red[0]);
        consumersSync();
        if (threadIdx.x == 0)
          signal(&s.loaded[p]);
      }
      if (stats && threadIdx.x == 0)
        stats[b * 3 + 1] += now() - t0;
      // A row split lane's 64 values of x, in registers for the projection.
      float xr[kHidden / 32];
      if (rowSplit)
#pragma unroll
        for (int j = 0; j < kHidden / 256; ++j) {
          *reinterpret_cast<float4 *>(xr + 8 * j) =
              *reinterpret_cast<const float4 *>(xs + lane * 8 + 256 * j);
          *reinterpret_cast<float4 *>(xr + 8 * j + 4) =
              *reinterpret_cast<const float4 *>(xs + lane * 8 + 256 * j + 4);
        }
      consumersSync();
      float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      int count = 0; // the block's rows of part 0 so far
      for (;;) {
        const unsigned long long tw = stats && threadIdx.x == 0 ? now() : 0;
        mbarWait(smem(&full[slot]), parity);
        if (stats && threadIdx.x == 0)
          stats[b * 3 + 2] += now() - tw;
        const int rows = metaRows[slot], lo = metaLo[slot], local = metaLocal[slot],
                  part = metaPart[slot];
        const __nv_bfloat16 *ws = reinterpret_cast<const __nv_bfloat16 *>(shm + slot * kSlotBytes);
        if (kind == kO && rows) {
          // The chunk's 8 attention outputs, once their head is done.
          if (threadIdx.x == 0 && !(skip & 2))
            waitCount(&s.headReady[layer * kHeads + lo / kHeadDim], e + 1);
          consumersSync();
          if (threadIdx.x < rows)
            xo[threadIdx.x] = __ldcg(s.att + lo + threadIdx.x);
          consumersSync();
        }
        if (skip & 4) {
          // Diagnosis: no dot products (consumers as fast as can be).
        } else if (rowSplit) {
          // A warp a row: the dot product with RMSNorm(h).
          for (int row = warp; row < rows; row += kConsumerWarps) {
            const __nv_bfloat16 *wr = ws + row * kHidden;
            float a0 = 0, a1 = 0;
#pragma unroll
            for (int j = 0; j < kHidden / 256; ++j) {
              const uint4 raw = *reinterpret_cast<const uint4 *>(wr + lane * 8 + 256 * j);
              const __nv_bfloat162 *hw = reinterpret_cast<const __nv_bfloat162 *>(&raw);
              const float *x = xr + 8 * j;
#pragma unroll
              for (int i = 0; i < 4; ++i) {
                const float2 f = __bfloat1622float2(hw[i]);
                a0 = fmaf(f.x, x[2 * i], a0), a1 = fmaf(f.y, x[2 * i + 1], a1);
              }
            }
            a0 += a1;
#pragma unroll
            for (int o = 16; o; o /= 2)
              a0 += __shfl_xor_sync(0xffffffffu, a0, o);
            if (lane == 0) {
              if (kind == 4)
                s.logits[lo + row] = a0;
              else if (kind == kQkv)
                s.qkv[lo + row] = a0;
              else
                mine[part][local + row] = a0;
            }
          }
        } else {
          // Thread t owns columns 8t..8t+7: W^T row times its input value.
          const float *x = kind == kO ? xo : act + local;
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
        if (kind == kQkv) {
          // Count the chunk's rows for its head, for the attention warps.
          consumersSync();
          if (threadIdx.x == 0) {
            const int head = lo < kHidden ? lo / kHeadDim
                                          : kHeads + (lo - kHidden) % (kKv / 2) / kHeadDim;
            __threadfence();
            atomicAdd(&s.headRows[layer * (kHeads + kKvHeads) + head], rows);
          }
        }
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
          waitCount(&s.loaded[p - 1], target);
        consumersSync();
        if (!(skip & 1)) {
          float4 *hc = reinterpret_cast<float4 *>(h + b % Copies * kHidden) + threadIdx.x * 2;
          atomicAdd(hc, make_float4(acc[0], acc[1], acc[2], acc[3]));
          atomicAdd(hc + 1, make_float4(acc[4], acc[5], acc[6], acc[7]));
        }
        consumersSync();
        if (threadIdx.x == 0)
          signal(&s.done[p]);
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
// A block a q head, one thread a cache row: rotary, the new row (its own
// copy of the kv head's, also stored in the cache), softmax, the sum.
__global__ void refAttention(const float *qkv, __nv_bfloat16 *kc, __nv_bfloat16 *vc, float *att,
                             int layer, int pos) {
  __shared__ float q[kHeadDim], k[kHeadDim], v[kHeadDim], p[kMaxLen + 1];
  const int hd = blockIdx.x, g = hd / kGroup, t = threadIdx.x;
  const float *qr = qkv + hd * kHeadDim, *kr = qkv + kHidden + g * kHeadDim,
              *vr = qkv + kHidden + kKv / 2 + g * kHeadDim;
  if (t < kHeadDim) {
    q[t] = rotary(qr[t], qr[partner(t)], t, pos) / 8.f;
    k[t] = __bfloat162float(__float2bfloat16(rotary(kr[t], kr[partner(t)], t, pos)));
    v[t] = __bfloat162float(__float2bfloat16(vr[t]));
  }
  __syncthreads();
  if (t < kHeadDim && hd % kGroup == 0) {
    kc[cacheRow(layer, g, pos) + t] = __float2bfloat16(k[t]);
    vc[cacheRow(layer, g, pos) + t] = __float2bfloat16(v[t]);
  }
  for (int r = t; r <= pos; r += blockDim.x) {
    float a = 0;
    for (int d = 0; d < kHeadDim; ++d)
      a += q[d] * (r == pos ? k[d] : __bfloat162float(kc[cacheRow(layer, g, r) + d]));
    p[r] = a;
  }
  __syncthreads();
  if (t < kHeadDim) {
    float mx = -INFINITY, sum = 0, o = 0;
    for (int r = 0; r <= pos; ++r)
      mx = fmaxf(mx, p[r]);
    for (int r = 0; r <= pos; ++r) {
      const float e = expf(p[r] - mx);
      sum += e;
      o += e * (r == pos ? v[t] : __bfloat162float(vc[cacheRow(layer, g, r) + t]));
    }
    att[hd * kHeadDim + t] = o / sum;
  }
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

template <typename T> static T *zeroed(size_t n) {
  T *p;
  CK(cudaMalloc(&p, n * sizeof(T)));
  CK(cudaMemset(p, 0, n * sizeof(T)));
  return p;
}

int main(int argc, char **argv) {
  int stepsPerLaunch = 8, len = 600, slots = 6, launches = 20, skip = 0, copies = 2, aheadMb = 0;
  bool claim = false;
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
    else if (!strcmp(argv[i], "--len")) len = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--slots")) slots = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--launches")) launches = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--copies")) copies = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--l2-ahead-mb")) aheadMb = atoi(argv[i + 1]);
    // Diagnosis of the timed runs only (the check runs everything), bits:
    // 1 leaves out the atomics into h, 2 every wait on another block, 4 the
    // dot products.
    else if (!strcmp(argv[i], "--skip")) skip = atoi(argv[i + 1]);
    else {
      std::fprintf(stderr, "unknown option %s\n", argv[i]);
      return 2;
    }
  }
  if (slots < 2 || slots > kMaxSlots || slots * kSlotBytes > 200 * 1024 || len < 0 ||
      len >= kMaxLen) {
    std::fprintf(stderr, "--slots in [2, 6] (slots of %d KB), --len in [0, %d)\n",
                 kSlotBytes / 1024, kMaxLen);
    return 2;
  }
  auto *kernel = copies == 1 ? step<1> : copies == 2 ? step<2> : copies == 4 ? step<4>
                 : copies == 8 ? step<8> : nullptr;
  if (!kernel) {
    std::fprintf(stderr, "--copies: 1, 2, 4 or 8\n");
    return 2;
  }
  int sms;
  CK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  if (kInter / sms + 1 + kChunk > kCap || sms < kHeads + kKvHeads) {
    std::fprintf(stderr, "%d SMs: a block's slice exceeds %d rows\n", sms, kCap);
    return 2;
  }
  const size_t rows = kLayerRows * kLayers + kVocab, bytes = rows * kRowBytes;
  __nv_bfloat16 *w;
  CK(cudaMalloc(&w, bytes));
  fill<<<1024, 256>>>(w, bytes / 2, 1.7f / sqrtf(2048.0f), 7);
  // The cache: random rows below the position, the same in the reference's.
  const size_t cacheElems = cacheRow(kLayers, 0, 0);
  State st{};
  __nv_bfloat16 *kRef, *vRef;
  CK(cudaMalloc(&st.kc, cacheElems * 2));
  CK(cudaMalloc(&st.vc, cacheElems * 2));
  CK(cudaMalloc(&kRef, cacheElems * 2));
  CK(cudaMalloc(&vRef, cacheElems * 2));
  fill<<<1024, 256>>>(st.kc, cacheElems, 1.0f, 11);
  fill<<<1024, 256>>>(st.vc, cacheElems, 1.0f, 13);
  CK(cudaMemcpy(kRef, st.kc, cacheElems * 2, cudaMemcpyDeviceToDevice));
  CK(cudaMemcpy(vRef, st.vc, cacheElems * 2, cudaMemcpyDeviceToDevice));
  float *x0 = zeroed<float>(kHidden), *h = zeroed<float>(copies * kHidden); // h: the copies' sum
  float *hRef = zeroed<float>(kHidden), *logitsRef = zeroed<float>(kVocab);
  float *y = zeroed<float>(2 * kInter), *act = zeroed<float>(kInter);
  float *att = zeroed<float>(kHidden);
  st.logits = zeroed<float>(kVocab);
  st.qkv = zeroed<float>(kHidden + kKv);
  st.att = zeroed<float>(kHidden);
  st.done = zeroed<unsigned>(kProjs);
  st.loaded = zeroed<unsigned>(kProjs);
  st.headRows = zeroed<unsigned>(kLayers * (kHeads + kKvHeads));
  st.kvReady = zeroed<unsigned>(kLayers * kKvHeads);
  st.headReady = zeroed<unsigned>(kLayers * kHeads);
  // Two counters per step and projection for every step of the run.
  const size_t epochs = 1 + (3 * launches + 1) * (size_t)stepsPerLaunch;
  if (claim)
    st.claims = zeroed<unsigned>(epochs * kProjs * 2);
  std::vector<float> hx(kHidden);
  for (int i = 0; i < kHidden; ++i)
    hx[i] = std::sin(0.37f * i);
  CK(cudaMemcpy(x0, hx.data(), kHidden * 4, cudaMemcpyHostToDevice));
  const int smemBytes = slots * kSlotBytes;
  const size_t ahead = (size_t)aheadMb << 20;
  const void *end = reinterpret_cast<const char *>(w) + bytes;
  CK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smemBytes));

  // One step from x0, against the references.
  CK(cudaMemcpy(h, x0, kHidden * 4, cudaMemcpyDeviceToDevice));
  unsigned epoch = 0;
  kernel<<<sms, kThreads, smemBytes>>>(w, h, st, epoch, 1, slots, len, ahead, end, nullptr, 0);
  epoch += 1;
  CK(cudaGetLastError());
  CK(cudaMemcpy(hRef, x0, kHidden * 4, cudaMemcpyDeviceToDevice));
  for (int l = 0; l < kLayers; ++l) {
    refNormGemv<<<(kHidden + kKv + 3) / 4, 128>>>(proj(w, l, kQkv), hRef, y, kHidden + kKv);
    refAttention<<<kHeads, 256>>>(y, kRef, vRef, att, l, len);
    refAddT<<<kHidden / 256, 256>>>(proj(w, l, kO), att, hRef, kHidden);
    refNormGemv<<<(2 * kInter + 3) / 4, 128>>>(proj(w, l, kGateUp), hRef, y, 2 * kInter);
    refSilu<<<(kInter + 255) / 256, 256>>>(y, act);
    refAddT<<<kHidden / 256, 256>>>(proj(w, l, kDown), act, hRef, kInter);
  }
  refNormGemv<<<(kVocab + 3) / 4, 128>>>(proj(w, kLayers, 0), hRef, logitsRef, kVocab);
  CK(cudaDeviceSynchronize());
  sumCopies<<<kHidden / 256, 256>>>(h, copies, y);
  const double eh = worstRelative(y, hRef, kHidden);
  const double el = worstRelative(st.logits, logitsRef, kVocab);
  // Tolerance: a k/v value rounded to bf16 for the cache may round the other
  // way than the reference's (sums in another order), one bf16 ulp (2^-8)
  // of one element; with a short cache that shows in h (len 0: 1.6e-3).
  std::printf("check: worst relative error, h %.2e, logits %.2e (%s)\n", eh, el,
              eh < 5e-3 && el < 5e-3 ? "ok" : "FAIL");

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
      kernel<<<sms, kThreads, smemBytes>>>(w, h, st, epoch, stepsPerLaunch, slots, len, ahead,
                                           end, nullptr, skip);
      epoch += stepsPerLaunch;
    }
    CK(cudaEventRecord(z));
    CK(cudaEventSynchronize(z));
    CK(cudaGetLastError());
    float ms;
    CK(cudaEventElapsedTime(&ms, a, z));
    const double perStep = ms / (launches * stepsPerLaunch);
    std::printf("dataflow%s, h in %d, L2 %d MB ahead: %d slots x %d KB, cache %d rows, "
                "%d steps/launch: %.3f ms/step (%.0f GB/s, %.0f%% of the plain read)\n",
                claim ? " (claimed rows)" : "", copies, aheadMb, slots, kSlotBytes / 1024, len,
                stepsPerLaunch, perStep, bytes / (perStep * 1e-3) / 1e9,
                100.0 * readMs / perStep);
  }
  // Where a block's time goes, one launch.
  unsigned long long *d = zeroed<unsigned long long>(sms * 3);
  std::vector<unsigned long long> hs(sms * 3);
  kernel<<<sms, kThreads, smemBytes>>>(w, h, st, epoch, stepsPerLaunch, slots, len, ahead, end, d,
                                       skip);
  epoch += stepsPerLaunch;
  CK(cudaMemcpy(hs.data(), d, hs.size() * 8, cudaMemcpyDeviceToHost));
  const char *names[3] = {"producer waits for an empty slot",
                          "waits for h + prologue", "waits for a full slot"};
  for (int i = 0; i < 3; ++i) {
    double sum = 0, mx = 0;
    for (int b = 0; b < sms; ++b)
      sum += hs[b * 3 + i], mx = std::max(mx, (double)hs[b * 3 + i]);
    std::printf("stats: %-40s mean %.1f us/step, max block %.1f\n", names[i],
                sum / sms / stepsPerLaunch / 1e3, mx / stepsPerLaunch / 1e3);
  }
  return 0;
}
