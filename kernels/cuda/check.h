// Checking every CUDA runtime, cuBLAS and cuDNN call: a failure becomes a CudaError naming the call,
// the library's status name and description, and the file and line of the call.
//   STRATA_CUDA_CHECK(cudaMemcpyAsync(...));
//   STRATA_CUBLAS_CHECK(cublasSgemm(...));
//   STRATA_CUDNN_CHECK(cudnnConvolutionForward(...));
// Host-compilable (no kernel syntax), so engine code includes it too.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <stdexcept>
#include <string>

namespace strata::kernels::cuda {

class CudaError : public std::runtime_error {
 public:
  explicit CudaError(const std::string& message) : std::runtime_error(message) {}
};

[[noreturn]] void throw_cuda_error(const char* call, cudaError_t status, const char* file, int line);
[[noreturn]] void throw_cublas_error(const char* call, cublasStatus_t status, const char* file, int line);
[[noreturn]] void throw_cudnn_error(const char* call, cudnnStatus_t status, const char* file, int line);

}  // namespace strata::kernels::cuda

#define STRATA_CUDA_CHECK(call)                                                                  \
  do {                                                                                           \
    cudaError_t strata_status_ = (call);                                                         \
    if (strata_status_ != cudaSuccess)                                                           \
      ::strata::kernels::cuda::throw_cuda_error(#call, strata_status_, __FILE__, __LINE__);      \
  } while (false)

#define STRATA_CUBLAS_CHECK(call)                                                                \
  do {                                                                                           \
    cublasStatus_t strata_status_ = (call);                                                      \
    if (strata_status_ != CUBLAS_STATUS_SUCCESS)                                                 \
      ::strata::kernels::cuda::throw_cublas_error(#call, strata_status_, __FILE__, __LINE__);    \
  } while (false)

#define STRATA_CUDNN_CHECK(call)                                                                 \
  do {                                                                                           \
    cudnnStatus_t strata_status_ = (call);                                                       \
    if (strata_status_ != CUDNN_STATUS_SUCCESS)                                                  \
      ::strata::kernels::cuda::throw_cudnn_error(#call, strata_status_, __FILE__, __LINE__);     \
  } while (false)
