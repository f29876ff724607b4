// Row-major GEMM on the CPU BLAS (OpenBLAS):
//   C(M,N) = alpha * op(A)(M,K) * op(B)(K,N) + beta * C,   op(X) = X or X^T
// with leading dimensions in elements. beta == 0 never reads C. The backend comes last, as in
// kernels/cuda/gemm.h (kernels/cpu/backend.h); the BLAS needs nothing from it.
#pragma once

#include <cstdint>

#include "kernels/cpu/backend.h"

namespace strata::kernels::cpu {

template <class T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B,
          int64_t ldb, T beta, T* C, int64_t ldc, const Backend& backend);

// Whether the BLAS is OpenBLAS's OpenMP build (its threads are then our OpenMP pool's).
bool blas_uses_openmp();

}  // namespace strata::kernels::cpu
