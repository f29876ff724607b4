// One element of the Adam update, shared by the CPU and CUDA kernels, with PyTorch's
// torch.optim.Adam semantics (Kingma & Ba 2015, Algorithm 1, as PyTorch documents and runs it on the
// CPU: the L2 weight decay is added to the gradient, unlike AdamW; bias corrections; optional
// AMSGrad), at the parameter's step t >= 1:
//   g = g + weight_decay * p                                          (if weight_decay != 0)
//   m = beta1 * m + (1 - beta1) * g
//   v = beta2 * v + (1 - beta2) * g * g
//   v_max = max(v_max, v)                                             (if amsgrad; v_max replaces v below)
//   p = p - step_size * m / (sqrt(v) / bias_correction2_sqrt + eps)
// with step_size = lr / (1 - beta1^t) and bias_correction2_sqrt = sqrt(1 - beta2^t), both computed in
// double (PyTorch computes them as Python floats) and rounded to T once, like every hyper-parameter,
// so both backends run the same T arithmetic.
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/common/host_device.h"

namespace strata::kernels::common {

struct AdamHyper {
  double lr;
  double beta1;
  double beta2;
  double eps;
  double weight_decay;
  bool amsgrad;
};

template <class T>
struct AdamCoefficients {
  T beta1;
  T one_minus_beta1;
  T beta2;
  T one_minus_beta2;
  T eps;
  T weight_decay;
  T step_size;
  T bias_correction2_sqrt;
  bool has_weight_decay;
  bool amsgrad;
};

// `step` is the parameter's step count including this update (1 on its first update).
template <class T>
inline AdamCoefficients<T> adam_coefficients(const AdamHyper& h, int64_t step) {
  const double t = static_cast<double>(step);
  AdamCoefficients<T> k;
  k.beta1 = static_cast<T>(h.beta1);
  k.one_minus_beta1 = static_cast<T>(1.0 - h.beta1);
  k.beta2 = static_cast<T>(h.beta2);
  k.one_minus_beta2 = static_cast<T>(1.0 - h.beta2);
  k.eps = static_cast<T>(h.eps);
  k.weight_decay = static_cast<T>(h.weight_decay);
  k.step_size = static_cast<T>(h.lr / (1.0 - std::pow(h.beta1, t)));
  k.bias_correction2_sqrt = static_cast<T>(std::sqrt(1.0 - std::pow(h.beta2, t)));
  k.has_weight_decay = h.weight_decay != 0;
  k.amsgrad = h.amsgrad;
  return k;
}

// Updates param[i], exp_avg[i], exp_avg_sq[i] (and max_exp_avg_sq[i] with amsgrad; it is not read
// otherwise and may be null).
template <class T>
STRATA_HOST_DEVICE inline void adam_update(T* param, const T* grad, T* exp_avg, T* exp_avg_sq, T* max_exp_avg_sq,
                                           int64_t i, const AdamCoefficients<T>& k) {
  T g = grad[i];
  if (k.has_weight_decay) g += k.weight_decay * param[i];
  const T m = k.beta1 * exp_avg[i] + k.one_minus_beta1 * g;
  T v = k.beta2 * exp_avg_sq[i] + k.one_minus_beta2 * (g * g);
  exp_avg[i] = m;
  exp_avg_sq[i] = v;
  if (k.amsgrad) {
    if (max_exp_avg_sq[i] > v) v = max_exp_avg_sq[i];
    max_exp_avg_sq[i] = v;
  }
  const T denom = std::sqrt(v) / k.bias_correction2_sqrt + k.eps;
  param[i] -= k.step_size * (m / denom);
}

}  // namespace strata::kernels::common
