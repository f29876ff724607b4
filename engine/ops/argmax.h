// Argmax over the last (channel) dimension: the prediction map of NHWC logits.
//   argmax(x)   x: (..., C), f32 or f64, C >= 1 -> (...) of dtype i64 (x of rank 1 gives a scalar)
// The result is the first maximal channel, as torch.argmax(x, dim=1) on NCHW (ties go to the lowest
// index; a NaN counts as the maximum). Not differentiable: the output never carries a graph.
//
// Bad input throws strata::Error naming the op and x: undefined, rank 0, zero channels or not
// f32/f64.
#pragma once

#include "engine/tensor.h"

namespace strata {

Tensor argmax(const Tensor& x);

}  // namespace strata
