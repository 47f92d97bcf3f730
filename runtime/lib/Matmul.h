//===- Matmul.h - dense projections through cuBLASLt ------------*- C++ -*-===//
//
// Private to the runtime: out[m, n] = sum_k x[m, k] w[n, k], row-major, with
// f32 accumulation. One cuBLASLt plan (descriptors and heuristic choice) per
// shape, made on first use, so that a step replayed from a CUDA graph makes
// no cuBLASLt calls but the matmuls themselves.
//
//===----------------------------------------------------------------------===//
#ifndef KVC_RT_LIB_MATMUL_H
#define KVC_RT_LIB_MATMUL_H

#include "kvc/rt/Plan.h"

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <tuple>

namespace kvc::rt {

class Matmul {
public:
  /// Null with `error` set if cuBLASLt cannot start.
  static std::unique_ptr<Matmul> create(std::string &error);
  ~Matmul();

  /// Enqueues the product on `stream`; false with `error` set on failure.
  bool run(uint64_t x, uint64_t w, uint64_t out, int64_t m, int64_t n,
           int64_t k, DType type, DType outType, void *stream,
           std::string &error);

private:
  Matmul() = default;
  struct Plan;
  void *handle_ = nullptr;
  uint64_t workspace_ = 0;
  std::map<std::tuple<int64_t, int64_t, int64_t, DType, DType>,
           std::unique_ptr<Plan>>
      plans_;
};

} // namespace kvc::rt

#endif // KVC_RT_LIB_MATMUL_H
