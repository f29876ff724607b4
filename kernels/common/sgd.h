// One element of the SGD update, shared by the CPU and CUDA kernels, with PyTorch's
// torch.optim.SGD semantics (its documented algorithm, dampening and Nesterov included):
//   d = g + weight_decay * p                                          (if weight_decay != 0)
//   buf = first_step ? d : momentum * buf + (1 - dampening) * d        (if momentum != 0)
//   d = nesterov ? d + momentum * buf : buf                            (if momentum != 0)
//   p = p - lr * d
// The hyper-parameters are rounded to T once, so both backends run the same T arithmetic. The lr may
// instead be read from memory when the update runs (SgdHyper::lr_at): a CUDA graph replays the
// update with the arguments it was captured with, so a changing lr must live in device memory.
#pragma once

#include <cstdint>

#include "kernels/common/host_device.h"

namespace strata::kernels::common {

struct SgdHyper {
  double lr;
  double momentum;
  double dampening;
  double weight_decay;
  bool nesterov;
  // When set: the lr is read from here (memory of the parameters' device) when the update runs, and
  // `lr` is not used; rounded to T like `lr`, so both give the same bits for the same value.
  const double* lr_at = nullptr;
};

template <class T>
struct SgdCoefficients {
  T lr;
  T momentum;
  T one_minus_dampening;
  T weight_decay;
  bool has_weight_decay;
  bool has_momentum;
  bool nesterov;
  bool first_step;  // the momentum buffer is not initialised yet: it becomes d
  const double* lr_at;
};

template <class T>
inline SgdCoefficients<T> sgd_coefficients(const SgdHyper& h, bool first_step) {
  SgdCoefficients<T> k;
  k.lr = static_cast<T>(h.lr);
  k.momentum = static_cast<T>(h.momentum);
  k.one_minus_dampening = static_cast<T>(1.0 - h.dampening);
  k.weight_decay = static_cast<T>(h.weight_decay);
  k.has_weight_decay = h.weight_decay != 0;
  k.has_momentum = h.momentum != 0;
  k.nesterov = h.nesterov;
  k.first_step = first_step;
  k.lr_at = h.lr_at;
  return k;
}

// Updates param[i] (and momentum_buffer[i] when momentum != 0; the buffer is not read otherwise and
// may be null).
template <class T>
STRATA_HOST_DEVICE inline void sgd_update(T* param, const T* grad, T* momentum_buffer, int64_t i,
                                          const SgdCoefficients<T>& k) {
  T d = grad[i];
  if (k.has_weight_decay) d += k.weight_decay * param[i];
  if (k.has_momentum) {
    T buf = k.first_step ? d : k.momentum * momentum_buffer[i] + k.one_minus_dampening * d;
    momentum_buffer[i] = buf;
    d = k.nesterov ? d + k.momentum * buf : buf;
  }
  const T lr = k.lr_at != nullptr ? static_cast<T>(*k.lr_at) : k.lr;
  param[i] -= lr * d;
}

}  // namespace strata::kernels::common
