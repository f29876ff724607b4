// Row-major GEMM on cuBLAS (T = float, double or bf16), the contract and arguments of kernels/cpu/gemm.h:
//   C(M,N) = alpha * op(A)(M,K) * op(B)(K,N) + beta * C,   op(X) = X or X^T
// with leading dimensions in elements (row strides). beta == 0 never reads C. The product runs with
// the backend's cuBLAS handle, on its stream (kernels/cuda/backend.h). Float: the product runs
// with CUBLAS_COMPUTE_32F under the context's CUBLAS_DEFAULT_MATH (strict fp32, no TF32) or, when
// the backend's float_math is tf32, with CUBLAS_COMPUTE_32F_FAST_TF32; double runs in
// CUBLAS_COMPUTE_64F. bf16 (--precision bf16): bf16 A, B and C with CUBLAS_COMPUTE_32F, products
// accumulated in fp32 on the tensor cores and C rounded once to bf16; alpha and beta are floats
// (GemmScale), as cuBLAS reads them for every compute type but 64F.
// Sizes and leading dimensions must fit cuBLAS's int; larger ones throw CudaError naming them.
#pragma once

#include <cstdint>
#include <type_traits>

#include "kernels/common/half.h"
#include "kernels/cuda/backend.h"

namespace strata::kernels::cuda {

// alpha's and beta's type: T for float and double, float for bf16.
template <class T>
using GemmScale = std::conditional_t<std::is_same_v<T, double>, double, float>;

template <class T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, GemmScale<T> alpha, const T* A, int64_t lda,
          const T* B, int64_t ldb, GemmScale<T> beta, T* C, int64_t ldc, const Backend& backend);

}  // namespace strata::kernels::cuda
