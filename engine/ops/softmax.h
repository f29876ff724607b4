// Softmax family over the last (channel) dimension, differentiable, f32/f64 on CPU and CUDA. In NHWC a
// pixel's C class scores are contiguous, so these act per pixel; any (..., C) tensor works, e.g.
// logits (N,H,W,C) or (N,C).
//   softmax(x)               x: (..., C) -> (..., C)   exp(x_c) / sum_k exp(x_k)
//   log_softmax(x)           x: (..., C) -> (..., C)   x_c - log sum_k exp(x_k)
//   logsumexp(x, begin, end) x: (..., C) -> (..., 1)   log sum_{c in [begin, end)} exp(x_c); the
//                            gradient is zero outside the range (MiB's unbiased losses use ranges
//                            over the old channels and over background + new channels).
// All are computed stably (shifted by the maximum) and match PyTorch's torch.softmax /
// torch.log_softmax / torch.logsumexp over dim=1 of the NCHW tensor.
//
// Bad input throws strata::Error naming the op and the tensor: x undefined, of rank 0, with zero
// channels or not f32/f64; a logsumexp range that is not 0 <= begin < end <= C.
#pragma once

#include <cstdint>

#include "engine/tensor.h"

namespace strata {

Tensor softmax(const Tensor& x);
Tensor log_softmax(const Tensor& x);
Tensor logsumexp(const Tensor& x, int64_t begin, int64_t end);

}  // namespace strata
