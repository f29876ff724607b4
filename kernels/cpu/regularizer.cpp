#include "kernels/cpu/regularizer.h"

#include "kernels/cpu/parallel.h"

namespace strata::kernels::cpu {

template <class T>
void importance_update(T* fisher, T* path, T* previous, const T* param, const T* grad, int64_t n,
                       const ImportanceUpdate& update, const Backend&) {
  const common::ImportanceCoefficients<T> k = common::importance_coefficients<T>(update);
  parallel_for(0, n, kElementwiseGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) common::importance_update(fisher, path, previous, param, grad, i, k);
  });
}

template <class T>
void importance_update_and_penalty(T* fisher, T* path, T* previous, T* values, T* grad_out, const T* param,
                                   const T* grad, const T* anchor, const T* weight, int64_t n,
                                   const ImportanceUpdate& update, double importance, const Backend&) {
  const common::ImportanceCoefficients<T> k = common::importance_coefficients<T>(update);
  const T two_importance = static_cast<T>(2.0 * importance);
  parallel_for(0, n, kElementwiseGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      common::importance_update_and_penalty(fisher, path, previous, values, grad_out, param, grad, anchor, weight, i, k,
                                            two_importance);
    }
  });
}

template <class T>
void weighted_squared_distance(T* values, const T* theta, const T* anchor, const T* weight, int64_t n, const Backend&) {
  parallel_for(0, n, kElementwiseGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      values[i] = common::weighted_squared_distance_value(theta[i], anchor[i], weight[i]);
    }
  });
}

template <class T>
void weighted_squared_distance_backward(T* dtheta, const T* upstream, const T* theta, const T* anchor, const T* weight,
                                        int64_t n, const Backend&) {
  const T u = *upstream;
  parallel_for(0, n, kElementwiseGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      dtheta[i] = common::weighted_squared_distance_grad(u, theta[i], anchor[i], weight[i]);
    }
  });
}

#define STRATA_INSTANTIATE(T)                                                                                         \
  template void importance_update<T>(T*, T*, T*, const T*, const T*, int64_t, const ImportanceUpdate&,                \
                                     const Backend&);                                                                 \
  template void importance_update_and_penalty<T>(T*, T*, T*, T*, T*, const T*, const T*, const T*, const T*, int64_t, \
                                                 const ImportanceUpdate&, double, const Backend&);                    \
  template void weighted_squared_distance<T>(T*, const T*, const T*, const T*, int64_t, const Backend&);              \
  template void weighted_squared_distance_backward<T>(T*, const T*, const T*, const T*, const T*, int64_t,            \
                                                      const Backend&);
STRATA_INSTANTIATE(float)
STRATA_INSTANTIATE(double)
#undef STRATA_INSTANTIATE

}  // namespace strata::kernels::cpu
