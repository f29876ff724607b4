// Row-major GEMM on cuBLAS (T = float or double), the contract and arguments of kernels/cpu/gemm.h:
//   C(M,N) = alpha * op(A)(M,K) * op(B)(K,N) + beta * C,   op(X) = X or X^T
// with leading dimensions in elements (row strides). beta == 0 never reads C. The product runs with
// the backend's cuBLAS handle, on its stream (kernels/cuda/backend.h). Float: the product runs
// with CUBLAS_COMPUTE_32F under the context's CUBLAS_DEFAULT_MATH (strict fp32, no TF32) or, when
// the backend's float_math is tf32, with CUBLAS_COMPUTE_32F_FAST_TF32; double runs in
// CUBLAS_COMPUTE_64F.
// Sizes and leading dimensions must fit cuBLAS's int; larger ones throw CudaError naming them.
#pragma once

#include <cstdint>

#include "kernels/cuda/backend.h"

namespace strata::kernels::cuda {

template <class T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B,
          int64_t ldb, T beta, T* C, int64_t ldc, const Backend& backend);

}  // namespace strata::kernels::cuda
