// Fully connected layer (PyTorch's linear): y = x W^T + b, f32/f64 on CPU through the BLAS and on
// CUDA through cuBLAS; bf16 on CUDA only, without bias (bf16 operands and output, f32 accumulation:
// --precision bf16's kernels, engine/precision.h).
//   x: (..., in)   weight: (out, in)   bias: (out) or undefined   ->   (..., out)
// Throws strata::Error naming the tensors when the feature sizes, dtypes or devices disagree, or for
// bf16 tensors on the CPU or with a bias.
#pragma once

#include "engine/tensor.h"

namespace strata {

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias);

}  // namespace strata
