//===- Matmul.cpp - dense projections through cuBLASLt ---------------------===//
#include "Matmul.h"

#include <cublasLt.h>
#include <cuda.h>

namespace kvc::rt {

namespace {
constexpr size_t kWorkspaceBytes = 32 << 20;

cudaDataType dataType(DType type) {
  switch (type) {
  case DType::F16:
    return CUDA_R_16F;
  case DType::BF16:
    return CUDA_R_16BF;
  case DType::F32:
    break;
  }
  return CUDA_R_32F;
}
} // namespace

struct Matmul::Plan {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t w = nullptr, x = nullptr, out = nullptr;
  cublasLtMatmulAlgo_t algo;
  ~Plan() {
    if (w)
      cublasLtMatrixLayoutDestroy(w);
    if (x)
      cublasLtMatrixLayoutDestroy(x);
    if (out)
      cublasLtMatrixLayoutDestroy(out);
    if (op)
      cublasLtMatmulDescDestroy(op);
  }
};

std::unique_ptr<Matmul> Matmul::create(std::string &error) {
  std::unique_ptr<Matmul> matmul(new Matmul());
  cublasLtHandle_t handle;
  if (cublasLtCreate(&handle) != CUBLAS_STATUS_SUCCESS) {
    error = "cublasLtCreate failed";
    return nullptr;
  }
  matmul->handle_ = handle;
  CUdeviceptr workspace;
  if (cuMemAlloc(&workspace, kWorkspaceBytes) != CUDA_SUCCESS) {
    error = "cuMemAlloc of the cuBLASLt workspace failed";
    return nullptr;
  }
  matmul->workspace_ = workspace;
  return matmul;
}

Matmul::~Matmul() {
  plans_.clear();
  if (workspace_)
    cuMemFree(workspace_);
  if (handle_)
    cublasLtDestroy(static_cast<cublasLtHandle_t>(handle_));
}

// Row-major out[m, n] = x[m, k] w[n, k]^T is, column-major, out^T[n, m] =
// w^T[n, k] x^T[k, m] where w^T is w's bytes read as a k x n column-major
// matrix, transposed: A = w (op T), B = x (op N).
bool Matmul::run(uint64_t x, uint64_t w, uint64_t out, int64_t m, int64_t n,
                 int64_t k, DType type, DType outType, void *stream,
                 std::string &error) {
  auto key = std::make_tuple(m, n, k, type, outType);
  auto it = plans_.find(key);
  if (it == plans_.end()) {
    auto plan = std::make_unique<Plan>();
    cudaDataType data = dataType(type);
    cublasOperation_t transpose = CUBLAS_OP_T;
    bool ok =
        cublasLtMatmulDescCreate(&plan->op, CUBLAS_COMPUTE_32F, CUDA_R_32F) ==
            CUBLAS_STATUS_SUCCESS &&
        cublasLtMatmulDescSetAttribute(plan->op, CUBLASLT_MATMUL_DESC_TRANSA,
                                       &transpose, sizeof(transpose)) ==
            CUBLAS_STATUS_SUCCESS &&
        cublasLtMatrixLayoutCreate(&plan->w, data, k, n, k) ==
            CUBLAS_STATUS_SUCCESS &&
        cublasLtMatrixLayoutCreate(&plan->x, data, k, m, k) ==
            CUBLAS_STATUS_SUCCESS &&
        cublasLtMatrixLayoutCreate(&plan->out, dataType(outType), n, m, n) ==
            CUBLAS_STATUS_SUCCESS;
    cublasLtMatmulPreference_t preference = nullptr;
    cublasLtMatmulHeuristicResult_t heuristic;
    int found = 0;
    size_t workspace = kWorkspaceBytes;
    ok = ok &&
         cublasLtMatmulPreferenceCreate(&preference) == CUBLAS_STATUS_SUCCESS &&
         cublasLtMatmulPreferenceSetAttribute(
             preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace,
             sizeof(workspace)) == CUBLAS_STATUS_SUCCESS &&
         cublasLtMatmulAlgoGetHeuristic(
             static_cast<cublasLtHandle_t>(handle_), plan->op, plan->w,
             plan->x, plan->out, plan->out, preference, 1, &heuristic,
             &found) == CUBLAS_STATUS_SUCCESS &&
         found > 0;
    if (preference)
      cublasLtMatmulPreferenceDestroy(preference);
    if (!ok) {
      error = "cuBLASLt has no matmul for [" + std::to_string(m) + " x " +
              std::to_string(k) + "] x [" + std::to_string(n) + " x " +
              std::to_string(k) + "]^T in " + name(type) + " to " +
              name(outType);
      return false;
    }
    plan->algo = heuristic.algo;
    it = plans_.emplace(key, std::move(plan)).first;
  }
  Plan &plan = *it->second;
  float one = 1.0f, zero = 0.0f;
  cublasStatus_t status = cublasLtMatmul(
      static_cast<cublasLtHandle_t>(handle_), plan.op, &one,
      reinterpret_cast<void *>(w), plan.w, reinterpret_cast<void *>(x), plan.x,
      &zero, reinterpret_cast<void *>(out), plan.out,
      reinterpret_cast<void *>(out), plan.out, &plan.algo,
      reinterpret_cast<void *>(workspace_), kWorkspaceBytes,
      static_cast<cudaStream_t>(stream));
  if (status != CUBLAS_STATUS_SUCCESS) {
    error = std::string("cublasLtMatmul failed: ") +
            cublasLtGetStatusName(status);
    return false;
  }
  return true;
}

} // namespace kvc::rt
