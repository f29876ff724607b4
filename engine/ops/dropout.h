// Dropout, differentiable, f32/f64 on CPU and CUDA.
//
//   x: any shape, f32 or f64;  p: drop probability in [0, 1)  ->  y of x's shape
//
// In training, keeps each element with probability 1 - p and scales kept ones by 1/(1 - p); the
// mask is drawn from `generator` (Philox), identical on every backend for the same seed/offset:
// the call reserves numel counter positions (first = generator.advance(numel)) and element i
// (row-major over x) is kept iff philox::to_unit_float(philox::word(seed, first + i)) >= p
// (kernels/common/dropout.h). In eval (training == false) or with p == 0 returns x unchanged and
// draws nothing.
//
// Bad input throws strata::Error naming the op: x undefined or not f32/f64, p outside [0, 1)
// (p == 1 would divide by zero) or not a number.
#pragma once

#include "engine/tensor.h"

namespace strata {

Tensor dropout(const Tensor& x, double p, bool training, Generator& generator);

}  // namespace strata
