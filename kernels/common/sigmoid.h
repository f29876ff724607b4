// The logistic sigmoid, written once for both backends (the sigmoid op's kernels in
// kernels/*/elementwise and the bce_with_logits backward in kernels/*/losses call it), as
// torch.sigmoid defines it:
//   sigmoid(x)  = 1 / (1 + exp(-x)), evaluated as exp(x) / (1 + exp(x)) for x < 0, so that exp never
//                 overflows and the result never rounds to 0 before it is denormal
//   backward    dx = dy * y * (1 - y), from the output y alone (as PyTorch's sigmoid_backward)
#pragma once

#include <cmath>

#include "kernels/common/host_device.h"

namespace strata::kernels::common {

template <class T>
STRATA_HOST_DEVICE inline T sigmoid(T x) {
  if (x >= T(0)) return T(1) / (T(1) + std::exp(-x));
  const T e = std::exp(x);
  return e / (T(1) + e);
}

template <class T>
STRATA_HOST_DEVICE inline T sigmoid_backward(T dy, T y) {
  return dy * y * (T(1) - y);
}

}  // namespace strata::kernels::common
