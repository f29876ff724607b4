// Batch normalisation and In-place ABN CPU kernels (T = float or double): one set of kernels for both
// ops, the math of kernels/common/batch_norm.h, parametrised by NormActivation (the weight mode, the
// activation slope and the tensor the backward reads). Same names and arguments as the CUDA kernels
// (kernels/cuda/batch_norm.h), the backend last.
//
// Activations are NHWC viewed as (R, C): R = N*H*W rows (pixels; N for an (N,C) input), C contiguous
// channels. Per-channel statistics (mean, var, invstd = 1/sqrt(var + eps)) are double arrays of C
// values. Sums are accumulated in double and chunked at boundaries that depend only on (R, C), so
// results are bit-identical for any number of threads.
#pragma once

#include <cstdint>

#include "kernels/common/batch_norm.h"
#include "kernels/cpu/backend.h"

namespace strata::kernels::cpu {

using common::NormActivation;

// mean[c] = (1/R) sum_r x[r,c];   var[c] = (1/R) sum_r (x[r,c] - mean[c])^2  (biased), R > 0.
template <class T>
void batch_norm_stats(double* mean, double* var, const T* x, int64_t rows, int64_t channels, const Backend& backend);

// In place, R > 1:  running_mean = (1 - momentum) running_mean + momentum mean
//                   running_var  = (1 - momentum) running_var  + momentum var R / (R - 1)
template <class T>
void batch_norm_update_running(T* running_mean, T* running_var, const double* mean, const double* var, double momentum,
                               int64_t rows, int64_t channels, const Backend& backend);

// invstd[c] = 1/sqrt(var[c] + eps), in double; V = double (batch variance) or T (running_var).
template <class V>
void batch_norm_invstd(double* invstd, const V* var, double eps, int64_t channels, const Backend& backend);

// y[r,c] = act((x[r,c] - mean[c]) invstd[c] gamma[c] + bias[c]); weight and bias may be null (gamma := 1,
// bias := 0).
template <class T>
void batch_norm_forward(T* y, const T* x, const double* mean, const double* invstd, const T* weight, const T* bias,
                        const NormActivation& act, int64_t rows, int64_t channels, const Backend& backend);

// dx, dweight, dbias (any may be null: not needed) from dy and `saved`, the input x or the output y as
// act.saved says. mean is read for the input only, bias for the output only. From the input, the
// activation must be the identity, and `saved` may be null when neither dweight is needed nor
// training is set.
template <class T>
void batch_norm_backward(T* dx, T* dweight, T* dbias, const T* dy, const T* saved, const double* mean,
                         const double* invstd, const T* weight, const T* bias, const NormActivation& act, bool training,
                         int64_t rows, int64_t channels, const Backend& backend,
                         const common::NormSync* sync = nullptr);

}  // namespace strata::kernels::cpu
