// abs, log and clamp, written once for both backends (kernels/*/elementwise), as PyTorch defines
// them and their gradients:
//   abs      y = |x|                 dx = dy * sign(x), sign(0) = 0 (torch.sgn's convention)
//   log      y = log(x)              dx = dy / x (x <= 0 gives -inf or NaN, as torch.log)
//   clamp    y = min(max(x, lo), hi) dx = dy where lo <= x <= hi, else 0 (torch.clamp's backward:
//                                    the bounds themselves pass the gradient)
#pragma once

#include <cmath>

#include "kernels/common/host_device.h"

namespace strata::kernels::common {

enum class UnaryMath { abs, log, clamp };

template <class T>
STRATA_HOST_DEVICE inline T unary_math(UnaryMath op, T x, T lo, T hi) {
  switch (op) {
    case UnaryMath::abs: return x < T(0) ? -x : x;
    case UnaryMath::log: return std::log(x);
    case UnaryMath::clamp: return x < lo ? lo : (x > hi ? hi : x);
  }
  return x;
}

template <class T>
STRATA_HOST_DEVICE inline T unary_math_backward(UnaryMath op, T dy, T x, T lo, T hi) {
  switch (op) {
    case UnaryMath::abs: return x > T(0) ? dy : (x < T(0) ? -dy : T(0));
    case UnaryMath::log: return dy / x;
    case UnaryMath::clamp: return x >= lo && x <= hi ? dy : T(0);
  }
  return dy;
}

}  // namespace strata::kernels::common
