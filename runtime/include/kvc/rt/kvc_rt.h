/*===- kvc_rt.h - C API of kvc's GPU runtime ---------------------*- C -*-===*\
|*                                                                            *|
|* For kvc-run and language bindings (Python through ctypes). Every function  *|
|* returns 0 on success and nonzero on failure; kvc_rt_error() then says why. *|
|* Device pointers are CUdeviceptr values (a torch tensor's data_ptr()).      *|
|*                                                                            *|
\*===----------------------------------------------------------------------===*/
#ifndef KVC_RT_C_H
#define KVC_RT_C_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kvc_rt_device kvc_rt_device;
typedef struct kvc_rt_cache kvc_rt_cache;

/* Element types of caches and attention inputs. */
enum { KVC_RT_F16 = 0, KVC_RT_BF16 = 1, KVC_RT_F32 = 2 };

/* Why the last call on `device` failed; with a null device, why the last
 * kvc_rt_open on this thread failed. */
const char *kvc_rt_error(const kvc_rt_device *device);

/* Checks a checkpoint (a .safetensors file or a directory of them) against
 * the manifest kvc-compile wrote (--emit=manifest): every weight present with
 * its dtype and shape. Returns 0 if so; else nonzero with `problems` set to
 * one line per problem (valid until the next call on this thread). No GPU. */
int kvc_rt_check_weights(const char *manifest_path, const char *weights_path,
                         const char **problems);

/* Opens GPU `ordinal` (its primary context) and loads a kvc kernel cubin. */
int kvc_rt_open(int ordinal, const void *cubin, size_t size,
                kvc_rt_device **device);
/* Reads the cubin from a file. */
int kvc_rt_open_file(int ordinal, const char *path, kvc_rt_device **device);
void kvc_rt_close(kvc_rt_device *device);
/* Launches go to this CUstream from now on (0: the default stream). */
void kvc_rt_set_stream(kvc_rt_device *device, void *stream);
int kvc_rt_multiprocessors(const kvc_rt_device *device);
/* Forces parts of every decode attention's plan from now on, for
 * experiments: "kernel=mma|cuda,splits=N,cluster=C", any subset ("" forces
 * nothing; see DecodeForce in kvc/rt/Plan.h). KVC_DECODE_PLAN in the
 * environment sets it when a device opens. Nonzero (and kvc_rt_error) if
 * the text is not such a plan. */
int kvc_rt_set_decode_plan(kvc_rt_device *device, const char *plan);

/* A cache of [batch, kv_heads, capacity, head_dim] keys and values and
 * [batch] i32 lengths (all zero), allocated on the device. */
int kvc_rt_cache_create(kvc_rt_device *device, int64_t batch, int64_t kv_heads,
                        int64_t capacity, int64_t head_dim, int type,
                        kvc_rt_cache **cache);
/* The same over memory the caller owns. */
int kvc_rt_cache_wrap(kvc_rt_device *device, int64_t batch, int64_t kv_heads,
                      int64_t capacity, int64_t head_dim, int type,
                      uint64_t keys, uint64_t values, uint64_t lengths,
                      kvc_rt_cache **cache);
void kvc_rt_cache_destroy(kvc_rt_cache *cache);
uint64_t kvc_rt_cache_keys(const kvc_rt_cache *cache);
uint64_t kvc_rt_cache_values(const kvc_rt_cache *cache);
uint64_t kvc_rt_cache_lengths(const kvc_rt_cache *cache);

/* kvc.cache.append: key, value [batch, kv_heads, rows, head_dim]; positions
 * [batch] i32. */
int kvc_rt_append(kvc_rt_device *device, kvc_rt_cache *cache, uint64_t key,
                  uint64_t value, uint64_t positions, int64_t rows);
/* The same with keys rotated to their positions (kvc.cache.append
 * {rotary_theta}); the head dim must be a multiple of 16. */
int kvc_rt_append_rotary(kvc_rt_device *device, kvc_rt_cache *cache,
                         uint64_t key, uint64_t value, uint64_t positions,
                         int64_t rows, float theta);
/* kvc.cache.truncate: lengths [batch] i32. */
int kvc_rt_truncate(kvc_rt_device *device, kvc_rt_cache *cache,
                    uint64_t lengths);
/* kvc.decode_attention: query [batch, q_heads, rows, head_dim], out the
 * same or, if heads_last is nonzero, [batch, rows, q_heads, head_dim];
 * max_keys bounds min(position + rows, length) over the batch (the capacity
 * is always safe). */
int kvc_rt_decode_attention(kvc_rt_device *device, kvc_rt_cache *cache,
                            uint64_t query, int64_t q_heads, int64_t rows,
                            uint64_t positions, uint64_t out, int64_t max_keys,
                            float scale, int heads_last);
/* What kvc_rt_decode_attention would launch over a cache of batch x kv_heads
 * heads of head_dim (type) for rows new rows of q_heads query heads over at
 * most max_keys cache rows, without running it: "kernel=... splits=N
 * split_len=R cluster=C grid=XxYxZ combine=XxYxZ|none" into text (at most
 * size bytes with the NUL). Nonzero (and kvc_rt_error) where the decode
 * would be refused. */
int kvc_rt_describe_decode(kvc_rt_device *device, int64_t batch,
                           int64_t kv_heads, int64_t q_heads, int64_t rows,
                           int64_t head_dim, int type, int64_t max_keys,
                           char *text, size_t size);
/* kvc.attention {causal} over whole sequences: query, out [batch, q_heads,
 * seq, head_dim]; key, value [batch, kv_heads, seq, head_dim]. */
int kvc_rt_prefill_attention(kvc_rt_device *device, uint64_t query,
                             uint64_t key, uint64_t value, uint64_t out,
                             int64_t batch, int64_t q_heads, int64_t kv_heads,
                             int64_t seq, int64_t head_dim, int type,
                             float scale);
/* out[m, n] = sum_k x[m, k] w[n, k], row-major, f32 accumulation; x and w
 * of `type`, out of `out_type` (the same or KVC_RT_F32). cuBLASLt, or for
 * up to 16 rows of f16/bf16 kvc's kvc_gemv / kvc_gemm16 kernels. */
int kvc_rt_matmul(kvc_rt_device *device, uint64_t x, uint64_t w, uint64_t out,
                  int64_t m, int64_t n, int64_t k, int type, int out_type);
/* out[r] ([rows] i32) = the index of the largest of the `vocab` logits of
 * row r, f32 or bf16 (the first on a tie). */
int kvc_rt_argmax(kvc_rt_device *device, uint64_t logits, int64_t rows,
                  int64_t vocab, int type, uint64_t out);
/* Waits for the stream; reports device-side check failures. */
int kvc_rt_synchronize(kvc_rt_device *device);

/* Device memory from the device's cache of blocks (what compiled code's
 * buffers come from), and copies on the device's stream. */
int kvc_rt_alloc(kvc_rt_device *device, int64_t bytes, uint64_t *ptr);
void kvc_rt_free(kvc_rt_device *device, uint64_t ptr);
int kvc_rt_copy_to_device(kvc_rt_device *device, uint64_t dst,
                          const void *src, int64_t bytes);
int kvc_rt_copy_on_device(kvc_rt_device *device, uint64_t dst, uint64_t src,
                          int64_t bytes);
/* Waits for the stream, then copies. */
int kvc_rt_copy_to_host(kvc_rt_device *device, void *dst, uint64_t src,
                        int64_t bytes);
/* Starts copying `bytes` at `src` into host staging slot `slot` (0 to 3,
 * page-locked memory the device keeps) once the work given to the stream so
 * far is done, and returns without waiting (not while capturing).
 * kvc_rt_staged waits for that copy and sets `data` to its bytes, valid
 * until the slot is staged again: a step's results are read while the next
 * step runs. */
int kvc_rt_stage_to_host(kvc_rt_device *device, int slot, uint64_t src,
                         int64_t bytes);
int kvc_rt_staged(kvc_rt_device *device, int slot, const void **data);
/* Records what the stream is given between begin and end (the calls of a
 * compiled step) as a CUDA graph; replay launches it again. */
int kvc_rt_begin_capture(kvc_rt_device *device);
int kvc_rt_end_capture(kvc_rt_device *device, void **graph);
int kvc_rt_replay(kvc_rt_device *device, void *graph);
void kvc_rt_graph_destroy(kvc_rt_device *device, void *graph);

/* For compiled code (what convert-kvc-to-gpu calls): the same operations on
 * the device made current, on cache handles. A failure is kept on that
 * device (kvc_rt_error) and makes later operations do nothing until
 * kvc_rt_clear_error. */
void kvc_rt_make_current(kvc_rt_device *device);
void kvc_rt_clear_error(kvc_rt_device *device);
void *kvc_rt_op_cache_new(int64_t batch, int64_t kv_heads, int64_t capacity,
                          int64_t head_dim, int32_t type);
void kvc_rt_op_cache_free(void *cache);
int64_t kvc_rt_op_cache_batch(void *cache);
void kvc_rt_op_append(void *cache, void *key, void *value, void *positions,
                      int64_t rows, float rotary_theta /* 0: none */);
void kvc_rt_op_truncate(void *cache, void *lengths);
void kvc_rt_op_lengths(void *cache, void *out);
void kvc_rt_op_decode_attention(void *cache, void *query, int64_t q_heads,
                                int64_t rows, void *positions, void *out,
                                float scale, int32_t heads_last);
void kvc_rt_op_prefill_attention(void *query, void *key, void *value,
                                 void *out, int64_t batch, int64_t q_heads,
                                 int64_t kv_heads, int64_t seq,
                                 int64_t head_dim, int32_t type, float scale);
/* out[m, n] = sum_k x[m, k] w[n, k] (cuBLASLt, f32 accumulation); x and w
 * of `type`, out of `out_type` (the same or KVC_RT_F32). */
void kvc_rt_op_matmul(void *x, void *w, void *out, int64_t m, int64_t n,
                      int64_t k, int32_t type, int32_t out_type);

/* The ABI that MLIR's gpu.launch_func and memref.alloc lowerings call
 * (gpu-to-llvm with its LLVM translation; finalize-memref-to-llvm with
 * use-generic-functions), served on the current device: modules stay loaded
 * until the device closes, every launch goes to the device's stream, and
 * buffers come from kvc_rt_alloc. Streams are the device's; synchronizing
 * one is left to kvc_rt_synchronize, so that a step can be captured. */
void *mgpuModuleLoad(void *data, int64_t size);
void mgpuModuleUnload(void *module);
void *mgpuModuleGetFunction(void *module, const char *name);
void *mgpuStreamCreate(void);
void mgpuStreamDestroy(void *stream);
void mgpuStreamSynchronize(void *stream);
void mgpuLaunchKernel(void *function, intptr_t grid_x, intptr_t grid_y,
                      intptr_t grid_z, intptr_t block_x, intptr_t block_y,
                      intptr_t block_z, int32_t shared_bytes, void *stream,
                      void **params, void **extra, size_t param_count);
void *_mlir_memref_to_llvm_alloc(size_t bytes);
void *_mlir_memref_to_llvm_aligned_alloc(size_t alignment, size_t bytes);
void _mlir_memref_to_llvm_free(void *ptr);

#ifdef __cplusplus
}
#endif

#endif /* KVC_RT_C_H */
