// Per-channel batch-norm and In-place ABN math shared by the CPU reference kernels
// (kernels/cpu/batch_norm.cpp, kernels/cpu/inplace_abn.cpp) and the CUDA kernels
// (kernels/cuda/batch_norm.cu, kernels/cuda/inplace_abn.cu), so both backends round the same
// double-precision quantities to T in the same way. Definitions: PyTorch's F.batch_norm (Ioffe &
// Szegedy 2015) and mapillary/inplace_abn v1 (Rota Bulo et al. 2018); the derivations are in the
// CPU kernel files.
//
// Statistics are doubles (mean, var, invstd = 1/sqrt(var + eps), sums over R rows); T (float or
// double) is the storage type of activations and parameters. weight and bias may be null (1 and 0).
// Every expression keeps the operation order the CPU kernels had before this header existed, so
// their results are unchanged.
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/common/host_device.h"

namespace strata::kernels::common {

STRATA_HOST_DEVICE inline double batch_norm_invstd(double var, double eps) { return 1.0 / std::sqrt(var + eps); }

// R / (R - 1): the biased batch variance times this is the unbiased one (R > 1).
STRATA_HOST_DEVICE inline double batch_norm_unbias(int64_t rows) {
  return static_cast<double>(rows) / static_cast<double>(rows - 1);
}

// running = (1 - momentum) running + momentum batch, with the unbiased variance for running_var.
STRATA_HOST_DEVICE inline double batch_norm_running_mean(double running, double mean, double momentum) {
  return (1.0 - momentum) * running + momentum * mean;
}
STRATA_HOST_DEVICE inline double batch_norm_running_var(double running, double var, double unbias, double momentum) {
  return (1.0 - momentum) * running + momentum * var * unbias;
}

// Forward as y = (x - shift) scale + offset per channel.
template <class T>
struct ChannelAffine {
  T shift;
  T scale;
  T offset;
};

template <class T>
STRATA_HOST_DEVICE inline T apply_affine(T x, const ChannelAffine<T>& a) {
  return (x - a.shift) * a.scale + a.offset;
}

// batch_norm: shift = mean, scale = invstd weight, offset = bias.
template <class T>
STRATA_HOST_DEVICE inline ChannelAffine<T> batch_norm_affine(double mean, double invstd, const T* weight, const T* bias,
                                                             int64_t c) {
  return {static_cast<T>(mean), static_cast<T>(invstd * (weight ? static_cast<double>(weight[c]) : 1.0)),
          bias ? bias[c] : T(0)};
}

// batch_norm backward, dx = (dy - a - (x - m) b) k with k = invstd weight and, in training
// (statistics that depend on x), a = mean(dy), b = invstd^2 mean(dy (x - mean)), m = mean; eval
// has a = b = 0. sum_dy = sum_r dy, sum_dy_xmu = sum_r dy (x - mean); inv_rows = 1/R.
template <class T>
struct BatchNormBackwardCoefficients {
  T k;
  T a;
  T b;
  T m;
};

template <class T>
STRATA_HOST_DEVICE inline BatchNormBackwardCoefficients<T> batch_norm_backward_coefficients(
    double sum_dy, double sum_dy_xmu, double mean, double invstd, const T* weight, int64_t c, bool training,
    double inv_rows) {
  BatchNormBackwardCoefficients<T> out{static_cast<T>(invstd * (weight ? static_cast<double>(weight[c]) : 1.0)), T(0),
                                       T(0), T(0)};
  if (training) {
    out.a = static_cast<T>(sum_dy * inv_rows);
    out.b = static_cast<T>(invstd * invstd * sum_dy_xmu * inv_rows);
    out.m = static_cast<T>(mean);
  }
  return out;
}

template <class T>
STRATA_HOST_DEVICE inline T batch_norm_backward_dx(T dy, T x, const BatchNormBackwardCoefficients<T>& k) {
  return (dy - k.a - (x - k.m) * k.b) * k.k;
}

// dweight = sum_r dy xhat = invstd sum_r dy (x - mean).
STRATA_HOST_DEVICE inline double batch_norm_dweight(double sum_dy_xmu, double invstd) { return sum_dy_xmu * invstd; }

// ---- In-place ABN ---------------------------------------------------------------------------------

// gamma = |weight| + eps, the invertible scale (1 without a weight).
template <class T>
STRATA_HOST_DEVICE inline double inplace_abn_gamma(const T* weight, double eps, int64_t c) {
  return weight ? std::fabs(static_cast<double>(weight[c])) + eps : 1.0;
}

// z = (x - mean) invstd gamma + bias.
template <class T>
STRATA_HOST_DEVICE inline ChannelAffine<T> inplace_abn_affine(double mean, double invstd, double gamma, const T* bias,
                                                              int64_t c) {
  return {static_cast<T>(mean), static_cast<T>(invstd * gamma), bias ? bias[c] : T(0)};
}

// Backward from y: with z = act^-1(y), dz = dy act'(z), xhat = (z - beta) inv_gamma,
// dx = (dz - a - xhat b) k, k = gamma invstd and, in training, a = mean(dz), b = mean(xhat dz).
// sum_dz = sum_r dz, sum_xhat_dz = sum_r xhat dz; inv_rows = 1/R.
template <class T>
struct InplaceAbnBackwardCoefficients {
  T k;
  T a;
  T b;
  T beta;
  T inv_gamma;
};

template <class T>
STRATA_HOST_DEVICE inline InplaceAbnBackwardCoefficients<T> inplace_abn_backward_coefficients(
    double sum_dz, double sum_xhat_dz, double invstd, double gamma, double beta, bool training, double inv_rows) {
  InplaceAbnBackwardCoefficients<T> out{static_cast<T>(gamma * invstd), T(0), T(0), static_cast<T>(beta),
                                        static_cast<T>(1.0 / gamma)};
  if (training) {
    out.a = static_cast<T>(sum_dz * inv_rows);
    out.b = static_cast<T>(sum_xhat_dz * inv_rows);
  }
  return out;
}

// d|w|/dw = sign(w) with sign(0) = +1.
template <class T>
STRATA_HOST_DEVICE inline T inplace_abn_dweight(T weight, double sum_xhat_dz) {
  return static_cast<T>(weight >= T(0) ? sum_xhat_dz : -sum_xhat_dz);
}

}  // namespace strata::kernels::common
