// The SGD update as one kernel per parameter tensor: one pass over p, g and the momentum buffer, one
// thread per element (grid-stride), each element updated by common::sgd_update, the CPU kernel's
// function with the same T-rounded hyper-parameters, so both backends produce the same bits.
#include <cuda_runtime.h>

#include "kernels/common/sgd.h"
#include "kernels/cuda/kernel_utils.h"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/sgd.h"

namespace strata::kernels::cuda {

namespace {

constexpr unsigned kThreads = 256;

template <class T>
__global__ void sgd_step_kernel(T* param, const T* grad, T* momentum_buffer, int64_t n,
                                common::SgdCoefficients<T> k) {
  STRATA_FOR_EACH_INDEX(i, n) { common::sgd_update(param, grad, momentum_buffer, i, k); }
}

}  // namespace

template <class T>
void sgd_step(T* param, const T* grad, T* momentum_buffer, int64_t n, const SgdHyper& h, bool first_step,
              const Backend& backend) {
  if (n == 0) return;
  STRATA_LAUNCH((sgd_step_kernel<T>), backend.stream, blocks_for(n, kThreads), kThreads, 0, param, grad,
                momentum_buffer, n, common::sgd_coefficients<T>(h, first_step));
}

template void sgd_step<float>(float*, const float*, float*, int64_t, const SgdHyper&, bool, const Backend&);
template void sgd_step<double>(double*, const double*, double*, int64_t, const SgdHyper&, bool, const Backend&);

}  // namespace strata::kernels::cuda
