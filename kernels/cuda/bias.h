// Per-channel bias on CUDA (T = float or double), the forward half of conv2d's and linear's bias (their
// gradient is a column sum, kernels/cuda/reduce.h):
//   y[r, k] += bias[k]     y: (rows, K) contiguous, in place; bias: (K)
#pragma once

#include <cstdint>

#include "kernels/cuda/backend.h"

namespace strata::kernels::cuda {

template <class T> void add_bias_cuda(T* y, const T* bias, int64_t rows, int64_t channels, const Stream& stream);

}  // namespace strata::kernels::cuda
