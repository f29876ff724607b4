// Replicate (edge) padding of NHWC activations, differentiable, f32/f64 on CPU and CUDA:
// torch.nn.functional.pad(x, (left, right, top, bottom), mode="replicate").
//
//   x: (N,H,W,C) -> y: (N, H + top + bottom, W + left + right, C); each padded pixel copies the
//   nearest edge pixel. The gradient of an edge pixel is the sum over every output pixel that copies
//   it (computed as a gather).
//
// Bad input throws strata::Error naming the op: x not rank 4, not f32/f64, with an
// empty spatial dimension (there is no edge to replicate); a negative pad.
#pragma once

#include <cstdint>

#include "engine/tensor.h"

namespace strata {

Tensor pad_replicate(const Tensor& x, int64_t top, int64_t bottom, int64_t left, int64_t right);

}  // namespace strata
