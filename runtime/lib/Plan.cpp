//===- Plan.cpp - launch shapes of kvc's GPU kernels -----------------------===//
#include "kvc/rt/Plan.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>

namespace kvc::rt {

const char *name(DType type) {
  switch (type) {
  case DType::F16:
    return "f16";
  case DType::BF16:
    return "bf16";
  case DType::F32:
    return "f32";
  }
  return "?";
}

int64_t sizeOf(DType type) { return type == DType::F32 ? 4 : 2; }

int64_t queriesPerBlock(int64_t group) {
  int64_t q = std::min<int64_t>(group, kCudaCoreQueryRows);
  while (group % q)
    --q;
  return q;
}

static int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

/// `rows` rounded up to whole kMinSplitRows: the lengths splits take.
static int64_t roundedRows(int64_t rows) {
  return ceilDiv(rows, kMinSplitRows) * kMinSplitRows;
}

/// `plan` cut into splits of `len` rows over `maxKeys`.
static void setSplitLen(DecodePlan &plan, int64_t maxKeys, int64_t len) {
  plan.splitLen = len;
  plan.splits = ceilDiv(maxKeys, len);
}

int64_t splitRows(int64_t headDim) {
  return std::max<int64_t>(1, kBlockSize * kVectorWidth / headDim);
}

/// Splits of `maxKeys` rows (multiples of kMinSplitRows) for `blocks`
/// blocks per split on `slots`: the count whose blocks fill their last wave
/// best, the fewest on a tie.
static void chooseSplits(DecodePlan &plan, int64_t blocks, int64_t maxKeys,
                         int64_t slots) {
  int64_t most = std::max<int64_t>(1, maxKeys / kMinSplitRows);
  // Fill at most four waves: past that more splits only add combine work.
  most = std::min(most, std::max<int64_t>(1, ceilDiv(4 * slots, blocks)));
  double best = -1;
  for (int64_t splits = 1; splits <= most; ++splits) {
    // Splits that round to the same rows per split are the same plan.
    int64_t len = roundedRows(ceilDiv(maxKeys, splits));
    int64_t actual = ceilDiv(maxKeys, len);
    if (actual != splits)
      continue;
    double waves = static_cast<double>(blocks * splits) / slots;
    double fill = waves / std::ceil(waves - 1e-9);
    // One wave that is not full leaves SMs idle all kernel long.
    if (waves < 1)
      fill = waves;
    if (fill > best + 0.02) {
      best = fill;
      plan.splits = splits;
      plan.splitLen = len;
    }
  }
  if (best < 0) {
    plan.splits = 1;
    plan.splitLen = maxKeys;
  }
}

/// Blocks per kv head: query rows of the tensor-core kernel's M dimension,
/// or the CUDA-core kernel's queriesPerBlock.
static int64_t queryChunks(int64_t group, int64_t rows, bool tensorCores) {
  return tensorCores ? ceilDiv(group * rows, kMmaQueryRows)
                     : group * rows / queriesPerBlock(group);
}

/// `plan`'s splits merged in one cluster: no partials, no combine.
static void mergeInCluster(DecodePlan &plan) {
  plan.cluster = plan.splits;
  plan.combine = {0, 1, 1};
  plan.partialOut = plan.partialMaxSum = 0;
}

/// The grids and workspace of `plan` for `queryRows` rows and `chunks`
/// blocks per kv head.
static void finishPlan(DecodePlan &plan, int64_t batch, int64_t kvHeads,
                       int64_t chunks, int64_t queryRows, int64_t headDim) {
  plan.split = {plan.splits, kvHeads * chunks, batch};
  plan.combine = {queryRows, 1, 1};
  plan.partialOut = queryRows * plan.splits * headDim;
  plan.partialMaxSum = queryRows * plan.splits * 2;
}

/// Splits of at least `minRows` rows for `blocks` blocks per split that take
/// about `share` slots (half of them, two blocks a multiprocessor for the
/// tensor-core kernel, at head dims over 64), or none (false) if the cache
/// is too short for them. The split count rounds down, or to the nearest
/// where `nearest`.
static bool chooseLongSplits(DecodePlan &plan, int64_t blocks, int64_t maxKeys,
                             int64_t share, bool nearest = false,
                             int64_t minRows = kLongSplitRows) {
  int64_t splits =
      std::max<int64_t>(1, (share + (nearest ? blocks / 2 : 0)) / blocks);
  int64_t len = roundedRows(ceilDiv(maxKeys, splits));
  if (len < minRows)
    return false;
  setSplitLen(plan, maxKeys, len);
  return true;
}

/// Whether a CUDA-core block serves fewer than 4 query rows (GQA groups of
/// 1 to 3), so that it does little arithmetic per key it reads.
static bool fewQueries(int64_t group) {
  return queriesPerBlock(group) < kCudaCoreQueryRows;
}

/// Whether a CUDA-core block serves all query rows of a kv head, so that
/// that kernel too reads each key once for them (else useDecodeMma takes
/// the tensor cores whatever the plan).
static bool cudaCoreFits(int64_t group, int64_t rows) {
  return group * rows <= queriesPerBlock(group);
}

/// planDecodeMma's splits where long ones do not fit in their share. Where the
/// blocks of kMinSplitRows-row splits would be at most one per multiprocessor
/// (a quarter of `slots`) and one cluster holds the splits, those, since each
/// block's time is then its chain of tiles (Hq/Hkv 32/4 D 64, us, 64-row /
/// 128-row splits: B1 L512 5.1 / 5.5, B2 L384 5.0 / 5.6; 32/1 D 128 B1 L512 6.7
/// / 7.7), unless `cudaCores` (the CUDA-core kernel could serve the rows:
/// useDecodeMma then gives it such splits). Otherwise at least kMmaMinSplitRows
/// rows each, as many as fit in three quarters of `slots` at a head dim of at
/// most 64; above, where a tile is twice the bytes, in a quarter (a block a
/// multiprocessor) where that is at most kMaxQuarterSplits splits, else in
/// half.
static void chooseShortMmaSplits(DecodePlan &plan, int64_t blocks,
                                 int64_t maxKeys, int64_t slots,
                                 int64_t headDim, bool cudaCores) {
  int64_t shortest = ceilDiv(maxKeys, kMinSplitRows);
  if (!cudaCores && shortest <= kMaxCluster &&
      4 * blocks * shortest <= slots) {
    plan.splits = shortest;
    plan.splitLen = kMinSplitRows;
    return;
  }
  int64_t splits = 3 * slots / 4 / blocks;
  if (headDim > 64) {
    splits = slots / 4 / blocks;
    if (splits > kMaxQuarterSplits)
      splits = slots / 2 / blocks;
  }
  splits = std::max<int64_t>(1, splits);
  setSplitLen(plan, maxKeys,
              std::min(roundedRows(maxKeys),
                       std::max(kMmaMinSplitRows,
                                roundedRows(ceilDiv(maxKeys, splits)))));
}

DecodePlan planDecode(int64_t batch, int64_t kvHeads, int64_t group,
                      int64_t rows, int64_t headDim, int64_t maxKeys,
                      int64_t slots) {
  DecodePlan plan;
  slots = std::max<int64_t>(1, slots);
  maxKeys = std::max<int64_t>(1, maxKeys);
  int64_t chunks = queryChunks(group, rows, false);
  int64_t blocks = batch * kvHeads * chunks;
  // At 1-3 query rows the split count nearest half the slots: from 1.2
  // blocks a multiprocessor (slots / 5) splits of kFewQuerySplitRows rows
  // do, below that only long ones (fewer blocks measured faster in many
  // short splits: B1 L1024 11.0 against 11.5 us in 8 of 128). Where the
  // nearest count makes them too short, the count rounded down may not.
  int64_t fewQueryRows = 5 * blocks >= slots ? kFewQuerySplitRows
                                             : kLongSplitRows;
  if (!(fewQueries(group) &&
        (chooseLongSplits(plan, blocks, maxKeys, slots / 2, /*nearest=*/true,
                          fewQueryRows) ||
         chooseLongSplits(plan, blocks, maxKeys, slots / 2)))) {
    chooseSplits(plan, blocks, maxKeys, slots);
    int64_t steps = ceilDiv(maxKeys, splitRows(headDim));
    if (blocks * steps <= slots) {
      plan.single = true;
      plan.splits = steps;
      plan.splitLen = splitRows(headDim);
    }
  }
  finishPlan(plan, batch, kvHeads, chunks, batch * kvHeads * group * rows,
             headDim);
  return plan;
}

bool useDecodeMma(int64_t group, int64_t rows, int64_t headDim, DType type,
                  const DecodePlan &mmaPlan, int64_t slots) {
  int64_t longSplit =
      fewQueries(group) ? kMmaSplitRowsFewQueries : kLongSplitRows;
  int64_t blocks = mmaPlan.split.y * mmaPlan.split.z;
  bool filled = headDim > 64 ? 4 * blocks >= 3 * slots : 2 * blocks >= slots;
  bool oneSplit = mmaPlan.splits == 1 &&
                  (!fewQueries(group) || filled ||
                   mmaPlan.splitLen < 2 * kFewQuerySplitRows);
  bool shortSplits = !fewQueries(group) &&
                     mmaPlan.splitLen >= kMmaMinSplitRows &&
                     mmaPlan.splits <= kMmaMaxShortSplits;
  return type != DType::F32 &&
         (!cudaCoreFits(group, rows) || oneSplit || shortSplits ||
          mmaPlan.splitLen >= longSplit);
}

DecodePlan planDecodeMma(int64_t batch, int64_t kvHeads, int64_t group,
                         int64_t rows, int64_t headDim, int64_t maxKeys,
                         int64_t slots) {
  DecodePlan plan;
  bool longSplits = false;
  slots = std::max<int64_t>(1, slots);
  maxKeys = std::max<int64_t>(1, maxKeys);
  int64_t chunks = queryChunks(group, rows, true);
  int64_t blocks = batch * kvHeads * chunks;
  bool cudaCores = cudaCoreFits(group, rows);
  // Where it cannot, at head dim 64 or less long splits take three quarters
  // of the slots, not half, and merge in clusters, not only pairs (Hq/Hkv 32/4,
  // us, half and pairs / this: B32 L1024 20.2 / 17.9, B24 L1024 17.7 / 15.3,
  // B16 L2048 20.0 / 18.5, B12 L2048 17.2 / 15.9, B1 L32768 20.5 / 19.3).
  bool threeQuarters = headDim <= 64 && !cudaCores;
  if (4 * blocks >= slots) {
    // One split a block; two at a head dim of at most 64 where the blocks
    // give fewer than two a multiprocessor (a tile in flight is too few
    // bytes there).
    int64_t splits = headDim <= 64 && 2 * blocks < slots ? 2 : 1;
    setSplitLen(plan, maxKeys, roundedRows(ceilDiv(maxKeys, splits)));
  } else if (!(longSplits = chooseLongSplits(
                    plan, blocks, maxKeys,
                    threeQuarters ? 3 * slots / 4 : slots / 2))) {
    if (cudaCores && fewQueries(group))
      chooseSplits(plan, blocks, maxKeys, slots);
    else
      chooseShortMmaSplits(plan, blocks, maxKeys, slots, headDim, cudaCores);
  }
  finishPlan(plan, batch, kvHeads, chunks, batch * kvHeads * group * rows,
             headDim);
  // Splits in one cluster merge there: no partials, no combine (one split
  // is a cluster of one). Long splits do so only in pairs (but see
  // threeQuarters), and short ones that the CUDA-core kernel could take only
  // where their blocks give a multiprocessor one or none (Hq/Hkv 32/8 D 128,
  // us, cluster / partials: B8 L512 4 splits 15.6 / 13.8, B4 L1024 8 splits
  // 16.3 / 14.1; B1 L1024 8 splits 8.1 / 9.3).
  if (plan.splits <= 2 ||
      ((!longSplits || threeQuarters) && plan.splits <= kMaxCluster &&
       (!cudaCores || 4 * blocks * plan.splits <= slots)))
    mergeInCluster(plan);
  return plan;
}

std::string parseDecodeForce(const std::string &text, DecodeForce &force) {
  DecodeForce parsed;
  for (size_t at = 0, comma = 0; !text.empty() && comma != std::string::npos;
       at = comma + 1) {
    comma = text.find(',', at);
    std::string item = text.substr(
        at, comma == std::string::npos ? std::string::npos : comma - at);
    size_t equals = item.find('=');
    if (equals == std::string::npos)
      return "'" + item + "' is not key=value (kernel, splits, cluster)";
    std::string key = item.substr(0, equals), value = item.substr(equals + 1);
    if (key == "kernel") {
      if (value == "mma")
        parsed.kernel = DecodeForce::Kernel::TensorCores;
      else if (value == "cuda")
        parsed.kernel = DecodeForce::Kernel::CudaCores;
      else
        return "kernel=" + value + ": mma or cuda";
      continue;
    }
    if (key != "splits" && key != "cluster")
      return "unknown key '" + key + "' (kernel, splits, cluster)";
    char *end = nullptr;
    long long number = std::strtoll(value.c_str(), &end, 10);
    int64_t most = key == "cluster" ? kMaxCluster : INT32_MAX;
    if (value.empty() || *end || number < 1 || number > most)
      return item + ": an integer from 1 to " + std::to_string(most);
    (key == "splits" ? parsed.splits : parsed.cluster) = number;
  }
  if (parsed.kernel == DecodeForce::Kernel::CudaCores && parsed.cluster > 1)
    return "cluster=" + std::to_string(parsed.cluster) +
           ": the CUDA-core kernel writes partials, it does not merge in "
           "clusters";
  force = parsed;
  return "";
}

void applyDecodeForce(DecodePlan &plan, const DecodeForce &force,
                      bool tensorCores, int64_t batch, int64_t kvHeads,
                      int64_t group, int64_t rows, int64_t headDim,
                      int64_t maxKeys) {
  if (!force.splits && !force.cluster)
    return;
  if (force.splits) {
    maxKeys = std::max<int64_t>(1, maxKeys);
    setSplitLen(plan, maxKeys, roundedRows(ceilDiv(maxKeys, force.splits)));
    plan.single = false;
  }
  finishPlan(plan, batch, kvHeads, queryChunks(group, rows, tensorCores),
             batch * kvHeads * group * rows, headDim);
  plan.cluster = 1;
  if (tensorCores && (plan.splits == 1 || plan.splits <= force.cluster))
    mergeInCluster(plan);
}

Grid planAppend(int64_t batch, int64_t kvHeads, int64_t rows,
                int64_t headDim) {
  return {ceilDiv(kvHeads * rows * (headDim / kVectorWidth), kBlockSize), batch,
          1};
}

std::string checkShapes(int64_t headDim, int64_t group) {
  if (headDim <= 0 || headDim % kVectorWidth || headDim > 32 * kVectorWidth)
    return "head dim " + std::to_string(headDim) +
           " is not a multiple of 8 in [8, 256]";
  if (group < 1 || (group > 8 && group % 8))
    return "query group " + std::to_string(group) +
           " is not in [1, 8] or a multiple of 8";
  return "";
}

std::string projectionKernel(int64_t m, int64_t n, int64_t k, DType type,
                             DType outType) {
  std::string types = std::string(name(type)) + "_" + name(outType);
  if (type == DType::F32)
    return "";
  if (m == 1 && k % 8 == 0)
    return "kvc_gemv_" + types;
  if (m > 1 && m <= kGemm16Rows && k % 64 == 0 && k <= kGemm16MaxK)
    return "kvc_gemm16_" + types;
  return "";
}

std::string argmaxKernel(DType type) {
  return std::string("kvc_argmax_") + name(type);
}

std::string appendKernel(int64_t headDim, DType type) {
  return "kvc_append_d" + std::to_string(headDim) + "_" + name(type);
}

std::string appendRotaryKernel(int64_t headDim, DType type) {
  return "kvc_append_rope_d" + std::to_string(headDim) + "_" + name(type);
}

std::string decodeSplitKernel(int64_t headDim, int64_t group, DType type,
                              bool single) {
  return std::string(single ? "kvc_decode_split1_d" : "kvc_decode_split_d") +
         std::to_string(headDim) + "_g" + std::to_string(group) + "_" +
         name(type);
}

std::string decodeMmaKernel(int64_t headDim, int64_t group, DType type) {
  return "kvc_decode_mma_d" + std::to_string(headDim) + "_g" +
         std::to_string(group) + "_" + name(type);
}

std::string prefillKernel(int64_t headDim, int64_t group, DType type) {
  return "kvc_prefill_d" + std::to_string(headDim) + "_g" +
         std::to_string(group) + "_" + name(type);
}

std::string decodeCombineKernel(int64_t headDim, DType type) {
  return "kvc_decode_combine_d" + std::to_string(headDim) + "_" + name(type);
}

} // namespace kvc::rt
