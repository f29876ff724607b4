// Per-element loss math shared by the CPU and CUDA kernels (PyTorch 1.13's torch.nn.functional
// definitions; the per-pixel softmax math of cross-entropy is kernels/common/softmax.h):
//   bce_with_logits(x, t) = max(x, 0) - x t + log(1 + exp(-|x|))      (the stable form)
//     d/dx = sigmoid(x) - t,  d/dt = -x
//   mse(a, b)             = (a - b)^2,  d/da = 2 (a - b) = -d/db
//   a label is valid when it is ignore_index or a class in [0, C).
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/common/host_device.h"

namespace strata::kernels::common {

STRATA_HOST_DEVICE inline bool label_is_invalid(int64_t label, int64_t channels, int64_t ignore_index) {
  return label != ignore_index && (label < 0 || label >= channels);
}

// sigmoid without overflow: exp is only taken of a non-positive argument.
template <class T>
STRATA_HOST_DEVICE inline T sigmoid(T x) {
  if (x >= T(0)) return T(1) / (T(1) + std::exp(-x));
  T e = std::exp(x);
  return e / (T(1) + e);
}

template <class T>
STRATA_HOST_DEVICE inline T bce_with_logits_value(T x, T target) {
  return (x > T(0) ? x : T(0)) - x * target + std::log1p(std::exp(-std::fabs(x)));
}

template <class T>
STRATA_HOST_DEVICE inline T mse_value(T a, T b) {
  T d = a - b;
  return d * d;
}

}  // namespace strata::kernels::common
