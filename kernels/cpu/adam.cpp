#include "kernels/cpu/adam.h"

#include "kernels/cpu/parallel.h"

namespace strata::kernels::cpu {

template <class T>
void adam_step(T* param, const T* grad, T* exp_avg, T* exp_avg_sq, T* max_exp_avg_sq, int64_t n, const AdamHyper& h,
               int64_t step, const Backend&) {
  const common::AdamCoefficients<T> k = common::adam_coefficients<T>(h, step);
  parallel_for(0, n, kElementwiseGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) common::adam_update(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, i, k);
  });
}

template void adam_step<float>(float*, const float*, float*, float*, float*, int64_t, const AdamHyper&, int64_t,
                               const Backend&);
template void adam_step<double>(double*, const double*, double*, double*, double*, int64_t, const AdamHyper&, int64_t,
                                const Backend&);

}  // namespace strata::kernels::cpu
