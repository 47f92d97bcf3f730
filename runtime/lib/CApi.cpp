//===- CApi.cpp - C API of kvc's GPU runtime -------------------------------===//
#include "kvc/rt/kvc_rt.h"
#include "kvc/rt/Runtime.h"
#include "kvc/rt/SafeTensors.h"

#include <cstdio>
#include <fstream>
#include <iterator>
#include <vector>

using namespace kvc::rt;

struct kvc_rt_device {
  std::unique_ptr<Device> device;
  std::string error;
};

struct kvc_rt_cache {
  std::unique_ptr<Cache> cache;
};

static thread_local std::string openError;

static int result(kvc_rt_device *d, bool ok) {
  if (!ok)
    d->error = d->device->error();
  return ok ? 0 : 1;
}

/// The DType of the C API's code `type`; false, with the reason as the
/// device's error, for an unknown code.
static bool toType(kvc_rt_device *d, int type, DType *out) {
  switch (type) {
  case KVC_RT_F16:
    *out = DType::F16;
    return true;
  case KVC_RT_BF16:
    *out = DType::BF16;
    return true;
  case KVC_RT_F32:
    *out = DType::F32;
    return true;
  }
  d->error = "unknown element type " + std::to_string(type) +
             " (KVC_RT_F16, KVC_RT_BF16, KVC_RT_F32)";
  return false;
}

extern "C" {

int kvc_rt_check_weights(const char *manifest_path, const char *weights_path,
                         const char **problems) {
  static thread_local std::string text;
  std::ifstream file(manifest_path);
  if (!file) {
    text = std::string("cannot read the manifest ") + manifest_path;
    *problems = text.c_str();
    return 1;
  }
  std::string json((std::istreambuf_iterator<char>(file)),
                   std::istreambuf_iterator<char>());
  Manifest manifest;
  if (!parseManifest(json, manifest, text)) {
    text = std::string(manifest_path) + ": " + text;
    *problems = text.c_str();
    return 1;
  }
  std::unique_ptr<SafeTensors> weights = SafeTensors::open(weights_path, text);
  if (!weights) {
    *problems = text.c_str();
    return 1;
  }
  text = weights->check(manifest.weights);
  *problems = text.c_str();
  return text.empty() ? 0 : 1;
}

const char *kvc_rt_error(const kvc_rt_device *device) {
  return device ? device->error.c_str() : openError.c_str();
}

int kvc_rt_open(int ordinal, const void *cubin, size_t size,
                kvc_rt_device **device) {
  std::string error;
  std::unique_ptr<Device> opened = Device::open(ordinal, cubin, size, error);
  if (!opened) {
    openError = error;
    return 1;
  }
  *device = new kvc_rt_device{std::move(opened), ""};
  return 0;
}

int kvc_rt_open_file(int ordinal, const char *path, kvc_rt_device **device) {
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    openError = std::string("cannot read the kernel library ") + path;
    return 1;
  }
  std::vector<char> bytes((std::istreambuf_iterator<char>(file)),
                          std::istreambuf_iterator<char>());
  return kvc_rt_open(ordinal, bytes.data(), bytes.size(), device);
}

void kvc_rt_close(kvc_rt_device *device) { delete device; }

void kvc_rt_set_stream(kvc_rt_device *device, void *stream) {
  device->device->setStream(stream);
}

int kvc_rt_multiprocessors(const kvc_rt_device *device) {
  return device->device->multiprocessors();
}

int kvc_rt_set_decode_plan(kvc_rt_device *device, const char *plan) {
  return result(device, device->device->setDecodePlan(plan ? plan : ""));
}

static int makeCache(kvc_rt_device *device, CacheLayout layout, int type,
                     bool wrap, uint64_t keys, uint64_t values,
                     uint64_t lengths, kvc_rt_cache **cache) {
  if (!toType(device, type, &layout.type))
    return 1;
  std::unique_ptr<Cache> made =
      wrap ? device->device->wrapCache(layout, keys, values, lengths)
           : device->device->createCache(layout);
  if (!made)
    return result(device, false);
  *cache = new kvc_rt_cache{std::move(made)};
  return 0;
}

int kvc_rt_cache_create(kvc_rt_device *device, int64_t batch, int64_t kv_heads,
                        int64_t capacity, int64_t head_dim, int type,
                        kvc_rt_cache **cache) {
  return makeCache(device, {batch, kv_heads, capacity, head_dim, DType::BF16},
                   type, false, 0, 0, 0, cache);
}

int kvc_rt_cache_wrap(kvc_rt_device *device, int64_t batch, int64_t kv_heads,
                      int64_t capacity, int64_t head_dim, int type,
                      uint64_t keys, uint64_t values, uint64_t lengths,
                      kvc_rt_cache **cache) {
  return makeCache(device, {batch, kv_heads, capacity, head_dim, DType::BF16},
                   type, true, keys, values, lengths, cache);
}

void kvc_rt_cache_destroy(kvc_rt_cache *cache) { delete cache; }
uint64_t kvc_rt_cache_keys(const kvc_rt_cache *c) { return c->cache->keys(); }
uint64_t kvc_rt_cache_values(const kvc_rt_cache *c) {
  return c->cache->values();
}
uint64_t kvc_rt_cache_lengths(const kvc_rt_cache *c) {
  return c->cache->lengths();
}

int kvc_rt_append(kvc_rt_device *device, kvc_rt_cache *cache, uint64_t key,
                  uint64_t value, uint64_t positions, int64_t rows) {
  return result(device, device->device->append(*cache->cache, key, value,
                                               positions, rows));
}

int kvc_rt_append_rotary(kvc_rt_device *device, kvc_rt_cache *cache,
                         uint64_t key, uint64_t value, uint64_t positions,
                         int64_t rows, float theta) {
  return result(device, device->device->append(*cache->cache, key, value,
                                               positions, rows, theta));
}

int kvc_rt_truncate(kvc_rt_device *device, kvc_rt_cache *cache,
                    uint64_t lengths) {
  return result(device, device->device->truncate(*cache->cache, lengths));
}

int kvc_rt_decode_attention(kvc_rt_device *device, kvc_rt_cache *cache,
                            uint64_t query, int64_t q_heads, int64_t rows,
                            uint64_t positions, uint64_t out, int64_t max_keys,
                            float scale, int heads_last) {
  return result(device, device->device->decodeAttention(
                            *cache->cache, query, q_heads, rows, positions,
                            out, max_keys, scale, heads_last != 0));
}

int kvc_rt_describe_decode(kvc_rt_device *device, int64_t batch,
                           int64_t kv_heads, int64_t q_heads, int64_t rows,
                           int64_t head_dim, int type, int64_t max_keys,
                           char *text, size_t size) {
  CacheLayout layout{batch, kv_heads, max_keys, head_dim};
  if (!toType(device, type, &layout.type))
    return 1;
  DecodeLaunch launch;
  if (!device->device->planDecodeAttention(layout, q_heads, rows, max_keys,
                                           launch))
    return result(device, false);
  std::string line = describe(launch);
  if (text && size)
    std::snprintf(text, size, "%s", line.c_str());
  return 0;
}

int kvc_rt_prefill_attention(kvc_rt_device *device, uint64_t query,
                             uint64_t key, uint64_t value, uint64_t out,
                             int64_t batch, int64_t q_heads, int64_t kv_heads,
                             int64_t seq, int64_t head_dim, int type,
                             float scale) {
  DType dtype;
  if (!toType(device, type, &dtype))
    return 1;
  return result(device, device->device->prefillAttention(
                            query, key, value, out, batch, q_heads, kv_heads,
                            seq, head_dim, dtype, scale));
}

int kvc_rt_matmul(kvc_rt_device *device, uint64_t x, uint64_t w, uint64_t out,
                  int64_t m, int64_t n, int64_t k, int type, int out_type) {
  DType in, outType;
  if (!toType(device, type, &in) || !toType(device, out_type, &outType))
    return 1;
  return result(device,
                device->device->matmul(x, w, out, m, n, k, in, outType));
}

int kvc_rt_argmax(kvc_rt_device *device, uint64_t logits, int64_t rows,
                  int64_t vocab, int type, uint64_t out) {
  DType dtype;
  if (!toType(device, type, &dtype))
    return 1;
  return result(device,
                device->device->argmax(logits, rows, vocab, dtype, out));
}

int kvc_rt_synchronize(kvc_rt_device *device) {
  return result(device, device->device->synchronize());
}

int kvc_rt_alloc(kvc_rt_device *device, int64_t bytes, uint64_t *ptr) {
  return result(device, device->device->allocate(bytes, ptr));
}

void kvc_rt_free(kvc_rt_device *device, uint64_t ptr) {
  device->device->deallocate(ptr);
}

int kvc_rt_copy_to_device(kvc_rt_device *device, uint64_t dst,
                          const void *src, int64_t bytes) {
  return result(device, device->device->copy(dst, src, bytes));
}

int kvc_rt_copy_on_device(kvc_rt_device *device, uint64_t dst, uint64_t src,
                          int64_t bytes) {
  return result(device, device->device->copyOnDevice(dst, src, bytes));
}

int kvc_rt_copy_to_host(kvc_rt_device *device, void *dst, uint64_t src,
                        int64_t bytes) {
  return result(device, device->device->copyToHost(dst, src, bytes));
}

int kvc_rt_stage_to_host(kvc_rt_device *device, int slot, uint64_t src,
                         int64_t bytes) {
  return result(device, device->device->stage(slot, src, bytes));
}

int kvc_rt_staged(kvc_rt_device *device, int slot, const void **data) {
  return result(device, device->device->staged(slot, data));
}

int kvc_rt_begin_capture(kvc_rt_device *device) {
  return result(device, device->device->beginCapture());
}

int kvc_rt_end_capture(kvc_rt_device *device, void **graph) {
  return result(device, device->device->endCapture(graph));
}

int kvc_rt_replay(kvc_rt_device *device, void *graph) {
  return result(device, device->device->replay(graph));
}

void kvc_rt_graph_destroy(kvc_rt_device *device, void *graph) {
  device->device->destroyGraph(graph);
}

static thread_local kvc_rt_device *current = nullptr;

void kvc_rt_make_current(kvc_rt_device *device) { current = device; }

void kvc_rt_clear_error(kvc_rt_device *device) { device->error.clear(); }

/// The current device if it has no pending error.
static kvc_rt_device *ready() {
  if (!current) {
    openError = "a kvc_rt_op_* call without kvc_rt_make_current";
    return nullptr;
  }
  return current->error.empty() ? current : nullptr;
}

static uint64_t address(void *ptr) { return reinterpret_cast<uint64_t>(ptr); }

void *kvc_rt_op_cache_new(int64_t batch, int64_t kv_heads, int64_t capacity,
                          int64_t head_dim, int32_t type) {
  kvc_rt_device *d = ready();
  kvc_rt_cache *cache = nullptr;
  if (d)
    kvc_rt_cache_create(d, batch, kv_heads, capacity, head_dim, type, &cache);
  return cache;
}

void kvc_rt_op_cache_free(void *cache) {
  kvc_rt_cache_destroy(static_cast<kvc_rt_cache *>(cache));
}

int64_t kvc_rt_op_cache_batch(void *cache) {
  return cache ? static_cast<kvc_rt_cache *>(cache)->cache->layout().batch : 0;
}

void kvc_rt_op_append(void *cache, void *key, void *value, void *positions,
                      int64_t rows, float rotary_theta) {
  if (kvc_rt_device *d = ready())
    kvc_rt_append_rotary(d, static_cast<kvc_rt_cache *>(cache), address(key),
                         address(value), address(positions), rows,
                         rotary_theta);
}

void kvc_rt_op_truncate(void *cache, void *lengths) {
  if (kvc_rt_device *d = ready())
    kvc_rt_truncate(d, static_cast<kvc_rt_cache *>(cache), address(lengths));
}

void kvc_rt_op_lengths(void *cache, void *out) {
  if (kvc_rt_device *d = ready())
    result(d, d->device->copyLengths(
                  *static_cast<kvc_rt_cache *>(cache)->cache, address(out)));
}

void kvc_rt_op_decode_attention(void *cache, void *query, int64_t q_heads,
                                int64_t rows, void *positions, void *out,
                                float scale, int32_t heads_last) {
  kvc_rt_device *d = ready();
  if (!d)
    return;
  auto *c = static_cast<kvc_rt_cache *>(cache);
  kvc_rt_decode_attention(d, c, address(query), q_heads, rows,
                          address(positions), address(out),
                          c->cache->layout().capacity, scale, heads_last);
}

void kvc_rt_op_prefill_attention(void *query, void *key, void *value,
                                 void *out, int64_t batch, int64_t q_heads,
                                 int64_t kv_heads, int64_t seq,
                                 int64_t head_dim, int32_t type, float scale) {
  if (kvc_rt_device *d = ready())
    kvc_rt_prefill_attention(d, address(query), address(key), address(value),
                             address(out), batch, q_heads, kv_heads, seq,
                             head_dim, type, scale);
}

void kvc_rt_op_matmul(void *x, void *w, void *out, int64_t m, int64_t n,
                      int64_t k, int32_t type, int32_t out_type) {
  if (kvc_rt_device *d = ready())
    kvc_rt_matmul(d, address(x), address(w), address(out), m, n, k, type,
                  out_type);
}

void *mgpuModuleLoad(void *data, int64_t) {
  kvc_rt_device *d = ready();
  void *module = nullptr;
  if (d)
    result(d, d->device->loadModule(data, &module));
  return module;
}

void mgpuModuleUnload(void *) {}

void *mgpuModuleGetFunction(void *module, const char *name) {
  kvc_rt_device *d = ready();
  void *function = nullptr;
  if (d && !module)
    d->error = std::string("kernel ") + name +
               ": its module was never loaded (mgpuModuleLoad did not run)";
  else if (d)
    result(d, d->device->compiledFunction(module, name, &function));
  return function;
}

void *mgpuStreamCreate(void) { return current ? current->device->stream() : nullptr; }
void mgpuStreamDestroy(void *) {}
void mgpuStreamSynchronize(void *) {}

void mgpuLaunchKernel(void *function, intptr_t grid_x, intptr_t grid_y,
                      intptr_t grid_z, intptr_t block_x, intptr_t block_y,
                      intptr_t block_z, int32_t shared_bytes, void *,
                      void **params, void **, size_t) {
  kvc_rt_device *d = ready();
  if (!d || !function)
    return; // The failure to find it is on the device already.
  const int64_t grid[3] = {grid_x, grid_y, grid_z};
  const int64_t block[3] = {block_x, block_y, block_z};
  result(d, d->device->launchCompiled(function, grid, block, shared_bytes,
                                      params));
}

void *_mlir_memref_to_llvm_alloc(size_t bytes) {
  kvc_rt_device *d = ready();
  uint64_t ptr = 0;
  if (d)
    result(d, d->device->allocate(static_cast<int64_t>(bytes), &ptr));
  return reinterpret_cast<void *>(ptr);
}

void *_mlir_memref_to_llvm_aligned_alloc(size_t, size_t bytes) {
  // Blocks are 512-byte aligned and sized.
  return _mlir_memref_to_llvm_alloc(bytes);
}

void _mlir_memref_to_llvm_free(void *ptr) {
  if (current)
    current->device->deallocate(address(ptr));
}

} // extern "C"
