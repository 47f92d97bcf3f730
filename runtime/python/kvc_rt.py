"""ctypes binding of kvc's runtime C API (runtime/include/kvc/rt/kvc_rt.h).

Device pointers are integers: pass torch tensors' data_ptr(). The runtime
opens the device's primary context, which torch shares.
"""
import ctypes

F16, BF16, F32 = 0, 1, 2


class Error(RuntimeError):
    pass


class Runtime:
    def __init__(self, library, kernels, ordinal=0):
        self.lib = ctypes.CDLL(library)
        lib = self.lib
        u64, i64, vp = ctypes.c_uint64, ctypes.c_int64, ctypes.c_void_p
        lib.kvc_rt_error.restype = ctypes.c_char_p
        lib.kvc_rt_error.argtypes = [vp]
        lib.kvc_rt_open_file.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.POINTER(vp)]
        lib.kvc_rt_close.argtypes = [vp]
        lib.kvc_rt_set_stream.argtypes = [vp, vp]
        lib.kvc_rt_multiprocessors.argtypes = [vp]
        lib.kvc_rt_set_decode_plan.argtypes = [vp, ctypes.c_char_p]
        lib.kvc_rt_cache_create.argtypes = [vp, i64, i64, i64, i64, ctypes.c_int, ctypes.POINTER(vp)]
        lib.kvc_rt_cache_wrap.argtypes = [vp, i64, i64, i64, i64, ctypes.c_int, u64, u64, u64,
                                          ctypes.POINTER(vp)]
        lib.kvc_rt_cache_destroy.argtypes = [vp]
        for name in ("keys", "values", "lengths"):
            f = getattr(lib, "kvc_rt_cache_" + name)
            f.argtypes, f.restype = [vp], u64
        lib.kvc_rt_append.argtypes = [vp, vp, u64, u64, u64, i64]
        lib.kvc_rt_truncate.argtypes = [vp, vp, u64]
        lib.kvc_rt_decode_attention.argtypes = [vp, vp, u64, i64, i64, u64, u64, i64,
                                                ctypes.c_float, ctypes.c_int]
        lib.kvc_rt_describe_decode.argtypes = [vp, i64, i64, i64, i64, i64, ctypes.c_int, i64,
                                               ctypes.c_char_p, ctypes.c_size_t]
        lib.kvc_rt_synchronize.argtypes = [vp]
        lib.kvc_rt_prefill_attention.argtypes = [vp, u64, u64, u64, u64, i64, i64, i64, i64, i64,
                                                 ctypes.c_int, ctypes.c_float]
        # The entry points compiled code calls (convert-kvc-to-gpu).
        lib.kvc_rt_make_current.argtypes = [vp]
        lib.kvc_rt_op_cache_new.argtypes = [i64, i64, i64, i64, ctypes.c_int32]
        lib.kvc_rt_op_cache_new.restype = vp
        lib.kvc_rt_op_cache_free.argtypes = [vp]
        lib.kvc_rt_op_cache_batch.argtypes = [vp]
        lib.kvc_rt_op_cache_batch.restype = i64
        lib.kvc_rt_op_append.argtypes = [vp, vp, vp, vp, i64, ctypes.c_float]
        lib.kvc_rt_append_rotary.argtypes = [vp, vp, u64, u64, u64, i64, ctypes.c_float]
        lib.kvc_rt_op_truncate.argtypes = [vp, vp]
        lib.kvc_rt_op_lengths.argtypes = [vp, vp]
        lib.kvc_rt_op_decode_attention.argtypes = [vp, vp, i64, i64, vp, vp, ctypes.c_float,
                                                   ctypes.c_int32]
        lib.kvc_rt_op_prefill_attention.argtypes = [vp, vp, vp, vp, i64, i64, i64, i64, i64,
                                                    ctypes.c_int32, ctypes.c_float]
        lib.kvc_rt_matmul.argtypes = [vp, u64, u64, u64, i64, i64, i64, ctypes.c_int,
                                      ctypes.c_int]
        lib.kvc_rt_argmax.argtypes = [vp, u64, i64, i64, ctypes.c_int, u64]
        # Tensors a wrapped cache points into, kept alive with the cache.
        self._wrapped = {}
        handle = vp()
        if lib.kvc_rt_open_file(ordinal, kernels.encode(), ctypes.byref(handle)):
            raise Error(lib.kvc_rt_error(None).decode())
        self.device = handle

    def _check(self, status):
        if status:
            raise Error(self.lib.kvc_rt_error(self.device).decode())

    def close(self):
        if self.device:
            self.lib.kvc_rt_close(self.device)
            self.device = None

    def set_stream(self, stream):
        self.lib.kvc_rt_set_stream(self.device, ctypes.c_void_p(stream))

    def multiprocessors(self):
        return self.lib.kvc_rt_multiprocessors(self.device)

    def set_decode_plan(self, plan):
        """Forces parts of every decode's plan ("kernel=mma|cuda,splits=N,
        cluster=C", any subset; "" forces nothing), for experiments."""
        self._check(self.lib.kvc_rt_set_decode_plan(self.device, plan.encode()))

    def wrap_cache(self, keys, values, lengths, dtype):
        batch, kv_heads, capacity, head_dim = keys.shape
        handle = ctypes.c_void_p()
        self._check(self.lib.kvc_rt_cache_wrap(self.device, batch, kv_heads, capacity, head_dim,
                                               dtype, keys.data_ptr(), values.data_ptr(),
                                               lengths.data_ptr(), ctypes.byref(handle)))
        self._wrapped[handle.value] = (keys, values, lengths)
        return handle

    def create_cache(self, batch, kv_heads, capacity, head_dim, dtype):
        handle = ctypes.c_void_p()
        self._check(self.lib.kvc_rt_cache_create(self.device, batch, kv_heads, capacity, head_dim,
                                                 dtype, ctypes.byref(handle)))
        return handle

    def destroy_cache(self, cache):
        self.lib.kvc_rt_cache_destroy(cache)
        self._wrapped.pop(cache.value, None)

    def append(self, cache, key, value, positions, rows):
        self._check(self.lib.kvc_rt_append(self.device, cache, key.data_ptr(), value.data_ptr(),
                                           positions.data_ptr(), rows))

    def append_rotary(self, cache, key, value, positions, rows, theta):
        self._check(self.lib.kvc_rt_append_rotary(self.device, cache, key.data_ptr(),
                                                  value.data_ptr(), positions.data_ptr(), rows,
                                                  theta))

    def truncate(self, cache, lengths):
        self._check(self.lib.kvc_rt_truncate(self.device, cache, lengths.data_ptr()))

    def decode_attention(self, cache, query, positions, out, max_keys, scale, heads_last=False):
        """out: like query, or [batch, rows, q_heads, head_dim] if heads_last."""
        batch, q_heads, rows, head_dim = query.shape
        self._check(self.lib.kvc_rt_decode_attention(self.device, cache, query.data_ptr(), q_heads,
                                                     rows, positions.data_ptr(), out.data_ptr(),
                                                     max_keys, scale, int(heads_last)))

    def describe_decode(self, batch, kv_heads, q_heads, rows, head_dim, dtype, max_keys):
        """The kernel and plan decode_attention would take, as key=value text."""
        text = ctypes.create_string_buffer(512)
        self._check(self.lib.kvc_rt_describe_decode(self.device, batch, kv_heads, q_heads, rows,
                                                    head_dim, dtype, max_keys, text, len(text)))
        return text.value.decode()

    def prefill_attention(self, query, key, value, out, dtype, scale):
        batch, q_heads, seq, head_dim = query.shape
        self._check(self.lib.kvc_rt_prefill_attention(
            self.device, query.data_ptr(), key.data_ptr(), value.data_ptr(), out.data_ptr(), batch,
            q_heads, key.shape[1], seq, head_dim, dtype, scale))

    def matmul(self, x, w, out, dtype, out_dtype):
        m, k = x.shape
        n = w.shape[0]
        self._check(self.lib.kvc_rt_matmul(self.device, x.data_ptr(), w.data_ptr(),
                                           out.data_ptr(), m, n, k, dtype, out_dtype))

    def argmax(self, logits, out, dtype):
        rows, vocab = logits.shape
        self._check(self.lib.kvc_rt_argmax(self.device, logits.data_ptr(), rows, vocab, dtype,
                                           out.data_ptr()))

    def error(self):
        return self.lib.kvc_rt_error(self.device).decode()

    def synchronize(self):
        self._check(self.lib.kvc_rt_synchronize(self.device))
