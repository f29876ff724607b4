// Batch normalisation (Ioffe & Szegedy, ICML 2015) with PyTorch's F.batch_norm semantics, on CUDA.
// R = rows (N*H*W pixels), C = channels (contiguous, innermost).
//   training: mean[c] = (1/R) sum_r x,  var[c] = (1/R) sum_r (x - mean)^2  (biased, used to normalise)
//             running stats move towards the batch statistics with the unbiased var R/(R-1)
//   forward : y = (x - mean) invstd w + b,  invstd = 1/sqrt(var + eps)
//   backward: dbias = sum dy,  dweight = sum dy xhat,  xhat = (x - mean) invstd
//             training dx = w invstd (dy - mean(dy) - xhat mean(dy xhat))   (mean, var depend on x)
//             eval     dx = w invstd dy
// As the CPU reference (kernels/cpu/batch_norm.cpp): two-pass statistics (mean, then squared
// deviations) summed in double, the per-channel coefficients computed in double by the shared
// formulas of kernels/common/batch_norm.h and rounded to T once, then one elementwise pass in T.
//
// Kernels: per-channel sums (channel_sums.cuh), one thread per channel for the per-channel
// formulas, one thread per element (grid-stride) for the elementwise passes.
#include <cuda_runtime.h>

#include "kernels/common/batch_norm.h"
#include "kernels/cuda/batch_norm.h"
#include "kernels/cuda/channel_sums.cuh"
#include "kernels/cuda/launch.h"

namespace strata::kernels::cuda {

namespace {

namespace common = kernels::common;

constexpr unsigned kThreads = 256;

#define STRATA_GRID_STRIDE(i, n)                                                          \
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < (n); \
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)

// ---- the quantities summed per channel -------------------------------------------------------------

template <class T>
struct SumX {
  const T* x;
  int64_t channels;
  __device__ void operator()(int64_t r, int64_t c, double* acc) const {
    acc[0] += static_cast<double>(x[r * channels + c]);
  }
};

template <class T>
struct SumSquaredDeviation {
  const T* x;
  const double* mean;
  int64_t channels;
  __device__ void operator()(int64_t r, int64_t c, double* acc) const {
    double d = static_cast<double>(x[r * channels + c]) - mean[c];
    acc[0] += d * d;
  }
};

template <class T>
struct SumDy {
  const T* dy;
  int64_t channels;
  __device__ void operator()(int64_t r, int64_t c, double* acc) const {
    acc[0] += static_cast<double>(dy[r * channels + c]);
  }
};

// acc[0] += dy, acc[1] += dy (x - mean)
template <class T>
struct SumDyAndDyXmu {
  const T* dy;
  const T* x;
  const double* mean;
  int64_t channels;
  __device__ void operator()(int64_t r, int64_t c, double* acc) const {
    const int64_t i = r * channels + c;
    double g = static_cast<double>(dy[i]);
    acc[0] += g;
    acc[1] += g * (static_cast<double>(x[i]) - mean[c]);
  }
};

// ---- per-channel kernels ----------------------------------------------------------------------------

template <class T>
__global__ void update_running_kernel(T* running_mean, T* running_var, const double* mean, const double* var,
                                      double momentum, double unbias, int64_t channels) {
  const int64_t c = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (c >= channels) return;
  running_mean[c] =
      static_cast<T>(common::batch_norm_running_mean(static_cast<double>(running_mean[c]), mean[c], momentum));
  running_var[c] =
      static_cast<T>(common::batch_norm_running_var(static_cast<double>(running_var[c]), var[c], unbias, momentum));
}

template <class V>
__global__ void invstd_kernel(double* invstd, const V* var, double eps, int64_t channels) {
  const int64_t c = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (c < channels) invstd[c] = common::batch_norm_invstd(static_cast<double>(var[c]), eps);
}

template <class T>
__global__ void forward_coefficients_kernel(common::ChannelAffine<T>* affine, const double* mean,
                                            const double* invstd, const T* weight, const T* bias, int64_t channels) {
  const int64_t c = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (c < channels) affine[c] = common::batch_norm_affine(mean[c], invstd[c], weight, bias, c);
}

// sum_dy / sum_dy_xmu may be null: not computed because nothing below needs them.
template <class T>
__global__ void backward_coefficients_kernel(common::BatchNormBackwardCoefficients<T>* coefficients, T* dweight,
                                             T* dbias, const double* sum_dy, const double* sum_dy_xmu,
                                             const double* mean, const double* invstd, const T* weight, bool training,
                                             double inv_rows, int64_t channels) {
  const int64_t c = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (c >= channels) return;
  const double s0 = sum_dy ? sum_dy[c] : 0.0, s1 = sum_dy_xmu ? sum_dy_xmu[c] : 0.0;
  if (dbias) dbias[c] = static_cast<T>(s0);
  if (dweight) dweight[c] = static_cast<T>(common::batch_norm_dweight(s1, invstd[c]));
  if (coefficients) {
    coefficients[c] = common::batch_norm_backward_coefficients(s0, s1, mean[c], invstd[c], weight, c, training,
                                                               inv_rows);
  }
}

// ---- elementwise kernels ----------------------------------------------------------------------------

template <class T>
__global__ void forward_kernel(T* y, const T* x, const common::ChannelAffine<T>* affine, int64_t n,
                               int64_t channels) {
  STRATA_GRID_STRIDE(i, n) { y[i] = common::apply_affine(x[i], affine[i % channels]); }
}

template <class T>
__global__ void backward_training_kernel(T* dx, const T* dy, const T* x,
                                         const common::BatchNormBackwardCoefficients<T>* coefficients, int64_t n,
                                         int64_t channels) {
  STRATA_GRID_STRIDE(i, n) { dx[i] = common::batch_norm_backward_dx(dy[i], x[i], coefficients[i % channels]); }
}

template <class T>
__global__ void backward_eval_kernel(T* dx, const T* dy, const common::BatchNormBackwardCoefficients<T>* coefficients,
                                     int64_t n, int64_t channels) {
  STRATA_GRID_STRIDE(i, n) { dx[i] = dy[i] * coefficients[i % channels].k; }
}

#undef STRATA_GRID_STRIDE

// Scratch layout (doubles): [0, 2C) per-channel sums, [2C, 6C) per-channel coefficients (at most
// four values of T, 32 bytes per channel in f64), then the partial sums of two quantities.
int64_t coefficients_offset(int64_t channels) { return 2 * channels; }
int64_t partials_offset(int64_t channels) { return 6 * channels; }
static_assert(sizeof(common::ChannelAffine<double>) <= 4 * sizeof(double) &&
              sizeof(common::BatchNormBackwardCoefficients<double>) <= 4 * sizeof(double));

}  // namespace

int64_t batch_norm_scratch_cuda(int64_t rows, int64_t channels) {
  return partials_offset(channels) + channel_sums::scratch_doubles(2, rows, channels);
}

template <class T>
void batch_norm_stats_cuda(double* mean, double* var, const T* x, int64_t rows, int64_t channels, double* scratch,
                           const Stream& stream) {
  const double inv_rows = 1.0 / static_cast<double>(rows);
  double* partials = scratch + partials_offset(channels);
  channel_sums::channel_sums_cuda<1>(mean, rows, channels, inv_rows, SumX<T>{x, channels}, partials, stream);
  channel_sums::channel_sums_cuda<1>(var, rows, channels, inv_rows, SumSquaredDeviation<T>{x, mean, channels},
                                     partials, stream);
}

template <class T>
void batch_norm_update_running_cuda(T* running_mean, T* running_var, const double* mean, const double* var,
                                    double momentum, int64_t rows, int64_t channels, const Stream& stream) {
  if (channels == 0) return;
  STRATA_LAUNCH((update_running_kernel<T>), stream, blocks_for(channels, kThreads), kThreads, 0, running_mean,
                running_var, mean, var, momentum, common::batch_norm_unbias(rows), channels);
}

template <class V>
void batch_norm_invstd_cuda(double* invstd, const V* var, double eps, int64_t channels, const Stream& stream) {
  if (channels == 0) return;
  STRATA_LAUNCH((invstd_kernel<V>), stream, blocks_for(channels, kThreads), kThreads, 0, invstd, var, eps, channels);
}

template <class T>
void batch_norm_forward_cuda(T* y, const T* x, const double* mean, const double* invstd, const T* weight,
                             const T* bias, int64_t rows, int64_t channels, double* scratch, const Stream& stream) {
  const int64_t n = rows * channels;
  if (n == 0) return;
  auto* affine = reinterpret_cast<common::ChannelAffine<T>*>(scratch + coefficients_offset(channels));
  STRATA_LAUNCH((forward_coefficients_kernel<T>), stream, blocks_for(channels, kThreads), kThreads, 0, affine, mean,
                invstd, weight, bias, channels);
  STRATA_LAUNCH((forward_kernel<T>), stream, blocks_for(n, kThreads), kThreads, 0, y, x, affine, n, channels);
}

template <class T>
void batch_norm_backward_cuda(T* dx, T* dweight, T* dbias, const T* dy, const T* x, const double* mean,
                              const double* invstd, const T* weight, bool training, int64_t rows, int64_t channels,
                              double* scratch, const Stream& stream) {
  if (channels == 0) return;
  double* sums = scratch;
  double* partials = scratch + partials_offset(channels);
  const double* sum_dy = nullptr;
  const double* sum_dy_xmu = nullptr;
  if (dweight || dbias || (training && dx)) {
    if (x) {
      channel_sums::channel_sums_cuda<2>(sums, rows, channels, 1.0, SumDyAndDyXmu<T>{dy, x, mean, channels},
                                         partials, stream);
      sum_dy_xmu = sums + channels;
    } else {
      channel_sums::channel_sums_cuda<1>(sums, rows, channels, 1.0, SumDy<T>{dy, channels}, partials, stream);
    }
    sum_dy = sums;
  }
  auto* coefficients =
      dx ? reinterpret_cast<common::BatchNormBackwardCoefficients<T>*>(scratch + coefficients_offset(channels))
         : nullptr;
  const double inv_rows = rows > 0 ? 1.0 / static_cast<double>(rows) : 0.0;
  STRATA_LAUNCH((backward_coefficients_kernel<T>), stream, blocks_for(channels, kThreads), kThreads, 0, coefficients,
                dweight, dbias, sum_dy, sum_dy_xmu, mean, invstd, weight, training, inv_rows, channels);
  const int64_t n = rows * channels;
  if (!dx || n == 0) return;
  if (training) {
    STRATA_LAUNCH((backward_training_kernel<T>), stream, blocks_for(n, kThreads), kThreads, 0, dx, dy, x,
                  coefficients, n, channels);
  } else {
    STRATA_LAUNCH((backward_eval_kernel<T>), stream, blocks_for(n, kThreads), kThreads, 0, dx, dy, coefficients, n,
                  channels);
  }
}

// batch_norm_invstd_cuda<double> serves both the batch variance and f64 running statistics.
#define STRATA_INSTANTIATE(T)                                                                                    \
  template void batch_norm_stats_cuda<T>(double*, double*, const T*, int64_t, int64_t, double*, const Stream&);  \
  template void batch_norm_update_running_cuda<T>(T*, T*, const double*, const double*, double, int64_t, int64_t, \
                                                  const Stream&);                                                \
  template void batch_norm_forward_cuda<T>(T*, const T*, const double*, const double*, const T*, const T*,        \
                                           int64_t, int64_t, double*, const Stream&);                            \
  template void batch_norm_backward_cuda<T>(T*, T*, T*, const T*, const T*, const double*, const double*,         \
                                            const T*, bool, int64_t, int64_t, double*, const Stream&);
STRATA_INSTANTIATE(float)
STRATA_INSTANTIATE(double)
#undef STRATA_INSTANTIATE
template void batch_norm_invstd_cuda<float>(double*, const float*, double, int64_t, const Stream&);
template void batch_norm_invstd_cuda<double>(double*, const double*, double, int64_t, const Stream&);

}  // namespace strata::kernels::cuda
