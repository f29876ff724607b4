// One Adam update over a parameter tensor, fused (one pass over p, g and the moment buffers), with
// PyTorch's torch.optim.Adam semantics (the per-element math is kernels/common/adam.h):
//   g = g + weight_decay * p
//   m = beta1 * m + (1 - beta1) * g;  v = beta2 * v + (1 - beta2) * g^2
//   v_max = max(v_max, v)                                              (if amsgrad; used for v below)
//   p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
// param, grad, exp_avg, exp_avg_sq (and max_exp_avg_sq with amsgrad, otherwise may be null) are n
// contiguous values; `step` is t, the parameter's update count including this one (>= 1).
#pragma once

#include <cstdint>

#include "kernels/common/adam.h"
#include "kernels/cpu/backend.h"

namespace strata::kernels::cpu {

using common::AdamHyper;

template <class T>
void adam_step(T* param, const T* grad, T* exp_avg, T* exp_avg_sq, T* max_exp_avg_sq, int64_t n, const AdamHyper& h,
               int64_t step, const Backend& backend);

}  // namespace strata::kernels::cpu
