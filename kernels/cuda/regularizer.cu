// The weight regularisers' kernels on CUDA: one thread per element (grid-stride), each running the
// CPU kernel's function of kernels/common/regularizer.h with the same T-rounded coefficients, so
// both backends produce the same bits. The backward reads the upstream scalar on the device.
#include <cuda_runtime.h>

#include "kernels/common/regularizer.h"
#include "kernels/cuda/kernel_utils.h"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/regularizer.h"

namespace strata::kernels::cuda {

namespace {

constexpr unsigned kThreads = 256;

template <class T>
__global__ void importance_update_kernel(T* fisher, T* path, T* previous, const T* param, const T* grad, int64_t n,
                                         common::ImportanceCoefficients<T> k) {
  STRATA_FOR_EACH_INDEX(i, n) { common::importance_update(fisher, path, previous, param, grad, i, k); }
}

template <class T>
__global__ void importance_update_and_penalty_kernel(T* fisher, T* path, T* previous, T* values, T* grad_out,
                                                     const T* param, const T* grad, const T* anchor, const T* weight,
                                                     int64_t n, common::ImportanceCoefficients<T> k, T two_importance) {
  STRATA_FOR_EACH_INDEX(i, n) {
    common::importance_update_and_penalty(fisher, path, previous, values, grad_out, param, grad, anchor, weight, i, k,
                                          two_importance);
  }
}

template <class T>
__global__ void weighted_squared_distance_kernel(T* values, const T* theta, const T* anchor, const T* weight,
                                                 int64_t n) {
  STRATA_FOR_EACH_INDEX(i, n) { values[i] = common::weighted_squared_distance_value(theta[i], anchor[i], weight[i]); }
}

template <class T>
__global__ void weighted_squared_distance_backward_kernel(T* dtheta, const T* upstream, const T* theta, const T* anchor,
                                                          const T* weight, int64_t n) {
  const T u = *upstream;
  STRATA_FOR_EACH_INDEX(i, n) { dtheta[i] = common::weighted_squared_distance_grad(u, theta[i], anchor[i], weight[i]); }
}

}  // namespace

template <class T>
void importance_update(T* fisher, T* path, T* previous, const T* param, const T* grad, int64_t n,
                       const ImportanceUpdate& update, const Backend& backend) {
  if (n == 0) return;
  STRATA_LAUNCH((importance_update_kernel<T>), backend.stream, blocks_for(n, kThreads), kThreads, 0, fisher, path,
                previous, param, grad, n, common::importance_coefficients<T>(update));
}

template <class T>
void importance_update_and_penalty(T* fisher, T* path, T* previous, T* values, T* grad_out, const T* param,
                                   const T* grad, const T* anchor, const T* weight, int64_t n,
                                   const ImportanceUpdate& update, double importance, const Backend& backend) {
  if (n == 0) return;
  STRATA_LAUNCH((importance_update_and_penalty_kernel<T>), backend.stream, blocks_for(n, kThreads), kThreads, 0, fisher,
                path, previous, values, grad_out, param, grad, anchor, weight, n,
                common::importance_coefficients<T>(update), static_cast<T>(2.0 * importance));
}

template <class T>
void weighted_squared_distance(T* values, const T* theta, const T* anchor, const T* weight, int64_t n,
                               const Backend& backend) {
  if (n == 0) return;
  STRATA_LAUNCH((weighted_squared_distance_kernel<T>), backend.stream, blocks_for(n, kThreads), kThreads, 0, values,
                theta, anchor, weight, n);
}

template <class T>
void weighted_squared_distance_backward(T* dtheta, const T* upstream, const T* theta, const T* anchor, const T* weight,
                                        int64_t n, const Backend& backend) {
  if (n == 0) return;
  STRATA_LAUNCH((weighted_squared_distance_backward_kernel<T>), backend.stream, blocks_for(n, kThreads), kThreads, 0,
                dtheta, upstream, theta, anchor, weight, n);
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

}  // namespace strata::kernels::cuda
