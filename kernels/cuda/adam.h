// One fused Adam update over a parameter tensor on CUDA (T = float or double), torch.optim.Adam's
// semantics (kernels/common/adam.h), with the argument order of kernels/cpu/adam.h, the backend last:
//   g = g + weight_decay * p
//   m = beta1 * m + (1 - beta1) * g;  v = beta2 * v + (1 - beta2) * g^2
//   v_max = max(v_max, v)                                              (if amsgrad; used for v below)
//   p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
// param, grad, exp_avg, exp_avg_sq (and max_exp_avg_sq with amsgrad, otherwise may be null) are n
// contiguous device values; `step` is t, the parameter's update count including this one (>= 1).
#pragma once

#include <cstdint>

#include "kernels/common/adam.h"
#include "kernels/cuda/backend.h"

namespace strata::kernels::cuda {

using common::AdamHyper;

template <class T>
void adam_step(T* param, const T* grad, T* exp_avg, T* exp_avg_sq, T* max_exp_avg_sq, int64_t n, const AdamHyper& h,
               int64_t step, const Backend& backend);

}  // namespace strata::kernels::cuda
