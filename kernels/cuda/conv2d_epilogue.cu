// The inference convolution's epilogue (kernels/common/conv2d.h) on CUDA: one thread per output
// element in a grid-stride loop, in place on the convolution's output, reading the bias and the
// residual (per pixel, or per image when broadcast). Same math, same summation order as the CPU's.
#include <cuda_runtime.h>

#include "kernels/cuda/conv2d.h"
#include "kernels/cuda/launch.h"

namespace strata::kernels::cuda {

namespace {

constexpr unsigned kThreads = 256;

// y: (rows, K) with rows = N P Q; pixels = P Q.
template <class T>
__global__ void conv2d_epilogue_kernel(T* y, ConvEpilogue<T> e, int64_t n, int64_t K, int64_t pixels) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t row = i / K, k = i % K;
    T z = y[i];
    if (e.bias) z += e.bias[k];
    if (e.residual) z += e.residual[common::conv_epilogue_residual_row(e, row, pixels) * K + k];
    y[i] = common::conv_epilogue_activation(z, e.slope);
  }
}

}  // namespace

template <class T>
void conv2d_epilogue(T* y, const ConvEpilogue<T>& epilogue, const Conv2dShape& s, const Backend& backend) {
  const int64_t n = s.N * s.P * s.Q * s.K;
  if (n) {
    STRATA_LAUNCH((conv2d_epilogue_kernel<T>), backend.stream, blocks_for(n, kThreads), kThreads, 0, y, epilogue, n,
                  s.K, s.P * s.Q);
  }
}

template void conv2d_epilogue<float>(float*, const ConvEpilogue<float>&, const Conv2dShape&, const Backend&);
template void conv2d_epilogue<double>(double*, const ConvEpilogue<double>&, const Conv2dShape&, const Backend&);

}  // namespace strata::kernels::cuda
