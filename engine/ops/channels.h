// Concatenation and slicing along the last (channel) dimension, differentiable, f32/f64 on CPU and CUDA.
// In NHWC this is PyTorch's torch.cat(xs, dim=1) and x[:, begin:end] on NCHW tensors; the
// incremental classifier concatenates its per-step logits this way.
//
// concat: xs non-empty, all of the same rank >= 1, dtype and device, all dimensions but the last
//   equal: (..., C_i) -> (..., sum C_i). The gradient of each input is its slice of the output
//   gradient.
// slice: x (..., C), 0 <= begin <= end <= C -> (..., end - begin), a contiguous copy. The gradient
//   is the output gradient zero-padded back to C channels.
//
// Bad input throws strata::Error naming the op and the offending tensor (by its index in xs).
#pragma once

#include <cstdint>
#include <vector>

#include "engine/tensor.h"

namespace strata {

Tensor concat(const std::vector<Tensor>& xs);
Tensor slice(const Tensor& x, int64_t begin, int64_t end);

}  // namespace strata
