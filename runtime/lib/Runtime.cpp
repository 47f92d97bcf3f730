//===- Runtime.cpp - kvc's GPU runtime over the CUDA driver API ------------===//
#include "kvc/rt/Runtime.h"
#include "Matmul.h"

#include <cuda.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <vector>

namespace kvc::rt {

namespace {

/// The arguments of one launch, in the ABI of MLIR's gpu.func lowering: a
/// `memref<?xT>` is five words (allocated and aligned pointer, offset, size,
/// stride), an `index` one 64-bit word, an f32 one float.
class Args {
public:
  void memref(DevicePtr ptr, int64_t elements) {
    word(ptr);
    word(ptr);
    word(0);
    word(static_cast<uint64_t>(elements));
    word(1);
  }
  void index(int64_t value) { word(static_cast<uint64_t>(value)); }
  void f32(float value) {
    uint64_t bits = 0;
    std::memcpy(&bits, &value, sizeof(value));
    storage_.push_back(bits);
    pointers_.push_back(&storage_.back());
  }
  void **data() { return pointers_.data(); }

private:
  void word(uint64_t value) {
    storage_.push_back(value);
    pointers_.push_back(&storage_.back());
  }
  std::deque<uint64_t> storage_;
  std::vector<void *> pointers_;
};

const char *errorName(CUresult result) {
  const char *text = nullptr;
  if (cuGetErrorName(result, &text) != CUDA_SUCCESS || !text)
    return "unknown CUDA error";
  return text;
}

} // namespace

#define KVC_CHECK(call, kernel)                                                \
  do {                                                                         \
    if (!check(static_cast<int>(call), #call, kernel))                         \
      return false;                                                            \
  } while (0)

bool Device::fail(const std::string &message) {
  error_ = message;
  return false;
}

bool Device::check(int result, const char *call, const std::string &kernel) {
  if (result == CUDA_SUCCESS)
    return true;
  std::string message = std::string(call) + " failed: " +
                        errorName(static_cast<CUresult>(result));
  if (!kernel.empty())
    message += " (kernel " + kernel + ")";
  return fail(message);
}

std::unique_ptr<Device> Device::open(int ordinal, const void *cubin,
                                     size_t size, std::string &error) {
  std::unique_ptr<Device> device(new Device());
  auto opened = [&]() -> bool {
    Device &d = *device;
    if (!d.check(cuInit(0), "cuInit", ""))
      return false;
    CUdevice handle;
    if (!d.check(cuDeviceGet(&handle, ordinal), "cuDeviceGet", ""))
      return false;
    d.device_ = handle;
    CUcontext context;
    if (!d.check(cuDevicePrimaryCtxRetain(&context, handle),
                 "cuDevicePrimaryCtxRetain", ""))
      return false;
    d.context_ = context;
    if (!d.check(cuCtxSetCurrent(context), "cuCtxSetCurrent", "") ||
        !d.check(cuDeviceGetAttribute(&d.multiprocessors_,
                                      CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT,
                                      handle),
                 "cuDeviceGetAttribute", ""))
      return false;
    CUmodule module;
    if (!d.check(cuModuleLoadData(&module, cubin), "cuModuleLoadData", ""))
      return false;
    d.module_ = module;
    CUdeviceptr status;
    if (!d.check(cuMemAlloc(&status, sizeof(int32_t)), "cuMemAlloc", "") ||
        !d.check(cuMemsetD32(status, 0, 1), "cuMemsetD32", ""))
      return false;
    d.status_ = status;
    const char *programmatic = std::getenv("KVC_PROGRAMMATIC_LAUNCH");
    d.programmatic_ = !programmatic || std::strcmp(programmatic, "0") != 0;
    const char *plan = std::getenv("KVC_DECODE_PLAN");
    return !plan || d.setDecodePlan(plan) ||
           d.fail("KVC_DECODE_PLAN in the environment: " + d.error_);
  };
  (void)size;
  if (!opened()) {
    error = device->error_;
    return nullptr;
  }
  return device;
}

Device::~Device() {
  if (!context_)
    return;
  cuCtxSetCurrent(static_cast<CUcontext>(context_));
  matmul_.reset();
  for (auto &[bytes, blocks] : freeBlocks_)
    for (DevicePtr block : blocks)
      cuMemFree(block);
  for (auto &[block, bytes] : liveBlocks_)
    cuMemFree(block);
  for (void *module : compiledModules_)
    cuModuleUnload(static_cast<CUmodule>(module));
  if (workspace_)
    cuMemFree(workspace_);
  if (tensorMaps_)
    cuMemFree(tensorMaps_);
  for (Staging &slot : staging_) {
    if (slot.done)
      cuEventDestroy(static_cast<CUevent>(slot.done));
    if (slot.host)
      cuMemFreeHost(slot.host);
  }
  if (status_)
    cuMemFree(status_);
  if (module_)
    cuModuleUnload(static_cast<CUmodule>(module_));
  cuDevicePrimaryCtxRelease(device_);
}

void Device::release(DevicePtr ptr) {
  if (ptr)
    cuMemFree(ptr);
}

Cache::~Cache() {
  if (!owned_)
    return;
  device_->release(keys_);
  device_->release(values_);
  device_->release(lengths_);
}

bool Device::function(const std::string &name, void **result) {
  auto it = functions_.find(name);
  if (it != functions_.end()) {
    *result = it->second;
    return true;
  }
  CUfunction function;
  CUresult status = cuModuleGetFunction(
      &function, static_cast<CUmodule>(module_), name.c_str());
  if (status == CUDA_ERROR_NOT_FOUND)
    return fail("the kernel library has no kernel " + name +
                ": build it with kvc-kernels for this head dim, group and "
                "element type");
  if (!check(status, "cuModuleGetFunction", name))
    return false;
  functions_[name] = function;
  *result = function;
  return true;
}

bool Device::residentBlocks(const std::string &kernel, int64_t *blocks,
                            int64_t threads) {
  std::string key = kernel + "/" + std::to_string(threads);
  auto it = residents_.find(key);
  if (it != residents_.end()) {
    *blocks = it->second;
    return true;
  }
  void *f = nullptr;
  if (!function(kernel, &f))
    return false;
  int count = 0;
  KVC_CHECK(cuOccupancyMaxActiveBlocksPerMultiprocessor(
                &count, static_cast<CUfunction>(f), threads, 0),
            kernel);
  *blocks = residents_[key] = std::max(count, 1);
  return true;
}

bool Device::launch(const std::string &kernel, Grid grid, void **args,
                    int64_t cluster, int64_t threads) {
  void *function = nullptr;
  if (!this->function(kernel, &function))
    return false;
  if (grid.x == 0 || grid.y == 0 || grid.z == 0)
    return true;
  const int64_t grid3[3] = {grid.x, grid.y, grid.z}, block[3] = {threads, 1, 1};
  KVC_CHECK(launchKernel(function, grid3, block, 0, args, cluster), kernel);
  return true;
}

int Device::launchKernel(void *function, const int64_t grid[3],
                         const int64_t block[3], int32_t sharedBytes,
                         void **params, int64_t cluster) {
  CUlaunchConfig config = {};
  config.gridDimX = static_cast<unsigned>(grid[0]);
  config.gridDimY = static_cast<unsigned>(grid[1]);
  config.gridDimZ = static_cast<unsigned>(grid[2]);
  config.blockDimX = static_cast<unsigned>(block[0]);
  config.blockDimY = static_cast<unsigned>(block[1]);
  config.blockDimZ = static_cast<unsigned>(block[2]);
  config.sharedMemBytes = static_cast<unsigned>(sharedBytes);
  config.hStream = static_cast<CUstream>(stream_);
  CUlaunchAttribute attributes[2] = {};
  config.attrs = attributes;
  if (programmatic_) {
    CUlaunchAttribute &a = attributes[config.numAttrs++];
    a.id = CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION;
    a.value.programmaticStreamSerializationAllowed = 1;
  }
  if (cluster > 1) {
    CUlaunchAttribute &a = attributes[config.numAttrs++];
    a.id = CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION;
    a.value.clusterDim.x = static_cast<unsigned>(cluster);
    a.value.clusterDim.y = a.value.clusterDim.z = 1;
  }
  return cuLaunchKernelEx(&config, static_cast<CUfunction>(function), params,
                          nullptr);
}

std::unique_ptr<Cache> Device::createCache(const CacheLayout &layout) {
  std::string problem = checkShapes(layout.headDim, 1);
  if (!problem.empty() || layout.batch < 1 || layout.kvHeads < 1 ||
      layout.capacity < 1) {
    fail("cannot create a cache of batch " + std::to_string(layout.batch) +
         ", " + std::to_string(layout.kvHeads) + " kv heads, capacity " +
         std::to_string(layout.capacity) + ": " +
         (problem.empty() ? "sizes must be positive" : problem));
    return nullptr;
  }
  size_t rows = static_cast<size_t>(layout.batch * layout.kvHeads *
                                    layout.capacity * layout.headDim) *
                sizeOf(layout.type);
  CUdeviceptr keys = 0, values = 0, lengths = 0;
  auto allocated = [&]() -> bool {
    KVC_CHECK(cuMemAlloc(&keys, rows), "");
    KVC_CHECK(cuMemAlloc(&values, rows), "");
    KVC_CHECK(cuMemAlloc(&lengths, layout.batch * sizeof(int32_t)), "");
    KVC_CHECK(cuMemsetD32(lengths, 0, layout.batch), "");
    return true;
  };
  if (!allocated()) {
    release(keys);
    release(values);
    release(lengths);
    return nullptr;
  }
  return std::unique_ptr<Cache>(
      new Cache(this, layout, keys, values, lengths, /*owned=*/true));
}

std::unique_ptr<Cache> Device::wrapCache(const CacheLayout &layout,
                                         DevicePtr keys, DevicePtr values,
                                         DevicePtr lengths) {
  return std::unique_ptr<Cache>(
      new Cache(this, layout, keys, values, lengths, /*owned=*/false));
}

bool Device::checkCache(const Cache &cache) {
  std::string problem = checkShapes(cache.layout().headDim, 1);
  if (!problem.empty())
    return fail("cache: " + problem);
  return true;
}

bool Device::ensureWorkspace(int64_t bytes) {
  if (bytes <= workspaceBytes_)
    return true;
  if (workspace_) {
    KVC_CHECK(cuMemFree(workspace_), "");
    workspace_ = 0;
    workspaceBytes_ = 0;
  }
  CUdeviceptr ptr;
  KVC_CHECK(cuMemAlloc(&ptr, bytes), "");
  workspace_ = ptr;
  workspaceBytes_ = bytes;
  return true;
}

bool Device::append(Cache &cache, DevicePtr key, DevicePtr value,
                    DevicePtr positions, int64_t rows, float rotaryTheta) {
  const CacheLayout &c = cache.layout();
  if (!checkCache(cache))
    return false;
  if (rows < 1 || rows > c.capacity)
    return fail("append: " + std::to_string(rows) +
                " rows per sequence do not fit a cache of capacity " +
                std::to_string(c.capacity));
  if (rotaryTheta < 0 || (rotaryTheta > 0 && c.headDim % 16))
    return fail("append: rotary theta " + std::to_string(rotaryTheta) +
                " on head dim " + std::to_string(c.headDim) +
                " (theta must be positive, head dim a multiple of 16)");
  std::string kernel = rotaryTheta > 0 ? appendRotaryKernel(c.headDim, c.type)
                                       : appendKernel(c.headDim, c.type);
  int64_t newRows = c.batch * c.kvHeads * rows * c.headDim;
  int64_t cacheRows = c.batch * c.kvHeads * c.capacity * c.headDim;
  Args args;
  args.memref(key, newRows);
  args.memref(value, newRows);
  args.memref(positions, c.batch);
  args.memref(cache.lengths(), c.batch);
  args.memref(cache.keys(), cacheRows);
  args.memref(cache.values(), cacheRows);
  args.memref(status_, 1);
  args.index(c.kvHeads);
  args.index(rows);
  args.index(c.capacity);
  if (rotaryTheta > 0)
    args.f32(-2.0f * std::log(rotaryTheta) / c.headDim);
  // The kernel also sets each length to position + rows.
  return launch(kernel, planAppend(c.batch, c.kvHeads, rows, c.headDim),
                args.data());
}

bool Device::truncate(Cache &cache, DevicePtr lengths) {
  const CacheLayout &c = cache.layout();
  Args args;
  args.memref(lengths, c.batch);
  args.memref(cache.lengths(), c.batch);
  args.memref(status_, 1);
  args.index(0);
  args.index(c.batch);
  return launch(kSetLengthsKernel, {(c.batch + kBlockSize - 1) / kBlockSize, 1, 1},
                args.data());
}

bool Device::planDecodeAttention(const CacheLayout &c, int64_t qHeads,
                                 int64_t rows, int64_t maxKeys,
                                 DecodeLaunch &launch) {
  if (c.batch < 1 || c.kvHeads < 1)
    return fail("decode attention: batch " + std::to_string(c.batch) +
                " and " + std::to_string(c.kvHeads) +
                " kv heads: both must be positive");
  if (qHeads < 1 || qHeads % c.kvHeads)
    return fail("decode attention: " + std::to_string(qHeads) +
                " query heads are not a multiple of the cache's " +
                std::to_string(c.kvHeads) + " kv heads");
  int64_t group = qHeads / c.kvHeads;
  std::string problem = checkShapes(c.headDim, group);
  if (!problem.empty())
    return fail("decode attention: " + problem);
  if (rows < 1)
    return fail("decode attention: " + std::to_string(rows) +
                " query rows per sequence; at least one is needed");
  maxKeys = std::max<int64_t>(1, std::min(maxKeys, c.capacity));
  std::string split = decodeSplitKernel(c.headDim, group, c.type);
  std::string mma = decodeMmaKernel(c.headDim, group, c.type);
  DecodePlan plan;
  bool tensorCores = false;
  int64_t resident = 0;
  using Kernel = DecodeForce::Kernel;
  bool mmaUsable = c.type != DType::F32 && hasKernel(mma);
  if (decodeForce_.kernel == Kernel::TensorCores && !mmaUsable)
    return fail("decode attention: the decode plan asks for the tensor-core "
                "kernel, which " +
                std::string(c.type == DType::F32
                                ? "takes no f32 caches"
                                : "the kernel library lacks (" + mma + ")"));
  if (mmaUsable) {
    if (!residentBlocks(mma, &resident))
      return false;
    int64_t slots = resident * multiprocessors_;
    plan = planDecodeMma(c.batch, c.kvHeads, group, rows, c.headDim, maxKeys,
                         slots);
    tensorCores = decodeForce_.kernel == Kernel::Plan
                      ? useDecodeMma(group, rows, c.headDim, c.type, plan,
                                     slots)
                      : decodeForce_.kernel == Kernel::TensorCores;
  }
  if (tensorCores) {
    split = mma;
  } else {
    if (!residentBlocks(split, &resident))
      return false;
    plan = planDecode(c.batch, c.kvHeads, group, rows, c.headDim, maxKeys,
                      resident * multiprocessors_);
  }
  applyDecodeForce(plan, decodeForce_, tensorCores, c.batch, c.kvHeads, group,
                   rows, c.headDim, maxKeys);
  launch = {plan.single ? decodeSplitKernel(c.headDim, group, c.type, true)
                        : split,
            tensorCores, plan};
  return true;
}

std::string describe(const DecodeLaunch &launch) {
  const DecodePlan &p = launch.plan;
  auto grid = [](const Grid &g) {
    return std::to_string(g.x) + "x" + std::to_string(g.y) + "x" +
           std::to_string(g.z);
  };
  return "kernel=" + launch.kernel + " splits=" + std::to_string(p.splits) +
         " split_len=" + std::to_string(p.splitLen) +
         " cluster=" + std::to_string(p.cluster) + " grid=" + grid(p.split) +
         " combine=" + (p.combine.x ? grid(p.combine) : std::string("none"));
}

bool Device::decodeAttention(Cache &cache, DevicePtr query, int64_t qHeads,
                             int64_t rows, DevicePtr positions, DevicePtr out,
                             int64_t maxKeys, float scale, bool headsLast) {
  const CacheLayout &c = cache.layout();
  DecodeLaunch decode;
  if (!planDecodeAttention(c, qHeads, rows, maxKeys, decode))
    return false;
  const DecodePlan &plan = decode.plan;
  if (!ensureWorkspace((plan.partialOut + plan.partialMaxSum) * 4))
    return false;
  DevicePtr partialOut = workspace_;
  DevicePtr partialMaxSum = workspace_ + plan.partialOut * 4;
  int64_t queryElements = c.batch * qHeads * rows * c.headDim;
  int64_t cacheRows = c.batch * c.kvHeads * c.capacity * c.headDim;
  Args args;
  args.memref(query, queryElements);
  args.memref(cache.keys(), cacheRows);
  args.memref(cache.values(), cacheRows);
  args.memref(cache.lengths(), c.batch);
  args.memref(positions, c.batch);
  args.memref(partialOut, plan.partialOut);
  args.memref(partialMaxSum, plan.partialMaxSum);
  args.index(rows);
  args.index(c.capacity);
  args.index(plan.splitLen);
  args.index(plan.splits);
  args.f32(scale);
  if (decode.tensorCores) {
    // With all splits in one cluster the kernel writes the output itself.
    args.memref(out, queryElements);
    args.index(headsLast ? 1 : 0);
  }
  if (!launch(decode.kernel, plan.split, args.data(), plan.cluster))
    return false;
  if (plan.combine.x == 0)
    return true;
  Args combine;
  combine.memref(partialOut, plan.partialOut);
  combine.memref(partialMaxSum, plan.partialMaxSum);
  combine.memref(out, queryElements);
  combine.index(plan.splits);
  combine.index(qHeads);
  combine.index(rows);
  combine.index(headsLast ? 1 : 0);
  return launch(decodeCombineKernel(c.headDim, c.type), plan.combine,
                combine.data());
}

bool Device::prefillAttention(DevicePtr query, DevicePtr key, DevicePtr value,
                              DevicePtr out, int64_t batch, int64_t qHeads,
                              int64_t kvHeads, int64_t seq, int64_t headDim,
                              DType type, float scale) {
  if (batch < 1 || seq < 1 || kvHeads < 1 || qHeads % kvHeads)
    return fail("prefill attention: batch " + std::to_string(batch) +
                ", sequence " + std::to_string(seq) + ", " +
                std::to_string(qHeads) + " query heads on " +
                std::to_string(kvHeads) + " kv heads");
  std::string problem = checkShapes(headDim, qHeads / kvHeads);
  if (!problem.empty())
    return fail("prefill attention: " + problem);
  std::string kernel = prefillKernel(headDim, qHeads / kvHeads, type);
  if (type == DType::F32 || !hasKernel(kernel))
    return prefillByDecode(query, key, value, out, batch, qHeads, kvHeads, seq,
                           headDim, type, scale);
  // The kernel loads its tiles with the tensor memory accelerator: a map
  // per operand, [B * heads, seq, head dim] in 64 x 64 x 1 boxes with the
  // 128-byte swizzle its wgmma products read (rows past a sequence's end
  // come in as zeros), in device memory it reads them from.
  CUtensorMap maps[3];
  auto encode = [&](CUtensorMap *map, DevicePtr base, int64_t heads) {
    cuuint64_t row = static_cast<cuuint64_t>(headDim * sizeOf(type));
    cuuint64_t dims[3] = {static_cast<cuuint64_t>(headDim),
                          static_cast<cuuint64_t>(seq),
                          static_cast<cuuint64_t>(heads)};
    cuuint64_t strides[2] = {row, row * static_cast<cuuint64_t>(seq)};
    cuuint32_t box[3] = {64, kPrefillRows, 1}, unit[3] = {1, 1, 1};
    KVC_CHECK(cuTensorMapEncodeTiled(
                  map,
                  type == DType::BF16 ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16
                                      : CU_TENSOR_MAP_DATA_TYPE_FLOAT16,
                  3, reinterpret_cast<void *>(base), dims, strides, box, unit,
                  CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                  CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                  CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE),
              kernel);
    return true;
  };
  if (!encode(&maps[0], query, batch * qHeads) ||
      !encode(&maps[1], key, batch * kvHeads) ||
      !encode(&maps[2], value, batch * kvHeads))
    return false;
  if (!tensorMaps_) {
    CUdeviceptr ptr;
    KVC_CHECK(cuMemAlloc(&ptr, sizeof(maps)), kernel);
    tensorMaps_ = ptr;
  }
  // From pageable memory: staged before the call returns, so `maps` may go.
  KVC_CHECK(cuMemcpyHtoDAsync(tensorMaps_, maps, sizeof(maps),
                              static_cast<CUstream>(stream_)),
            kernel);
  Args args;
  args.memref(tensorMaps_, sizeof(maps) / 8);
  args.memref(out, batch * qHeads * seq * headDim);
  args.index(seq);
  args.f32(scale);
  return launch(kernel, {(seq + kPrefillRows - 1) / kPrefillRows, qHeads, batch},
                args.data());
}

// Where no tensor-core kernel applies (f32, head dims not a multiple of
// 64): the keys and values of a whole sequence are a cache of capacity `seq`
// holding `seq` rows, and causal attention over them is decode attention of
// all `seq` rows from position 0.
bool Device::prefillByDecode(DevicePtr query, DevicePtr key, DevicePtr value,
                             DevicePtr out, int64_t batch, int64_t qHeads,
                             int64_t kvHeads, int64_t seq, int64_t headDim,
                             DType type, float scale) {
  DevicePtr lengths = 0, positions = 0;
  auto run = [&]() -> bool {
    if (!allocate(batch * 4, &lengths) || !allocate(batch * 4, &positions))
      return false;
    CUstream stream = static_cast<CUstream>(stream_);
    KVC_CHECK(cuMemsetD32Async(lengths, static_cast<unsigned>(seq), batch,
                               stream), "");
    KVC_CHECK(cuMemsetD32Async(positions, 0, batch, stream), "");
    Cache cache(this, {batch, kvHeads, seq, headDim, type}, key, value,
                lengths, /*owned=*/false);
    return decodeAttention(cache, query, qHeads, seq, positions, out, seq,
                           scale);
  };
  bool ok = run();
  deallocate(lengths);
  deallocate(positions);
  return ok;
}

bool Device::setDecodePlan(const std::string &text) {
  std::string problem = parseDecodeForce(text, decodeForce_);
  return problem.empty() || fail("decode plan '" + text + "': " + problem);
}

bool Device::hasKernel(const std::string &name) {
  if (functions_.count(name))
    return true;
  if (absentKernels_.count(name))
    return false;
  CUfunction function;
  if (cuModuleGetFunction(&function, static_cast<CUmodule>(module_),
                          name.c_str()) != CUDA_SUCCESS) {
    absentKernels_.insert(name);
    return false;
  }
  functions_[name] = function;
  return true;
}

bool Device::projection(DevicePtr x, DevicePtr w, DevicePtr out, int64_t m,
                        int64_t n, int64_t k, DType type, DType outType,
                        bool *done) {
  std::string kernel = projectionKernel(m, n, k, type, outType);
  *done = !kernel.empty() && (x | w) % 16 == 0 && hasKernel(kernel);
  int64_t tiles = (n + kGemm16Block - 1) / kGemm16Block;
  if (*done && m > 1) {
    // kvc_gemm16 only where its blocks fit in one wave (see
    // projectionKernel).
    int64_t resident = 0;
    if (!residentBlocks(kernel, &resident, kGemm16Threads))
      return false;
    *done = tiles <= resident * multiprocessors_;
  }
  if (!*done)
    return true;
  Args args;
  args.memref(x, m * k);
  args.memref(w, n * k);
  args.memref(out, m * n);
  if (m == 1) {
    args.index(n);
    args.index(k);
    // A row of w per warp.
    return launch(kernel,
                  {(n + kBlockSize / 32 - 1) / (kBlockSize / 32), 1, 1},
                  args.data());
  }
  args.index(m);
  args.index(n);
  args.index(k);
  return launch(kernel, {tiles, 1, 1}, args.data(), 1, kGemm16Threads);
}

bool Device::argmax(DevicePtr logits, int64_t rows, int64_t vocab, DType type,
                    DevicePtr out) {
  if (type == DType::F16)
    return fail("argmax: f16 logits are not supported (f32, bf16)");
  Args args;
  args.memref(logits, rows * vocab);
  args.memref(out, rows);
  args.index(vocab);
  return launch(argmaxKernel(type), {rows, 1, 1}, args.data());
}

bool Device::copyLengths(const Cache &cache, DevicePtr out) {
  KVC_CHECK(cuMemcpyDtoDAsync(out, cache.lengths(),
                              cache.layout().batch * sizeof(int32_t),
                              static_cast<CUstream>(stream_)),
            "");
  return true;
}

bool Device::synchronize() {
  KVC_CHECK(cuStreamSynchronize(static_cast<CUstream>(stream_)),
            "the kernels launched since the last synchronize");
  int32_t status = 0;
  KVC_CHECK(cuMemcpyDtoH(&status, status_, sizeof(status)), "");
  return checkStatus(status);
}

bool Device::checkStatus(int32_t status) {
  if (status == 0)
    return true;
  KVC_CHECK(cuMemsetD32(status_, 0, 1), "");
  if (status == 1)
    return fail("kvc_append: a position lies outside [0, length] or the new "
                "rows pass the cache capacity");
  return fail("kvc_set_lengths: a truncation length lies outside [0, "
              "length]");
}

} // namespace kvc::rt
