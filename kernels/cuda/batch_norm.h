// Batch normalisation CUDA kernels (T = float or double), the operations and argument order of
// kernels/cpu/batch_norm.h plus device scratch and the stream. Activations are NHWC viewed as
// (R, C): R = N*H*W rows (N for an (N,C) input), C contiguous channels. Per-channel statistics
// (mean, var, invstd = 1/sqrt(var + eps)) are double arrays of C values in device memory, as on
// the CPU, and every sum is taken in double in a fixed order (kernels/cuda/channel_sums.cuh), so
// results are deterministic and agree with the CPU reference to f32 rounding.
//
// `scratch` is device memory of batch_norm_scratch_cuda(R, C) doubles from the caller's allocator.
#pragma once

#include <cstdint>

#include "kernels/cuda/backend.h"

namespace strata::kernels::cuda {

int64_t batch_norm_scratch_cuda(int64_t rows, int64_t channels);

// mean[c] = (1/R) sum_r x[r,c];   var[c] = (1/R) sum_r (x[r,c] - mean[c])^2  (biased), R > 0.
template <class T>
void batch_norm_stats_cuda(double* mean, double* var, const T* x, int64_t rows, int64_t channels, double* scratch,
                           const Stream& stream);

// In place, R > 1:  running_mean = (1 - momentum) running_mean + momentum mean
//                   running_var  = (1 - momentum) running_var  + momentum var R / (R - 1)
template <class T>
void batch_norm_update_running_cuda(T* running_mean, T* running_var, const double* mean, const double* var,
                                    double momentum, int64_t rows, int64_t channels, const Stream& stream);

// invstd[c] = 1/sqrt(var[c] + eps), in double; V = double (batch variance) or T (running_var).
template <class V>
void batch_norm_invstd_cuda(double* invstd, const V* var, double eps, int64_t channels, const Stream& stream);

// y[r,c] = (x[r,c] - mean[c]) invstd[c] weight[c] + bias[c]; weight and bias may be null (1 and 0).
template <class T>
void batch_norm_forward_cuda(T* y, const T* x, const double* mean, const double* invstd, const T* weight,
                             const T* bias, int64_t rows, int64_t channels, double* scratch, const Stream& stream);

// The gradients of kernels/cpu/batch_norm.h's batch_norm_backward_cpu:
//   dbias = sum_r dy,  dweight = sum_r dy xhat,  xhat = (x - mean) invstd
//   dx (training) = w invstd (dy - mean_r(dy) - xhat mean_r(dy xhat)),  dx (eval) = w invstd dy
// Any of dx, dweight, dbias may be null (not needed). x may be null only when neither dweight is
// needed nor training is set.
template <class T>
void batch_norm_backward_cuda(T* dx, T* dweight, T* dbias, const T* dy, const T* x, const double* mean,
                              const double* invstd, const T* weight, bool training, int64_t rows, int64_t channels,
                              double* scratch, const Stream& stream);

}  // namespace strata::kernels::cuda
