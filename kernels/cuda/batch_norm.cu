// Batch normalisation (Ioffe & Szegedy, ICML 2015; PyTorch's F.batch_norm) and In-place Activated
// Batch Normalisation (Rota Bulo et al., CVPR 2018; mapillary/inplace_abn v1) as one computation on
// CUDA. The math, the two ways the backward reads a saved tensor and the operation order are
// kernels/common/batch_norm.h's, as in the CPU reference (kernels/cpu/batch_norm.cpp): two-pass
// statistics summed in double, per-channel coefficients computed in double and rounded to T once, then
// one elementwise pass in T.
//
// Kernels: per-channel sums (channel_sums.cuh), one thread per channel for the per-channel formulas,
// one thread per element (grid-stride) for the elementwise passes.
#include <cuda_runtime.h>

#include <stdexcept>

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

#define STRATA_CHANNEL_OR_RETURN(c, channels)                                    \
  const int64_t c = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; \
  if (c >= (channels)) return

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

// acc[0] += dz, acc[1] += u dz (kernels/common/batch_norm.h).
template <class T>
struct SumNormTerms {
  const T* dy;
  const T* saved;
  const common::NormRecovery* recovery;
  double slope;
  double inv_slope;
  int64_t channels;
  __device__ void operator()(int64_t r, int64_t c, double* acc) const {
    const int64_t i = r * channels + c;
    common::add_norm_terms(acc[0], acc[1], static_cast<double>(dy[i]), static_cast<double>(saved[i]), recovery[c].shift,
                           recovery[c].unscale, slope, inv_slope);
  }
};

// ---- per-channel kernels ----------------------------------------------------------------------------

template <class T>
__global__ void update_running_kernel(T* running_mean, T* running_var, const double* mean, const double* var,
                                      double momentum, double unbias, int64_t channels) {
  STRATA_CHANNEL_OR_RETURN(c, channels);
  running_mean[c] =
      static_cast<T>(common::batch_norm_running_mean(static_cast<double>(running_mean[c]), mean[c], momentum));
  running_var[c] =
      static_cast<T>(common::batch_norm_running_var(static_cast<double>(running_var[c]), var[c], unbias, momentum));
}

template <class V>
__global__ void invstd_kernel(double* invstd, const V* var, double eps, int64_t channels) {
  STRATA_CHANNEL_OR_RETURN(c, channels);
  invstd[c] = common::batch_norm_invstd(static_cast<double>(var[c]), eps);
}

template <class T>
__global__ void forward_coefficients_kernel(common::ChannelAffine<T>* affine, const double* mean, const double* invstd,
                                            const T* weight, const T* bias, NormActivation act, int64_t channels) {
  STRATA_CHANNEL_OR_RETURN(c, channels);
  affine[c] = common::norm_affine(mean[c], invstd[c], weight, bias, act, c);
}

template <class T>
__global__ void recovery_kernel(common::NormRecovery* recovery, const double* mean, const T* weight, const T* bias,
                                NormActivation act, int64_t channels) {
  STRATA_CHANNEL_OR_RETURN(c, channels);
  recovery[c] = common::norm_recovery(mean, weight, bias, act, c);
}

// sums may be null (nothing below needs them: eval dx only); sum_u_dz may be null (the saved tensor
// is not read: batch norm's eval without a weight gradient).
template <class T>
__global__ void backward_coefficients_kernel(common::NormBackwardCoefficients<T>* coefficients, T* dweight, T* dbias,
                                             const double* sum_dz, const double* sum_u_dz,
                                             const common::NormRecovery* recovery, const double* invstd,
                                             const T* weight, NormActivation act, bool training, double inv_rows,
                                             int64_t channels) {
  STRATA_CHANNEL_OR_RETURN(c, channels);
  const double s0 = sum_dz ? sum_dz[c] : 0.0, s1 = sum_u_dz ? sum_u_dz[c] : 0.0;
  if (dbias) dbias[c] = static_cast<T>(s0);
  if (dweight) dweight[c] = common::norm_dweight(weight[c], s1, invstd[c], act);
  if (coefficients) {
    coefficients[c] = common::norm_backward_coefficients<T>(s0, s1, invstd[c], common::norm_gamma(weight, act, c),
                                                            recovery[c], act, training, inv_rows);
  }
}

// ---- elementwise kernels ----------------------------------------------------------------------------

template <class T>
__global__ void forward_kernel(T* y, const T* x, const common::ChannelAffine<T>* affine, T slope, int64_t n,
                               int64_t channels) {
  STRATA_GRID_STRIDE(i, n) {
    const common::ChannelAffine<T> a = affine[i % channels];
    y[i] = common::norm_forward(x[i], a.shift, a.scale, a.offset, slope);
  }
}

template <class T>
__global__ void backward_training_kernel(T* dx, const T* dy, const T* saved,
                                         const common::NormBackwardCoefficients<T>* coefficients, T slope, T inv_slope,
                                         int64_t n, int64_t channels) {
  STRATA_GRID_STRIDE(i, n) {
    const common::NormBackwardCoefficients<T> k = coefficients[i % channels];
    dx[i] = common::norm_backward_dx(dy[i], saved[i], k.k, k.a, k.b, k.shift, k.unscale, slope, inv_slope);
  }
}

// saved may be null (batch norm: dz = dy).
template <class T>
__global__ void backward_eval_kernel(T* dx, const T* dy, const T* saved,
                                     const common::NormBackwardCoefficients<T>* coefficients, T slope, int64_t n,
                                     int64_t channels) {
  STRATA_GRID_STRIDE(i, n) {
    const T dz = saved ? common::norm_dz(dy[i], saved[i], slope) : dy[i];
    dx[i] = dz * coefficients[i % channels].k;
  }
}

#undef STRATA_CHANNEL_OR_RETURN
#undef STRATA_GRID_STRIDE

}  // namespace

template <class T>
void batch_norm_stats(double* mean, double* var, const T* x, int64_t rows, int64_t channels, const Backend& backend) {
  const double inv_rows = 1.0 / static_cast<double>(rows);
  channel_sums::channel_sums<1>(mean, rows, channels, inv_rows, SumX<T>{x, channels}, backend);
  channel_sums::channel_sums<1>(var, rows, channels, inv_rows, SumSquaredDeviation<T>{x, mean, channels}, backend);
}

template <class T>
void batch_norm_update_running(T* running_mean, T* running_var, const double* mean, const double* var, double momentum,
                               int64_t rows, int64_t channels, const Backend& backend) {
  if (channels == 0) return;
  STRATA_LAUNCH((update_running_kernel<T>), backend.stream, blocks_for(channels, kThreads), kThreads, 0, running_mean,
                running_var, mean, var, momentum, common::batch_norm_unbias(rows), channels);
}

template <class V>
void batch_norm_invstd(double* invstd, const V* var, double eps, int64_t channels, const Backend& backend) {
  if (channels == 0) return;
  STRATA_LAUNCH((invstd_kernel<V>), backend.stream, blocks_for(channels, kThreads), kThreads, 0, invstd, var, eps,
                channels);
}

template <class T>
void batch_norm_forward(T* y, const T* x, const double* mean, const double* invstd, const T* weight, const T* bias,
                        const NormActivation& act, int64_t rows, int64_t channels, const Backend& backend) {
  const int64_t n = rows * channels;
  if (n == 0) return;
  auto* affine = backend.scratch->array<common::ChannelAffine<T>>(channels);
  STRATA_LAUNCH((forward_coefficients_kernel<T>), backend.stream, blocks_for(channels, kThreads), kThreads, 0, affine,
                mean, invstd, weight, bias, act, channels);
  STRATA_LAUNCH((forward_kernel<T>), backend.stream, blocks_for(n, kThreads), kThreads, 0, y, x, affine,
                static_cast<T>(act.slope), n, channels);
}

template <class T>
void batch_norm_backward(T* dx, T* dweight, T* dbias, const T* dy, const T* saved, const double* mean,
                         const double* invstd, const T* weight, const T* bias, const NormActivation& act, bool training,
                         int64_t rows, int64_t channels, const Backend& backend, const common::NormSync* sync) {
  if (act.saved == common::NormSaved::input && act.slope != 1.0) {
    throw std::invalid_argument("batch_norm_backward: from the input, the activation must be the identity (slope 1)");
  }
  if (channels == 0) return;
  auto* recovery = backend.scratch->array<common::NormRecovery>(channels);
  STRATA_LAUNCH((recovery_kernel<T>), backend.stream, blocks_for(channels, kThreads), kThreads, 0, recovery, mean,
                weight, bias, act, channels);
  const double slope = act.slope, inv_slope = 1.0 / act.slope;
  const double* sum_dz = nullptr;
  const double* sum_u_dz = nullptr;
  double* sums = nullptr;
  if (dweight || dbias || (training && dx)) {
    sums = backend.scratch->array<double>(2 * channels);
    if (saved) {
      channel_sums::channel_sums<2>(sums, rows, channels, 1.0,
                                    SumNormTerms<T>{dy, saved, recovery, slope, inv_slope, channels}, backend);
      sum_u_dz = sums + channels;
    } else {
      channel_sums::channel_sums<1>(sums, rows, channels, 1.0, SumX<T>{dy, channels}, backend);
    }
    sum_dz = sums;
  }
  auto* coefficients = dx ? backend.scratch->array<common::NormBackwardCoefficients<T>>(channels) : nullptr;
  int64_t statistics_rows = rows;  // the rows the statistics were taken over: every rank's with sync
  if (sync && training && dx) {
    // The weight and bias gradients from this rank's sums, then the input gradient's coefficients from
    // every rank's (NormSync).
    STRATA_LAUNCH((backward_coefficients_kernel<T>), backend.stream, blocks_for(channels, kThreads), kThreads, 0,
                  nullptr, dweight, dbias, sum_dz, sum_u_dz, recovery, invstd, weight, act, training, 0.0, channels);
    sync->sum(sums, 2 * channels);
    dweight = nullptr;
    dbias = nullptr;
    statistics_rows = sync->rows;
  }
  const double inv_rows = statistics_rows > 0 ? 1.0 / static_cast<double>(statistics_rows) : 0.0;
  STRATA_LAUNCH((backward_coefficients_kernel<T>), backend.stream, blocks_for(channels, kThreads), kThreads, 0,
                coefficients, dweight, dbias, sum_dz, sum_u_dz, recovery, invstd, weight, act, training, inv_rows,
                channels);
  const int64_t n = rows * channels;
  if (!dx || n == 0) return;
  if (training) {
    STRATA_LAUNCH((backward_training_kernel<T>), backend.stream, blocks_for(n, kThreads), kThreads, 0, dx, dy, saved,
                  coefficients, static_cast<T>(slope), static_cast<T>(inv_slope), n, channels);
  } else {
    STRATA_LAUNCH((backward_eval_kernel<T>), backend.stream, blocks_for(n, kThreads), kThreads, 0, dx, dy, saved,
                  coefficients, static_cast<T>(slope), n, channels);
  }
}

#define STRATA_INSTANTIATE(T)                                                                                   \
  template void batch_norm_stats<T>(double*, double*, const T*, int64_t, int64_t, const Backend&);              \
  template void batch_norm_update_running<T>(T*, T*, const double*, const double*, double, int64_t, int64_t,    \
                                             const Backend&);                                                   \
  template void batch_norm_invstd<T>(double*, const T*, double, int64_t, const Backend&);                       \
  template void batch_norm_forward<T>(T*, const T*, const double*, const double*, const T*, const T*,           \
                                      const NormActivation&, int64_t, int64_t, const Backend&);                 \
  template void batch_norm_backward<T>(T*, T*, T*, const T*, const T*, const double*, const double*, const T*,  \
                                       const T*, const NormActivation&, bool, int64_t, int64_t, const Backend&, \
                                       const common::NormSync*);
STRATA_INSTANTIATE(float)
STRATA_INSTANTIATE(double)
#undef STRATA_INSTANTIATE

}  // namespace strata::kernels::cuda
