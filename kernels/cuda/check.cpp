#include "kernels/cuda/check.h"

namespace strata::kernels::cuda {

namespace {

std::string where(const char* file, int line) { return std::string(file) + ":" + std::to_string(line); }

}  // namespace

void throw_cuda_error(const char* call, cudaError_t status, const char* file, int line) {
  throw CudaError(std::string(call) + " failed: " + cudaGetErrorName(status) + " (" + cudaGetErrorString(status) +
                  ") at " + where(file, line));
}

void throw_cublas_error(const char* call, cublasStatus_t status, const char* file, int line) {
  throw CudaError(std::string(call) + " failed: " + cublasGetStatusName(status) + " (" +
                  cublasGetStatusString(status) + ") at " + where(file, line));
}

void throw_cudnn_error(const char* call, cudnnStatus_t status, const char* file, int line) {
  throw CudaError(std::string(call) + " failed: " + cudnnGetErrorString(status) + " at " + where(file, line));
}

}  // namespace strata::kernels::cuda
