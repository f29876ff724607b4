// The Adam update as one kernel per parameter tensor: one pass over p, g and the moment buffers, one
// thread per element (grid-stride), each element updated by common::adam_update, the CPU kernel's
// function with the same T-rounded coefficients (bias corrections included, computed once on the host).
#include <cuda_runtime.h>

#include "kernels/common/adam.h"
#include "kernels/cuda/adam.h"
#include "kernels/cuda/kernel_utils.h"
#include "kernels/cuda/launch.h"

namespace strata::kernels::cuda {

namespace {

constexpr unsigned kThreads = 256;

template <class T>
__global__ void adam_step_kernel(T* param, const T* grad, T* exp_avg, T* exp_avg_sq, T* max_exp_avg_sq, int64_t n,
                                 common::AdamCoefficients<T> k) {
  STRATA_FOR_EACH_INDEX(i, n) { common::adam_update(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, i, k); }
}

}  // namespace

template <class T>
void adam_step(T* param, const T* grad, T* exp_avg, T* exp_avg_sq, T* max_exp_avg_sq, int64_t n, const AdamHyper& h,
               int64_t step, const Backend& backend) {
  if (n == 0) return;
  STRATA_LAUNCH((adam_step_kernel<T>), backend.stream, blocks_for(n, kThreads), kThreads, 0, param, grad, exp_avg,
                exp_avg_sq, max_exp_avg_sq, n, common::adam_coefficients<T>(h, step));
}

template void adam_step<float>(float*, const float*, float*, float*, float*, int64_t, const AdamHyper&, int64_t,
                               const Backend&);
template void adam_step<double>(double*, const double*, double*, double*, double*, int64_t, const AdamHyper&, int64_t,
                                const Backend&);

}  // namespace strata::kernels::cuda
