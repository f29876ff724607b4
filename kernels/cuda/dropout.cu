// Inverted dropout (Srivastava et al., JMLR 2014; torch.nn.functional.dropout's scaling) on CUDA:
//   y_i = m_i x_i / (1 - p),  m_i = [u_i >= p],  u_i = to_unit_float(philox word(seed, first + i, dropout stream))
// with the mask math of kernels/common/dropout.h (the integer threshold form) and the scale rounded
// to T as the CPU kernel does, so y has the CPU's bits. The backward is the same map applied to dy.
// Threads: one per Philox block of 4 counter positions (grid-stride), so each block of words is drawn
// once; a thread writes the (up to) 4 elements whose counters fall in its block.
#include <cuda_runtime.h>

#include "kernels/common/dropout.h"
#include "kernels/common/philox.h"
#include "kernels/cuda/dropout.h"
#include "kernels/cuda/kernel_utils.h"
#include "kernels/cuda/launch.h"

namespace strata::kernels::cuda {

namespace {

constexpr unsigned kThreads = 256;

// Counter positions first .. first + n - 1 lie in Philox blocks first / 4 .. (first + n - 1) / 4.
template <class T>
__global__ void dropout_kernel(T* y, const T* x, uint64_t seed, uint64_t first, uint32_t threshold, T scale,
                               int64_t n, int64_t blocks) {
  STRATA_FOR_EACH_INDEX(b, blocks) {
    const uint64_t block = first / 4 + static_cast<uint64_t>(b);
    philox::Block words = philox::draw(seed, block, dropout_mask::kStream);
#pragma unroll
    for (int lane = 0; lane < 4; ++lane) {
      // Element i has counter first + i = 4 block + lane.
      const uint64_t counter = 4 * block + static_cast<uint64_t>(lane);
      if (counter < first) continue;
      const uint64_t i = counter - first;
      if (i >= static_cast<uint64_t>(n)) break;
      y[i] = dropout_mask::kept_bits(words.v[lane], threshold) ? x[i] * scale : T(0);
    }
  }
}

}  // namespace

template <class T>
void dropout(T* y, const T* x, uint64_t seed, uint64_t first, double p, int64_t n, const Backend& backend) {
  if (n == 0) return;
  const T scale = static_cast<T>(1.0 / (1.0 - p));
  const uint32_t threshold = dropout_mask::keep_threshold(p);
  const int64_t blocks = static_cast<int64_t>((first + static_cast<uint64_t>(n) - 1) / 4 - first / 4) + 1;
  STRATA_LAUNCH((dropout_kernel<T>), backend.stream, blocks_for(blocks, kThreads), kThreads, 0, y, x, seed, first,
                threshold, scale, n, blocks);
}

template <class T>
void dropout_backward(T* dx, const T* dy, uint64_t seed, uint64_t first, double p, int64_t n, const Backend& backend) {
  dropout(dx, dy, seed, first, p, n, backend);
}

#define STRATA_INSTANTIATE(T)                                                                  \
  template void dropout<T>(T*, const T*, uint64_t, uint64_t, double, int64_t, const Backend&); \
  template void dropout_backward<T>(T*, const T*, uint64_t, uint64_t, double, int64_t, const Backend&);
STRATA_INSTANTIATE(float)
STRATA_INSTANTIATE(double)
#undef STRATA_INSTANTIATE

}  // namespace strata::kernels::cuda
