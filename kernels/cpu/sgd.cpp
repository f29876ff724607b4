#include "kernels/cpu/sgd.h"

#include "kernels/cpu/parallel.h"

namespace strata::kernels::cpu {

template <class T>
void sgd_step(T* param, const T* grad, T* momentum_buffer, int64_t n, const SgdHyper& h, bool first_step,
              const Backend&) {
  const common::SgdCoefficients<T> k = common::sgd_coefficients<T>(h, first_step);
  parallel_for(0, n, kElementwiseGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) common::sgd_update(param, grad, momentum_buffer, i, k);
  });
}

template void sgd_step<float>(float*, const float*, float*, int64_t, const SgdHyper&, bool, const Backend&);
template void sgd_step<double>(double*, const double*, double*, int64_t, const SgdHyper&, bool, const Backend&);

}  // namespace strata::kernels::cpu
