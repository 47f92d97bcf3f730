//===- Runtime.h - kvc's GPU runtime over the CUDA driver API ---*- C++ -*-===//
//
// Loads the kernels kvc compiled (a cubin), owns device caches and launches
// cache appends and decode attention on one stream. Every CUDA call is
// checked; a failure is reported with the call and the kernel it served, and
// the kernels' own checks (a bad position, a truncation past the length)
// come back through a status word read at synchronize(). No MLIR here.
//
//===----------------------------------------------------------------------===//
#ifndef KVC_RT_RUNTIME_H
#define KVC_RT_RUNTIME_H

#include "kvc/rt/Plan.h"

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace kvc::rt {

/// Device memory addresses as the driver API spells them.
using DevicePtr = uint64_t;

/// Where a sequence's keys, values and length live: `[batch, kvHeads,
/// capacity, headDim]` twice and `[batch]` i32.
struct CacheLayout {
  int64_t batch = 0, kvHeads = 0, capacity = 0, headDim = 0;
  DType type = DType::BF16;
};

/// How a decode attention runs: its split kernel, whether that is the
/// tensor-core one, and its plan (Plan.h).
struct DecodeLaunch {
  std::string kernel;
  bool tensorCores = false;
  DecodePlan plan;
};
/// `launch` in one line of key=value items: the kernel, splits, split_len,
/// cluster, the split kernel's grid and the combine's (or none).
std::string describe(const DecodeLaunch &launch);

class Device;
class Matmul;

/// A key/value cache. Either owned (allocated by Device::createCache, zero
/// lengths) or wrapping memory someone else allocated.
class Cache {
public:
  ~Cache();
  Cache(const Cache &) = delete;
  Cache &operator=(const Cache &) = delete;

  const CacheLayout &layout() const { return layout_; }
  DevicePtr keys() const { return keys_; }
  DevicePtr values() const { return values_; }
  DevicePtr lengths() const { return lengths_; }

private:
  friend class Device;
class Matmul;
  Cache(Device *device, CacheLayout layout, DevicePtr keys, DevicePtr values,
        DevicePtr lengths, bool owned)
      : device_(device), layout_(layout), keys_(keys), values_(values),
        lengths_(lengths), owned_(owned) {}
  Device *device_;
  CacheLayout layout_;
  DevicePtr keys_, values_, lengths_;
  bool owned_;
};

class Device {
public:
  /// Opens GPU `ordinal` (its primary context, shared with other CUDA users
  /// of the process) and loads `cubin`. Null on failure, with `error` set.
  static std::unique_ptr<Device> open(int ordinal, const void *cubin,
                                      size_t size, std::string &error);
  ~Device();
  Device(const Device &) = delete;
  Device &operator=(const Device &) = delete;

  /// The last error, empty if none.
  const std::string &error() const { return error_; }
  int multiprocessors() const { return multiprocessors_; }
  /// Launches go to `stream` (a CUstream; 0 is the legacy default stream).
  void setStream(void *stream) { stream_ = stream; }
  /// Forces parts of every decode's plan from now on (parseDecodeForce's
  /// text; "" forces nothing); false, with the reason as the error, if the
  /// text is not one. Opening a device takes KVC_DECODE_PLAN from the
  /// environment.
  bool setDecodePlan(const std::string &text);

  std::unique_ptr<Cache> createCache(const CacheLayout &layout);
  std::unique_ptr<Cache> wrapCache(const CacheLayout &layout, DevicePtr keys,
                                   DevicePtr values, DevicePtr lengths);

  /// Writes `rows` new rows per sequence (`key`, `value`: [batch, kvHeads,
  /// rows, headDim]) at `positions` ([batch] i32) and sets each length to
  /// position + rows. With `rotaryTheta` > 0 the keys are rotated to their
  /// positions on the way (kvc.cache.append {rotary_theta}).
  bool append(Cache &cache, DevicePtr key, DevicePtr value,
              DevicePtr positions, int64_t rows, float rotaryTheta = 0);
  /// Sets each length to `lengths[b]`, which must not exceed it.
  bool truncate(Cache &cache, DevicePtr lengths);
  /// `out` [batch, qHeads, rows, headDim] = attention of `query` (same
  /// shape) at `positions` over the cache: row t of sequence b sees cache
  /// rows j < min(positions[b] + t + 1, length[b]). `maxKeys` bounds that
  /// over the batch (the capacity will do); it sizes the split. With
  /// `headsLast`, `out` is [batch, rows, qHeads, headDim].
  bool decodeAttention(Cache &cache, DevicePtr query, int64_t qHeads,
                       int64_t rows, DevicePtr positions, DevicePtr out,
                       int64_t maxKeys, float scale, bool headsLast = false);
  /// What decodeAttention would launch for a cache of layout `c` (the
  /// planners' choice on this GPU, and any forced plan), without running
  /// it; false, with the reason, where it would refuse.
  bool planDecodeAttention(const CacheLayout &c, int64_t qHeads, int64_t rows,
                           int64_t maxKeys, DecodeLaunch &launch);
  /// Causal attention over whole sequences: `query`, `out` [batch, qHeads,
  /// seq, headDim], `key`, `value` [batch, kvHeads, seq, headDim].
  bool prefillAttention(DevicePtr query, DevicePtr key, DevicePtr value,
                        DevicePtr out, int64_t batch, int64_t qHeads,
                        int64_t kvHeads, int64_t seq, int64_t headDim,
                        DType type, float scale);
  /// Copies the [batch] i32 lengths to `out`.
  bool copyLengths(const Cache &cache, DevicePtr out);
  /// Waits for the stream and reports the kernels' own checks.
  bool synchronize();

  // What compiled models need besides the cache ops.

  /// Device memory for a model's buffers. Freed blocks are kept by size and
  /// handed out again: every launch goes to one stream, so reuse in stream
  /// order is safe, and a step run again with the same shapes allocates
  /// nothing (what capturing it in a CUDA graph needs).
  bool allocate(int64_t bytes, DevicePtr *ptr);
  void deallocate(DevicePtr ptr);
  /// `out[m, n] = sum_k x[m, k] w[n, k]`, row-major (w as Hugging Face
  /// stores projections), f32 accumulation; `out` is of `outType` (`type`
  /// or f32). Through cuBLASLt, or kvc's kernel where projectionKernel()
  /// names one.
  bool matmul(DevicePtr x, DevicePtr w, DevicePtr out, int64_t m, int64_t n,
              int64_t k, DType type, DType outType);
  /// `out[r]` = the index of the largest of the `vocab` logits of row r (the
  /// first on a tie): greedy decoding without copying logits to the host.
  bool argmax(DevicePtr logits, int64_t rows, int64_t vocab, DType type,
              DevicePtr out);
  /// Loads a module of kernels compiled with a model; kept until close.
  bool loadModule(const void *image, void **module);
  bool compiledFunction(void *module, const char *name, void **function);
  /// Copies on the stream; copyToHost waits for it.
  bool copy(DevicePtr dst, const void *src, int64_t bytes);
  bool copyOnDevice(DevicePtr dst, DevicePtr src, int64_t bytes);
  bool copyToHost(void *dst, DevicePtr src, int64_t bytes);
  /// Copies `bytes` at `src` into host staging slot `slot` (0 to
  /// kStagingSlots - 1, page-locked memory the device keeps) once the work
  /// given to the stream so far is done, without waiting for it; staged()
  /// waits for that copy and gives its bytes, valid until the slot is
  /// staged again. So a step's results are read while the next step runs.
  /// The kernels' own checks travel with the bytes: staged() fails as
  /// synchronize() would if one had failed by then.
  bool stage(int slot, DevicePtr src, int64_t bytes);
  bool staged(int slot, const void **data);
  static constexpr int kStagingSlots = 4;
  /// Launches `function` of such a module on the device's stream.
  bool launchCompiled(void *function, const int64_t grid[3],
                      const int64_t block[3], int32_t sharedBytes,
                      void **params);
  void *stream() const { return stream_; }
  /// Starts and ends capturing the stream's work into a CUDA graph, and
  /// replays it.
  bool beginCapture();
  bool endCapture(void **graph);
  bool replay(void *graph);
  void destroyGraph(void *graph);

private:
  Device() = default;
  bool fail(const std::string &message);
  /// Fails with the message of a kernels' check status (0: none failed),
  /// clearing it on the device.
  bool checkStatus(int32_t status);
  bool check(int result, const char *call, const std::string &kernel);
  bool function(const std::string &name, void **result);
  /// Launches `kernel` in blocks of `threads`, in clusters of `cluster`
  /// blocks along x (grid.x a multiple of it).
  bool launch(const std::string &kernel, Grid grid, void **args,
              int64_t cluster = 1, int64_t threads = kBlockSize);
  /// Launches a kvc kernel: as a programmatic dependent launch (it starts
  /// with griddepcontrol.wait, see kvc/Conversion/Utils.h), unless the
  /// environment sets KVC_PROGRAMMATIC_LAUNCH=0.
  int launchKernel(void *function, const int64_t grid[3],
                   const int64_t block[3], int32_t sharedBytes, void **params,
                   int64_t cluster = 1);
  /// Blocks of `kernel` (of `threads`) one multiprocessor runs at once.
  bool residentBlocks(const std::string &kernel, int64_t *blocks,
                      int64_t threads = kBlockSize);
  bool ensureWorkspace(int64_t bytes);
  bool checkCache(const Cache &cache);

  /// `kernel` is in the library (no error if not). Both answers are kept:
  /// the decode path asks for kernels a library may lack at every call.
  bool hasKernel(const std::string &kernel);
  /// A projection of few rows through kvc's kernel; `done` is false (and
  /// nothing launched) where it does not apply.
  bool projection(DevicePtr x, DevicePtr w, DevicePtr out, int64_t m,
                  int64_t n, int64_t k, DType type, DType outType, bool *done);
  bool prefillByDecode(DevicePtr query, DevicePtr key, DevicePtr value,
                       DevicePtr out, int64_t batch, int64_t qHeads,
                       int64_t kvHeads, int64_t seq, int64_t headDim,
                       DType type, float scale);

  void *context_ = nullptr, *module_ = nullptr, *stream_ = nullptr;
  std::unique_ptr<Matmul> matmul_;
  std::vector<void *> compiledModules_;
  std::map<std::pair<void *, const char *>, void *> compiledFunctions_;
  std::map<int64_t, std::vector<DevicePtr>> freeBlocks_;
  std::map<DevicePtr, int64_t> liveBlocks_;
  int device_ = 0, multiprocessors_ = 0;
  bool programmatic_ = true;
  DecodeForce decodeForce_;
  DevicePtr status_ = 0, workspace_ = 0;
  int64_t workspaceBytes_ = 0;
  /// The prefill kernel's tensor maps (3 x 128 bytes).
  DevicePtr tensorMaps_ = 0;
  struct Staging {
    void *host = nullptr, *done = nullptr; // page-locked memory, CUevent
    int64_t bytes = 0, capacity = 0;
  };
  Staging staging_[kStagingSlots];
  std::map<std::string, void *> functions_;
  /// Kernels hasKernel found missing from the library.
  std::set<std::string> absentKernels_;
  /// Resident blocks per SM by "kernel/threads".
  std::map<std::string, int64_t> residents_;
  std::string error_;
  friend class Cache;
  void release(DevicePtr ptr);
};

} // namespace kvc::rt

#endif // KVC_RT_RUNTIME_H
