// In-place Activated Batch Normalisation (Rota Bulo, Porzi, Kontschieder, "In-Place Activated
// BatchNorm for Memory-Optimized Training of DNNs", CVPR 2018), as mapillary/inplace_abn v1, on
// CUDA. R = rows (N*H*W pixels), C = channels (contiguous, innermost).
//   forward : z = (x - mean) invstd gamma + beta,  gamma = |w| + eps,  y = act(z)
//             act = leaky ReLU with slope > 0 (identity = slope 1)
//   backward: from y alone (x is never read, so the op need not keep it):
//             z = act^-1(y), dz = dy act'(z), xhat = (z - beta) / gamma
//             dbeta = sum dz,  dw = sign(w) sum xhat dz
//             training dx = (dz - mean(dz) - xhat mean(xhat dz)) gamma invstd
//             eval     dx = dz gamma invstd
// y > 0 exactly when z > 0 (slope > 0), so the branch on y is the branch on z; at z = 0 the
// derivative taken is the slope, as PyTorch's leaky_relu. As the CPU reference
// (kernels/cpu/inplace_abn.cpp): the sums dz and xhat dz are accumulated in double from per-element
// double math, per-channel coefficients come from kernels/common/batch_norm.h rounded to T once, and
// the elementwise passes run in T with the CPU's expressions.
#include <cuda_runtime.h>

#include "kernels/common/batch_norm.h"
#include "kernels/cuda/channel_sums.cuh"
#include "kernels/cuda/inplace_abn.h"
#include "kernels/cuda/launch.h"

namespace strata::kernels::cuda {

namespace {

namespace common = kernels::common;

constexpr unsigned kThreads = 256;

#define STRATA_GRID_STRIDE(i, n)                                                          \
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < (n); \
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)

// acc[0] += dz, acc[1] += xhat dz, recomputed from y in double; beta and inv_gamma = 1/gamma are
// per-channel doubles.
template <class T>
struct SumDzAndXhatDz {
  const T* dy;
  const T* y;
  const double* beta;
  const double* inv_gamma;
  double slope;
  double inv_slope;
  int64_t channels;
  __device__ void operator()(int64_t r, int64_t c, double* acc) const {
    const int64_t i = r * channels + c;
    const double yv = static_cast<double>(y[i]);
    const double dz = static_cast<double>(dy[i]) * (yv > 0.0 ? 1.0 : slope);
    const double z = yv * (yv > 0.0 ? 1.0 : inv_slope);
    acc[0] += dz;
    acc[1] += (z - beta[c]) * inv_gamma[c] * dz;
  }
};

template <class T>
__global__ void forward_coefficients_kernel(common::ChannelAffine<T>* affine, const double* mean,
                                            const double* invstd, const T* weight, const T* bias, double eps,
                                            int64_t channels) {
  const int64_t c = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (c >= channels) return;
  affine[c] = common::inplace_abn_affine(mean[c], invstd[c], common::inplace_abn_gamma(weight, eps, c), bias, c);
}

template <class T>
__global__ void forward_kernel(T* y, const T* x, const common::ChannelAffine<T>* affine, T slope, int64_t n,
                               int64_t channels) {
  STRATA_GRID_STRIDE(i, n) {
    const T z = common::apply_affine(x[i], affine[i % channels]);
    y[i] = z > T(0) ? z : z * slope;
  }
}

template <class T>
__global__ void channel_constants_kernel(double* beta, double* inv_gamma, const T* weight, const T* bias, double eps,
                                         int64_t channels) {
  const int64_t c = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (c >= channels) return;
  beta[c] = bias ? static_cast<double>(bias[c]) : 0.0;
  inv_gamma[c] = 1.0 / common::inplace_abn_gamma(weight, eps, c);
}

// sums may be null: not computed because nothing below needs them (eval dx only).
template <class T>
__global__ void backward_coefficients_kernel(common::InplaceAbnBackwardCoefficients<T>* coefficients, T* dweight,
                                             T* dbias, const double* sums, const double* invstd, const T* weight,
                                             const double* beta, double eps, bool training, double inv_rows,
                                             int64_t channels) {
  const int64_t c = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (c >= channels) return;
  const double sum_dz = sums ? sums[c] : 0.0, sum_xhat_dz = sums ? sums[channels + c] : 0.0;
  if (dbias) dbias[c] = static_cast<T>(sum_dz);
  if (dweight) dweight[c] = common::inplace_abn_dweight(weight[c], sum_xhat_dz);
  if (coefficients) {
    coefficients[c] = common::inplace_abn_backward_coefficients<T>(
        sum_dz, sum_xhat_dz, invstd[c], common::inplace_abn_gamma(weight, eps, c), beta[c], training, inv_rows);
  }
}

template <class T>
__global__ void backward_kernel(T* dx, const T* dy, const T* y,
                                const common::InplaceAbnBackwardCoefficients<T>* coefficients, T slope, T inv_slope,
                                int64_t n, int64_t channels) {
  STRATA_GRID_STRIDE(i, n) {
    const common::InplaceAbnBackwardCoefficients<T> k = coefficients[i % channels];
    const T yv = y[i];
    const T dz = dy[i] * (yv > T(0) ? T(1) : slope);
    const T xhat = (yv * (yv > T(0) ? T(1) : inv_slope) - k.beta) * k.inv_gamma;
    dx[i] = (dz - k.a - xhat * k.b) * k.k;
  }
}

#undef STRATA_GRID_STRIDE

// Scratch layout (doubles): [0, C) beta, [C, 2C) 1/gamma, [2C, 4C) the sums of dz and xhat dz,
// [4C, 9C) per-channel coefficients (at most five values of T, 40 bytes per channel in f64), then the
// partial sums.
int64_t coefficients_offset(int64_t channels) { return 4 * channels; }
int64_t partials_offset(int64_t channels) { return 9 * channels; }
static_assert(sizeof(common::ChannelAffine<double>) <= 5 * sizeof(double) &&
              sizeof(common::InplaceAbnBackwardCoefficients<double>) <= 5 * sizeof(double));

}  // namespace

int64_t inplace_abn_scratch_cuda(int64_t rows, int64_t channels) {
  return partials_offset(channels) + channel_sums::scratch_doubles(2, rows, channels);
}

template <class T>
void inplace_abn_forward_cuda(T* y, const T* x, const double* mean, const double* invstd, const T* weight,
                              const T* bias, double eps, double slope, int64_t rows, int64_t channels,
                              double* scratch, const Stream& stream) {
  const int64_t n = rows * channels;
  if (n == 0) return;
  auto* affine = reinterpret_cast<common::ChannelAffine<T>*>(scratch + coefficients_offset(channels));
  STRATA_LAUNCH((forward_coefficients_kernel<T>), stream, blocks_for(channels, kThreads), kThreads, 0, affine, mean,
                invstd, weight, bias, eps, channels);
  STRATA_LAUNCH((forward_kernel<T>), stream, blocks_for(n, kThreads), kThreads, 0, y, x, affine,
                static_cast<T>(slope), n, channels);
}

template <class T>
void inplace_abn_backward_cuda(T* dx, T* dweight, T* dbias, const T* dy, const T* y, const double* invstd,
                               const T* weight, const T* bias, double eps, double slope, bool training, int64_t rows,
                               int64_t channels, double* scratch, const Stream& stream) {
  if (channels == 0) return;
  double* beta = scratch;
  double* inv_gamma = scratch + channels;
  double* sums = scratch + 2 * channels;
  const double inv_slope = 1.0 / slope;
  STRATA_LAUNCH((channel_constants_kernel<T>), stream, blocks_for(channels, kThreads), kThreads, 0, beta, inv_gamma,
                weight, bias, eps, channels);
  const bool need_sums = dweight || dbias || (training && dx);
  if (need_sums) {
    channel_sums::channel_sums_cuda<2>(sums, rows, channels, 1.0,
                                       SumDzAndXhatDz<T>{dy, y, beta, inv_gamma, slope, inv_slope, channels},
                                       scratch + partials_offset(channels), stream);
  }
  auto* coefficients =
      dx ? reinterpret_cast<common::InplaceAbnBackwardCoefficients<T>*>(scratch + coefficients_offset(channels))
         : nullptr;
  const double inv_rows = rows > 0 ? 1.0 / static_cast<double>(rows) : 0.0;
  STRATA_LAUNCH((backward_coefficients_kernel<T>), stream, blocks_for(channels, kThreads), kThreads, 0, coefficients,
                dweight, dbias, need_sums ? sums : nullptr, invstd, weight, beta, eps, training, inv_rows, channels);
  const int64_t n = rows * channels;
  if (!dx || n == 0) return;
  STRATA_LAUNCH((backward_kernel<T>), stream, blocks_for(n, kThreads), kThreads, 0, dx, dy, y, coefficients,
                static_cast<T>(slope), static_cast<T>(inv_slope), n, channels);
}

#define STRATA_INSTANTIATE(T)                                                                                    \
  template void inplace_abn_forward_cuda<T>(T*, const T*, const double*, const double*, const T*, const T*, double, \
                                            double, int64_t, int64_t, double*, const Stream&);                      \
  template void inplace_abn_backward_cuda<T>(T*, T*, T*, const T*, const T*, const double*, const T*, const T*,     \
                                             double, double, bool, int64_t, int64_t, double*, const Stream&);
STRATA_INSTANTIATE(float)
STRATA_INSTANTIATE(double)
#undef STRATA_INSTANTIATE

}  // namespace strata::kernels::cuda
