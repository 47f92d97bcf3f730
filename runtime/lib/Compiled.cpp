//===- Compiled.cpp - what compiled models need of a Device ----------------===//
//
// Buffers, dense projections, kernel modules and launches of the code
// kvc-compile writes, and CUDA graphs of whole steps.
//
//===----------------------------------------------------------------------===//
#include "kvc/rt/Runtime.h"
#include "Matmul.h"

#include <cuda.h>

#include <cstring>

namespace kvc::rt {

#define KVC_CHECK(call)                                                        \
  do {                                                                         \
    if (!check(static_cast<int>(call), #call, ""))                             \
      return false;                                                            \
  } while (0)

bool Device::allocate(int64_t bytes, DevicePtr *ptr) {
  // Round to 512 bytes: more reuse, 16-byte vector accesses stay aligned.
  bytes = (std::max<int64_t>(bytes, 1) + 511) / 512 * 512;
  std::vector<DevicePtr> &blocks = freeBlocks_[bytes];
  if (!blocks.empty()) {
    *ptr = blocks.back();
    blocks.pop_back();
  } else {
    CUdeviceptr block;
    CUresult status = cuMemAlloc(&block, bytes);
    if (status == CUDA_ERROR_OUT_OF_MEMORY) {
      // Give the cached blocks back and try once more.
      KVC_CHECK(cuStreamSynchronize(static_cast<CUstream>(stream_)));
      for (auto &[size, cached] : freeBlocks_)
        for (DevicePtr b : cached)
          cuMemFree(b);
      freeBlocks_.clear();
      status = cuMemAlloc(&block, bytes);
    }
    if (status != CUDA_SUCCESS)
      return check(status, ("cuMemAlloc of " + std::to_string(bytes) +
                            " bytes for a model buffer").c_str(),
                   "");
    *ptr = block;
  }
  liveBlocks_[*ptr] = bytes;
  return true;
}

void Device::deallocate(DevicePtr ptr) {
  auto it = liveBlocks_.find(ptr);
  if (it == liveBlocks_.end())
    return;
  freeBlocks_[it->second].push_back(ptr);
  liveBlocks_.erase(it);
}

bool Device::matmul(DevicePtr x, DevicePtr w, DevicePtr out, int64_t m,
                    int64_t n, int64_t k, DType type, DType outType) {
  bool done = false;
  if (!projection(x, w, out, m, n, k, type, outType, &done))
    return false;
  if (done)
    return true;
  if (!matmul_) {
    std::string error;
    matmul_ = Matmul::create(error);
    if (!matmul_)
      return fail(error);
  }
  std::string error;
  if (!matmul_->run(x, w, out, m, n, k, type, outType, stream_, error))
    return fail(error);
  return true;
}

bool Device::loadModule(const void *image, void **module) {
  CUmodule loaded;
  KVC_CHECK(cuModuleLoadData(&loaded, image));
  compiledModules_.push_back(loaded);
  *module = loaded;
  return true;
}

bool Device::compiledFunction(void *module, const char *name,
                              void **function) {
  // Compiled code asks at every launch, with the same name string.
  auto key = std::make_pair(module, name);
  auto it = compiledFunctions_.find(key);
  if (it != compiledFunctions_.end()) {
    *function = it->second;
    return true;
  }
  CUfunction f;
  if (!check(cuModuleGetFunction(&f, static_cast<CUmodule>(module), name),
             "cuModuleGetFunction", name))
    return false;
  *function = compiledFunctions_[key] = f;
  return true;
}

bool Device::copy(DevicePtr dst, const void *src, int64_t bytes) {
  KVC_CHECK(cuMemcpyHtoDAsync(dst, src, bytes, static_cast<CUstream>(stream_)));
  return true;
}

bool Device::copyOnDevice(DevicePtr dst, DevicePtr src, int64_t bytes) {
  KVC_CHECK(cuMemcpyDtoDAsync(dst, src, bytes, static_cast<CUstream>(stream_)));
  return true;
}

bool Device::copyToHost(void *dst, DevicePtr src, int64_t bytes) {
  KVC_CHECK(cuStreamSynchronize(static_cast<CUstream>(stream_)));
  KVC_CHECK(cuMemcpyDtoH(dst, src, bytes));
  return true;
}

bool Device::stage(int slot, DevicePtr src, int64_t bytes) {
  if (slot < 0 || slot >= kStagingSlots || bytes < 0)
    return fail("stage: slot " + std::to_string(slot) + " of " +
                std::to_string(kStagingSlots) + ", " + std::to_string(bytes) +
                " bytes");
  Staging &s = staging_[slot];
  if (!s.done) {
    CUevent event;
    KVC_CHECK(cuEventCreate(&event, CU_EVENT_DISABLE_TIMING));
    s.done = event;
  }
  // The bytes, then the kernels' check status (int32).
  const int64_t size = bytes + static_cast<int64_t>(sizeof(int32_t));
  if (size > s.capacity) {
    // The slot's last copy may still be writing the old memory.
    KVC_CHECK(cuEventSynchronize(static_cast<CUevent>(s.done)));
    if (s.host)
      KVC_CHECK(cuMemFreeHost(s.host));
    s.host = nullptr;
    s.capacity = 0;
    KVC_CHECK(cuMemAllocHost(&s.host, size));
    s.capacity = size;
  }
  CUstream stream = static_cast<CUstream>(stream_);
  if (bytes)
    KVC_CHECK(cuMemcpyDtoHAsync(s.host, src, bytes, stream));
  KVC_CHECK(cuMemcpyDtoHAsync(static_cast<char *>(s.host) + bytes, status_,
                              sizeof(int32_t), stream));
  KVC_CHECK(cuEventRecord(static_cast<CUevent>(s.done), stream));
  s.bytes = bytes;
  return true;
}

bool Device::staged(int slot, const void **data) {
  if (slot < 0 || slot >= kStagingSlots || !staging_[slot].done)
    return fail("staged: slot " + std::to_string(slot) +
                " was never staged");
  const Staging &s = staging_[slot];
  KVC_CHECK(cuEventSynchronize(static_cast<CUevent>(s.done)));
  int32_t status;
  std::memcpy(&status, static_cast<const char *>(s.host) + s.bytes,
              sizeof(status));
  *data = s.host;
  return checkStatus(status);
}

bool Device::launchCompiled(void *function, const int64_t grid[3],
                            const int64_t block[3], int32_t sharedBytes,
                            void **params) {
  if (!grid[0] || !grid[1] || !grid[2])
    return true;
  int status = launchKernel(function, grid, block, sharedBytes, params);
  if (status == CUDA_SUCCESS)
    return true;
  const char *name = "a compiled kernel";
  cuFuncGetName(&name, static_cast<CUfunction>(function));
  return check(status, "cuLaunchKernelEx", name);
}

bool Device::beginCapture() {
  if (!stream_) {
    // The legacy default stream cannot be captured.
    CUstream stream;
    KVC_CHECK(cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING));
    stream_ = stream;
  }
  KVC_CHECK(cuStreamBeginCapture(static_cast<CUstream>(stream_),
                                 CU_STREAM_CAPTURE_MODE_RELAXED));
  return true;
}

bool Device::endCapture(void **graph) {
  CUgraph captured;
  KVC_CHECK(cuStreamEndCapture(static_cast<CUstream>(stream_), &captured));
  CUgraphExec exec;
  CUresult status = cuGraphInstantiate(&exec, captured, 0);
  cuGraphDestroy(captured);
  KVC_CHECK(status);
  *graph = exec;
  return true;
}

bool Device::replay(void *graph) {
  KVC_CHECK(cuGraphLaunch(static_cast<CUgraphExec>(graph),
                          static_cast<CUstream>(stream_)));
  return true;
}

void Device::destroyGraph(void *graph) {
  if (graph)
    cuGraphExecDestroy(static_cast<CUgraphExec>(graph));
}

} // namespace kvc::rt
