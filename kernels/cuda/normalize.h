// Image normalisation on CUDA, the first device kernel of a step (the loader ships uint8 NHWC, 4x
// fewer bytes than f32): y = (x / 255 - mean[c]) / std[c] in f32, as kernels/cpu/normalize.h, the
// backend last.
#pragma once

#include <cstdint>

#include "kernels/cuda/backend.h"

namespace strata::kernels::cuda {

// y: (pixels, 3) f32, x: (pixels, 3) u8 (device memory); mean/std: 3 host values each (std nonzero).
void normalize_image(float* y, const uint8_t* x, int64_t pixels, const float* mean, const float* std,
                     const Backend& backend);

}  // namespace strata::kernels::cuda
