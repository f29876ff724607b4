// One SGD update over a parameter tensor, fused (one pass over p, g, buf), with PyTorch's
// torch.optim.SGD semantics (the per-element math is kernels/common/sgd.h):
//   d = g + weight_decay * p
//   buf = first ? d : momentum * buf + (1 - dampening) * d          (if momentum != 0)
//   d = nesterov ? d + momentum * buf : buf                          (if momentum != 0)
//   p = p - lr * d
#pragma once

#include <cstdint>

#include "kernels/common/sgd.h"
#include "kernels/cpu/backend.h"

namespace strata::kernels::cpu {

using common::SgdHyper;

template <class T>
void sgd_step(T* param, const T* grad, T* momentum_buffer, int64_t n, const SgdHyper& h, bool first_step,
              const Backend& backend);

}  // namespace strata::kernels::cpu
