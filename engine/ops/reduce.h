// Reductions, differentiable, f32/f64 on CPU and CUDA. Accumulation is in double and independent of the
// thread count.
//   sum / mean           : any shape -> scalar (shape [])
//   sum_spatial / mean_spatial   : (N,H,W,C) -> (N,1,1,C)   (global average pooling is mean_spatial)
//   sum_channels / mean_channels : (..., C)  -> (..., 1)
#pragma once

#include "engine/tensor.h"

namespace strata {

Tensor sum(const Tensor& x);
Tensor mean(const Tensor& x);
Tensor sum_spatial(const Tensor& x);
Tensor mean_spatial(const Tensor& x);
Tensor sum_channels(const Tensor& x);
Tensor mean_channels(const Tensor& x);

}  // namespace strata
