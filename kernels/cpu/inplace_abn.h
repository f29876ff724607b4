// In-place Activated Batch Normalisation CPU kernels (T = float or double). Inputs are NHWC viewed
// as (R, C): R = N*H*W rows, C contiguous channels. mean and invstd = 1/sqrt(var + eps) are double
// arrays of C values (batch statistics in training, running statistics in eval).
//
// The activation is a leaky ReLU with slope > 0; identity is slope = 1 (act(z) = z for z <= 0 too),
// so one kernel serves both.
#pragma once

#include <cstdint>

namespace strata::kernels::cpu {

// y = act((x - mean) invstd (|weight| + eps) + bias); weight and bias may be null (|w| + eps := 1,
// bias := 0).
template <class T>
void inplace_abn_forward_cpu(T* y, const T* x, const double* mean, const double* invstd, const T* weight,
                             const T* bias, double eps, double slope, int64_t rows, int64_t channels);

// Backward from the output y alone (x is not needed):
//   z = act^-1(y) (y / slope where y <= 0),  dz = dy act'(z) (slope where y <= 0),
//   xhat = (z - bias) / (|weight| + eps),
//   dbias = sum dz,  dweight = sign(weight) sum xhat dz  (sign(0) = +1)
//   dx (training) = (dz - mean(dz) - xhat mean(xhat dz)) (|weight| + eps) invstd
//   dx (eval)     = dz (|weight| + eps) invstd
// Any of dx, dweight, dbias may be null (not needed).
template <class T>
void inplace_abn_backward_cpu(T* dx, T* dweight, T* dbias, const T* dy, const T* y, const double* invstd,
                              const T* weight, const T* bias, double eps, double slope, bool training, int64_t rows,
                              int64_t channels);

}  // namespace strata::kernels::cpu
