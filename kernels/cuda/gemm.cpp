// Row-major GEMM through column-major cuBLAS (see gemm.h).
//
// cuBLAS reads a matrix stored row-major with row stride ld as its transpose stored column-major
// with leading dimension ld. So the row-major product C = op(A) op(B) is, in cuBLAS's view, the
// column-major product C^T = op(B)^T op(A)^T of shapes (N,K) x (K,M) -> (N,M): call cuBLAS with
// the operands swapped (B first), m = N, n = M, and each operand's own transpose flag — the buffer
// of a row-major X already is X^T to cuBLAS, so op(X)^T needs CUBLAS_OP_N when op(X) = X and
// CUBLAS_OP_T when op(X) = X^T. C's buffer is C^T column-major with ldc, exactly what cuBLAS writes.
#include "kernels/cuda/gemm.h"

#include <cublas_v2.h>

#include <algorithm>
#include <climits>
#include <string>

#include "kernels/cuda/check.h"

namespace strata::kernels::cuda {

namespace {

int to_int(int64_t value, const char* what) {
  if (value < 0 || value > INT_MAX) {
    throw CudaError(std::string("gemm on CUDA: ") + what + " = " + std::to_string(value) +
                    " does not fit cuBLAS's 32-bit int arguments");
  }
  return static_cast<int>(value);
}

// cuBLAS wants ld >= max(1, rows stored); an empty operand (a zero-sized dimension) has ld 0 from
// its row-major shape, which cuBLAS rejects although nothing is read.
int leading_dimension(int64_t ld, const char* what) { return std::max(1, to_int(ld, what)); }

// The data and compute types of a T GEMM: fp32 data computed in strict fp32 or with TF32 tensor-core
// math (the backend's float_math), fp64 for double, bf16 data accumulated in fp32 (cuBLAS has no
// TF32 for bf16 data, so float_math does not apply).
template <class T>
struct GemmTypes;
template <>
struct GemmTypes<float> {
  static constexpr cudaDataType_t data = CUDA_R_32F;
  static cublasComputeType_t compute(FloatMath float_math) {
    return float_math == FloatMath::tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  }
};
template <>
struct GemmTypes<double> {
  static constexpr cudaDataType_t data = CUDA_R_64F;
  static cublasComputeType_t compute(FloatMath) { return CUBLAS_COMPUTE_64F; }
};
template <>
struct GemmTypes<bf16> {
  static constexpr cudaDataType_t data = CUDA_R_16BF;
  static cublasComputeType_t compute(FloatMath) { return CUBLAS_COMPUTE_32F; }
};

}  // namespace

template <class T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, GemmScale<T> alpha, const T* A, int64_t lda,
          const T* B, int64_t ldb, GemmScale<T> beta, T* C, int64_t ldc, const Backend& backend) {
  constexpr cudaDataType_t type = GemmTypes<T>::data;
  const int m = to_int(N, "N"), n = to_int(M, "M"), k = to_int(K, "K");
  if (m == 0 || n == 0) return;
  // K == 0 is cuBLAS's quick return: C = beta C (all zeros for beta == 0).
  STRATA_CUBLAS_CHECK(cublasGemmEx(
      backend.cublas, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, m, n, k, &alpha, B,
      type, leading_dimension(ldb, "ldb"), A, type, leading_dimension(lda, "lda"), &beta, C, type,
      leading_dimension(ldc, "ldc"), GemmTypes<T>::compute(backend.float_math), CUBLAS_GEMM_DEFAULT));
}

template void gemm<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*, int64_t,
                          float, float*, int64_t, const Backend&);
template void gemm<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*, int64_t, const double*,
                           int64_t, double, double*, int64_t, const Backend&);
template void gemm<bf16>(bool, bool, int64_t, int64_t, int64_t, float, const bf16*, int64_t, const bf16*, int64_t,
                         float, bf16*, int64_t, const Backend&);

}  // namespace strata::kernels::cuda
