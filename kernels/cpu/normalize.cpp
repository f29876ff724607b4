// Image normalisation: y[p, c] = (x[p, c] / 255 - mean[c]) / std[c] (torchvision ToTensor then
// Normalize, both in f32; kernels/common/normalize.h). A uint8 channel has only 256 values, so the
// 3 x 256 results are computed once and the loop is a table lookup; chunks of pixels run on OpenMP
// threads.
#include "kernels/cpu/normalize.h"

#include "kernels/common/normalize.h"
#include "kernels/cpu/parallel.h"

namespace strata::kernels::cpu {

void normalize_image(float* y, const uint8_t* x, int64_t pixels, const float* mean, const float* std, const Backend&) {
  float table[3][256];
  for (int c = 0; c < 3; ++c) {
    for (int v = 0; v < 256; ++v) table[c][v] = common::normalize_value(static_cast<uint8_t>(v), mean[c], std[c]);
  }
  parallel_for(0, pixels, kElementwiseGrain / 3, [&](int64_t lo, int64_t hi) {
    for (int64_t p = lo; p < hi; ++p) {
      y[3 * p + 0] = table[0][x[3 * p + 0]];
      y[3 * p + 1] = table[1][x[3 * p + 1]];
      y[3 * p + 2] = table[2][x[3 * p + 2]];
    }
  });
}

}  // namespace strata::kernels::cpu
