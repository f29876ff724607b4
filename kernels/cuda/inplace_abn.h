// In-place Activated Batch Normalisation CUDA kernels (T = float or double), the operations and argument
// order of kernels/cpu/inplace_abn.h plus device scratch and the stream. Inputs are NHWC viewed as
// (R, C): R = N*H*W rows, C contiguous channels. mean and invstd = 1/sqrt(var + eps) are double
// arrays of C values in device memory (batch statistics in training, running statistics in eval;
// kernels/cuda/batch_norm.h computes them). The activation is a leaky ReLU with slope > 0;
// identity is slope = 1.
//
// `scratch` is device memory of inplace_abn_scratch_cuda(R, C) doubles from the caller's allocator.
#pragma once

#include <cstdint>

#include "kernels/cuda/backend.h"

namespace strata::kernels::cuda {

int64_t inplace_abn_scratch_cuda(int64_t rows, int64_t channels);

// y = act((x - mean) invstd (|weight| + eps) + bias); weight and bias may be null (|w| + eps := 1,
// bias := 0).
template <class T>
void inplace_abn_forward_cuda(T* y, const T* x, const double* mean, const double* invstd, const T* weight,
                              const T* bias, double eps, double slope, int64_t rows, int64_t channels,
                              double* scratch, const Stream& stream);

// Backward from the output y alone (x is not needed), as inplace_abn_backward_cpu:
//   z = act^-1(y) (y / slope where y <= 0),  dz = dy act'(z) (slope where y <= 0),
//   xhat = (z - bias) / (|weight| + eps),
//   dbias = sum dz,  dweight = sign(weight) sum xhat dz  (sign(0) = +1)
//   dx (training) = (dz - mean(dz) - xhat mean(xhat dz)) (|weight| + eps) invstd
//   dx (eval)     = dz (|weight| + eps) invstd
// Any of dx, dweight, dbias may be null (not needed).
template <class T>
void inplace_abn_backward_cuda(T* dx, T* dweight, T* dbias, const T* dy, const T* y, const double* invstd,
                               const T* weight, const T* bias, double eps, double slope, bool training, int64_t rows,
                               int64_t channels, double* scratch, const Stream& stream);

}  // namespace strata::kernels::cuda
