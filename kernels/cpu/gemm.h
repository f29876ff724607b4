// Row-major GEMM on the CPU BLAS (OpenBLAS):
//   C(M,N) = alpha * op(A)(M,K) * op(B)(K,N) + beta * C,   op(X) = X or X^T
// with leading dimensions in elements. beta == 0 never reads C.
#pragma once

#include <cstdint>

namespace strata::kernels::cpu {

template <class T>
void gemm_cpu(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
              const T* B, int64_t ldb, T beta, T* C, int64_t ldc);

// Threads the BLAS uses (OpenBLAS's OpenMP build shares our OpenMP pool) and whether it is that build.
int blas_threads();
bool blas_uses_openmp();

}  // namespace strata::kernels::cpu
