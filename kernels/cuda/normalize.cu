// Image normalisation on CUDA: y[p, c] = (x[p, c] / 255 - mean[c]) / std[c], torchvision's ToTensor
// then Normalize in f32 (kernels/common/normalize.h, the CPU's function, so the same bits). One thread
// per element, grid-stride; the three channel statistics travel as scalar kernel arguments and are
// selected per element (an array argument indexed at run time would be spilled to local memory).
#include <cuda_runtime.h>

#include "kernels/common/normalize.h"
#include "kernels/cuda/kernel_utils.h"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/normalize.h"

namespace strata::kernels::cuda {

namespace {

constexpr unsigned kThreads = 256;

struct ChannelStats {
  float mean0, mean1, mean2;
  float std0, std1, std2;
};

__global__ void normalize_image_kernel(float* y, const uint8_t* x, int64_t n, ChannelStats s) {
  STRATA_FOR_EACH_INDEX(i, n) {
    const int64_t c = i % 3;
    const float mean = c == 0 ? s.mean0 : (c == 1 ? s.mean1 : s.mean2);
    const float std = c == 0 ? s.std0 : (c == 1 ? s.std1 : s.std2);
    y[i] = common::normalize_value(x[i], mean, std);
  }
}

}  // namespace

void normalize_image(float* y, const uint8_t* x, int64_t pixels, const float* mean, const float* std,
                     const Backend& backend) {
  const int64_t n = 3 * pixels;
  if (n == 0) return;
  ChannelStats s{mean[0], mean[1], mean[2], std[0], std[1], std[2]};
  STRATA_LAUNCH(normalize_image_kernel, backend.stream, blocks_for(n, kThreads), kThreads, 0, y, x, n, s);
}

}  // namespace strata::kernels::cuda
