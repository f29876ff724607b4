// Elementwise ops, differentiable, f32/f64 on CPU and CUDA.
//
// add / sub / mul take a and b of the same shape, or b broadcast along one of two NHWC patterns:
//   b: (C)         -> added to every pixel (a per-channel bias), a: (..., C)
//   b: (N,1,1,C)   -> added to every pixel of sample n (the image-pooling branch of the MiB
//                     DeepLabV3 head), a: (N,H,W,C)
// Any other shape pair, different dtypes or devices, or non-floating inputs throw strata::Error.
#pragma once

#include "engine/tensor.h"

namespace strata {

Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor scale(const Tensor& x, double s);   // s * x
Tensor square(const Tensor& x);            // x * x
Tensor pow(const Tensor& x, double p);     // x^p (x must be > 0 where p is not an integer)
Tensor relu(const Tensor& x);              // max(x, 0)
Tensor leaky_relu(const Tensor& x, double negative_slope = 0.01);  // slope >= 0
Tensor sigmoid(const Tensor& x);           // 1 / (1 + exp(-x)); the backward keeps only the output
Tensor abs(const Tensor& x);               // |x|; gradient sign(x), 0 at 0 (as torch.abs)
Tensor log(const Tensor& x);               // natural log (x <= 0 gives -inf or NaN, as torch.log)
// min(max(x, lo), hi), lo <= hi; the gradient passes where lo <= x <= hi, bounds included (as torch.clamp)
Tensor clamp(const Tensor& x, double lo, double hi);

}  // namespace strata
