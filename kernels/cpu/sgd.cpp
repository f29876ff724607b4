#include "kernels/cpu/sgd.h"

#include "kernels/cpu/parallel.h"

namespace strata::kernels::cpu {

template <class T>
void sgd_step_cpu(T* param, const T* grad, T* momentum_buffer, int64_t n, const SgdHyper& h, bool first_step) {
  const T lr = static_cast<T>(h.lr), mu = static_cast<T>(h.momentum), wd = static_cast<T>(h.weight_decay);
  const T damp = static_cast<T>(1.0 - h.dampening);
  parallel_for(0, n, kElementwiseGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      T d = grad[i];
      if (h.weight_decay != 0) d += wd * param[i];
      if (h.momentum != 0) {
        T buf = first_step ? d : mu * momentum_buffer[i] + damp * d;
        momentum_buffer[i] = buf;
        d = h.nesterov ? d + mu * buf : buf;
      }
      param[i] -= lr * d;
    }
  });
}

template void sgd_step_cpu<float>(float*, const float*, float*, int64_t, const SgdHyper&, bool);
template void sgd_step_cpu<double>(double*, const double*, double*, int64_t, const SgdHyper&, bool);

}  // namespace strata::kernels::cpu
