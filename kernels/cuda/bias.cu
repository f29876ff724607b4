// y[r, k] += bias[k] in place: one thread per element in a grid-stride loop (see bias.h). The CPU
// kernels also add the bias after the product, one rounding per element, so this step agrees
// with them bit for bit.
#include <cuda_runtime.h>

#include "kernels/cuda/bias.h"
#include "kernels/cuda/launch.h"

namespace strata::kernels::cuda {

namespace {

constexpr unsigned kThreads = 256;

template <class T>
__global__ void add_bias_kernel(T* y, const T* bias, int64_t n, int64_t channels) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    y[i] += bias[i % channels];
  }
}

}  // namespace

template <class T>
void add_bias_cuda(T* y, const T* bias, int64_t rows, int64_t channels, const Stream& stream) {
  int64_t n = rows * channels;
  if (n) STRATA_LAUNCH((add_bias_kernel<T>), stream, blocks_for(n, kThreads), kThreads, 0, y, bias, n, channels);
}

template void add_bias_cuda<float>(float*, const float*, int64_t, int64_t, const Stream&);
template void add_bias_cuda<double>(double*, const double*, int64_t, int64_t, const Stream&);

}  // namespace strata::kernels::cuda
