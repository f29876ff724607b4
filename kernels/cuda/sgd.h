// One fused SGD update over a parameter tensor on CUDA (T = float or double), torch.optim.SGD's semantics
// (kernels/common/sgd.h), with the argument order of kernels/cpu/sgd.h, the backend last:
//   d = g + weight_decay * p
//   buf = first_step ? d : momentum * buf + (1 - dampening) * d      (if momentum != 0)
//   d = nesterov ? d + momentum * buf : buf                          (if momentum != 0)
//   p = p - lr * d
// param, grad and momentum_buffer are n contiguous device values; momentum_buffer may be null when
// momentum == 0.
#pragma once

#include <cstdint>

#include "kernels/common/sgd.h"
#include "kernels/cuda/backend.h"

namespace strata::kernels::cuda {

using common::SgdHyper;

template <class T>
void sgd_step(T* param, const T* grad, T* momentum_buffer, int64_t n, const SgdHyper& h, bool first_step,
              const Backend& backend);

}  // namespace strata::kernels::cuda
