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

// Channel dropout (PyTorch's Dropout2d, PSPNet's heads): x (N,H,W,C); each (sample, channel) plane is
// kept whole with probability 1 - p and scaled by 1/(1 - p), or zeroed. The N*C keep decisions are
// dropout's on an (N,1,1,C) tensor of ones (the same Philox stream and counter rule), so the mask is
// drawn on x's device and the backward is the multiplication's. Eval or p == 0: x unchanged, nothing
// drawn. Throws as dropout does, and for x not of rank 4.
Tensor dropout2d(const Tensor& x, double p, bool training, Generator& generator);

}  // namespace strata
