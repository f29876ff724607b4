// Per-element loss math shared by the CPU and CUDA kernels (PyTorch 1.13's torch.nn.functional
// definitions; the per-pixel softmax math of cross-entropy is kernels/common/softmax.h):
//   bce_with_logits(x, t) = max(x, 0) - x t + log(1 + exp(-|x|))      (the stable form)
//     d/dx = sigmoid(x) - t,  d/dt = -x
//   mse(a, b)             = (a - b)^2,  d/da = 2 (a - b) = -d/db
// and the contract every loss kernel of both backends follows for reduced losses: the forward
// writes the scalar loss (sum of the per-element losses times the reduction's factor) to memory of
// the kernel's device, and the backward reads the upstream gradient of that scalar (and, for a mean
// over valid pixels, their count from the label statistics, kernels/common/labels.h) from there, so
// no value travels to the host inside a training step (DESIGN.md, "One step, one direction").
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/common/host_device.h"
#include "kernels/common/labels.h"
#include "kernels/common/sigmoid.h"

namespace strata::kernels::common {

// How a reduced loss scales its sum: by `scale` (1 for a sum, 1 / count for a mean over all
// elements) or, when per_valid, by 1 / the number of valid labels (PyTorch's 'mean' with an ignore
// index; 0 valid labels give NaN, as in PyTorch).
struct LossReduction {
  double scale = 1.0;
  bool per_valid = false;
};

STRATA_HOST_DEVICE inline double reduction_factor(const LossReduction& reduction, int64_t valid) {
  if (!reduction.per_valid) return reduction.scale;
  return valid > 0 ? 1.0 / static_cast<double>(valid) : std::nan("");
}

// The upstream gradient of a loss as its backward kernels read it: element i's derivative is scaled
// by weight(i) = dloss[i] for reduction 'none', else by the reduced loss's upstream gradient
// *dreduced times the reduction factor (computed in double, rounded to T once).
template <class T>
struct LossUpstream {
  const T* dloss = nullptr;        // (n): upstream gradient of reduction 'none', or null
  const T* dreduced = nullptr;     // (): upstream gradient of the reduced loss, when dloss is null
  const int64_t* stats = nullptr;  // the forward's label statistics, read when reduction.per_valid
  LossReduction reduction;

  STRATA_HOST_DEVICE T weight(int64_t i) const {
    if (dloss) return dloss[i];
    const int64_t valid = reduction.per_valid ? stats[kValidLabels] : 0;
    return static_cast<T>(static_cast<double>(*dreduced) * reduction_factor(reduction, valid));
  }
};

template <class T>
STRATA_HOST_DEVICE inline T bce_with_logits_value(T x, T target) {
  return (x > T(0) ? x : T(0)) - x * target + std::log1p(std::exp(-std::fabs(x)));
}

template <class T>
STRATA_HOST_DEVICE inline T mse_value(T a, T b) {
  T d = a - b;
  return d * d;
}

// The elementwise losses as functors of (a_i, b_i), for the forward kernels both share.
struct BceWithLogitsValue {
  template <class T>
  STRATA_HOST_DEVICE T operator()(T x, T target) const {
    return bce_with_logits_value(x, target);
  }
};

struct MseValue {
  template <class T>
  STRATA_HOST_DEVICE T operator()(T a, T b) const {
    return mse_value(a, b);
  }
};

}  // namespace strata::kernels::common
