// Differentiable dtype cast (autocast's cast of an f32 tensor to bf16, and back):
//
//   x: any shape, a floating dtype (f32, f64, bf16, f16)  ->  y of x's shape in `dtype`
//   y = round(x) to `dtype` (round to nearest even into bf16/f16, Tensor::to)
//   dx = dy cast back to x's dtype
//
// How --precision bf16 keeps f32 master weights (engine/precision.h): a convolution reads
// cast(weight, bf16), and its bf16 weight gradient arrives in the f32 weight's .grad() through this
// op's backward. Returns x itself (no copy, nothing recorded) when it already has `dtype`. CPU and
// CUDA, on x's device. Throws strata::Error naming the op for an undefined x or a non-floating dtype
// on either side.
#pragma once

#include "engine/tensor.h"

namespace strata {

Tensor cast(const Tensor& x, DType dtype);

}  // namespace strata
