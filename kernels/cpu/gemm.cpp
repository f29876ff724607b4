// GEMM through CBLAS. OpenBLAS's 32-bit interface takes int sizes, so larger problems are refused
// here rather than silently truncated.
#include "kernels/cpu/gemm.h"

#include <cblas.h>

#include <climits>
#include <stdexcept>
#include <string>

extern "C" int openblas_get_parallel(void);

namespace strata::kernels::cpu {

namespace {

int blas_int(int64_t v, const char* what) {
  if (v < 0 || v > INT_MAX) {
    throw std::length_error(std::string("gemm on the CPU: ") + what + " = " + std::to_string(v) +
                            " exceeds the 32-bit BLAS interface");
  }
  return static_cast<int>(v);
}

}  // namespace

template <>
void gemm<float>(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                 const float* B, int64_t ldb, float beta, float* C, int64_t ldc, const Backend&) {
  if (M == 0 || N == 0) return;
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
              blas_int(M, "M"), blas_int(N, "N"), blas_int(K, "K"), alpha, A, blas_int(lda, "lda"), B,
              blas_int(ldb, "ldb"), beta, C, blas_int(ldc, "ldc"));
}

template <>
void gemm<double>(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha, const double* A,
                  int64_t lda, const double* B, int64_t ldb, double beta, double* C, int64_t ldc, const Backend&) {
  if (M == 0 || N == 0) return;
  cblas_dgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
              blas_int(M, "M"), blas_int(N, "N"), blas_int(K, "K"), alpha, A, blas_int(lda, "lda"), B,
              blas_int(ldb, "ldb"), beta, C, blas_int(ldc, "ldc"));
}

bool blas_uses_openmp() { return openblas_get_parallel() == 2; }

}  // namespace strata::kernels::cpu
