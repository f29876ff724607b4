// Image normalisation kernel: uint8 NHWC pixels to f32, y = (x / 255 - mean[c]) / std[c] with the
// division and subtraction done in f32 in that order, as torchvision's ToTensor + Normalize do.
#pragma once

#include <cstdint>

#include "kernels/cpu/backend.h"

namespace strata::kernels::cpu {

// y: (pixels, 3) f32, x: (pixels, 3) u8, mean/std: 3 values each (std nonzero).
void normalize_image(float* y, const uint8_t* x, int64_t pixels, const float* mean, const float* std,
                     const Backend& backend);

}  // namespace strata::kernels::cpu
