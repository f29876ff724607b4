// Spatial shifts of NHWC images, differentiable, f32/f64 on CPU and CUDA: the random jitter and
// the total-variation prior of DeepInversion (incremental/inversion.h).
//
// roll_flip(x, shift_h, shift_w, flip): torch.roll(x, shifts=(shift_h, shift_w), dims=(H, W)),
//   then torch.flip along W when `flip` (NCHW dims 2, 3); shifts of any sign and size (taken modulo
//   the size). A permutation of the pixels: the gradient is the inverse permutation of the output's.
// spatial_difference(x, dy, dx): (N,H,W,C) -> (N, H - |dy|, W - |dx|, C), x[p] - x[p + (dy, dx)]
//   over the pixels p for which both exist, in row-major order of p. DeepInversion's four
//   differences (x[:, :, :, :-1] - x[:, :, :, 1:] and its kin) are the offsets (0, 1), (1, 0),
//   (-1, 1) and (1, 1).
//
// Bad input throws strata::Error naming the op: x not rank 4 or not f32/f64, an empty spatial
// dimension (roll_flip), an offset with |dy| >= H or |dx| >= W (spatial_difference).
#pragma once

#include <cstdint>

#include "engine/tensor.h"

namespace strata {

Tensor roll_flip(const Tensor& x, int64_t shift_h, int64_t shift_w, bool flip);
Tensor spatial_difference(const Tensor& x, int64_t dy, int64_t dx);

}  // namespace strata
