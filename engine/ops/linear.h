// Fully connected layer (PyTorch's linear): y = x W^T + b, f32/f64 on CPU through the BLAS and on
// CUDA through cuBLAS.
//   x: (..., in)   weight: (out, in)   bias: (out) or undefined   ->   (..., out)
// Throws strata::Error naming the tensors when the feature sizes, dtypes or devices disagree.
#pragma once

#include "engine/tensor.h"

namespace strata {

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias);

}  // namespace strata
