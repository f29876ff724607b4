// The CUDA backend as a kernel sees it: the stream it runs on, the library handles bound to that
// stream, the cuDNN algorithm cache and scratch memory from the device's caching allocator. Every
// CUDA kernel takes a `const Backend&` as its last argument, as every CPU kernel takes
// kernels::cpu::Backend (kernels/cpu/backend.h): the two backends' kernels of one operation have the
// same name and arguments, so an op calls them from one body (engine/ops/device_dispatch.h).
//
// Plain C++: the CUDA handle types are forward-declared by the names the CUDA headers give them
// (cudaStream_t is CUstream_st*, cublasHandle_t is cublasContext*, cudnnHandle_t is cudnnContext*),
// so the kernel headers of kernels/cuda can be included by any build. A build without the CUDA
// backend never instantiates a call to them.
#pragma once

#include <cstdint>

#include "kernels/common/scratch.h"

struct CUstream_st;
struct cublasContext;
struct cudnnContext;

namespace strata::kernels::cuda {

class ConvAlgorithmCache;

// The stream a kernel runs on, and whether to synchronise after each launch (the context's debug
// switch STRATA_CUDA_SYNC, kernels/cuda/launch.h).
struct Stream {
  CUstream_st* handle = nullptr;  // cudaStream_t
  bool sync_after_launch = false;
};

// How a float (f32) convolution or GEMM computes: strict fp32 (CUDNN_FMA_MATH, CUBLAS_COMPUTE_32F)
// or TF32 tensor-core math (cuDNN's default math type, CUBLAS_COMPUTE_32F_FAST_TF32: inputs rounded
// to TF32's 10-bit mantissa, products accumulated in fp32; PyTorch's default for cuDNN convolutions
// on Ampere and later). Which ops may use TF32 is engine/precision.h's policy; double is always fp64.
enum class FloatMath : uint8_t { strict, tf32 };

struct Backend {
  Stream stream;
  cublasContext* cublas = nullptr;                // cublasHandle_t, bound to `stream`
  cudnnContext* cudnn = nullptr;                  // cudnnHandle_t, bound to `stream`
  ConvAlgorithmCache* conv_algorithms = nullptr;  // cuDNN algorithms chosen per shape (conv2d.h)
  Scratch* scratch = nullptr;
  FloatMath float_math = FloatMath::strict;  // conv2d and gemm on float data
};

}  // namespace strata::kernels::cuda
