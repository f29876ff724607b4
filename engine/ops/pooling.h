// 2-D pooling over NHWC activations, differentiable, f32/f64 on CPU and CUDA, with PyTorch's semantics
// (F.max_pool2d, F.avg_pool2d, F.adaptive_avg_pool2d).
//
//   x: (N,H,W,C) -> y: (N,OH,OW,C) with, per axis (PyTorch's pooling output-size formula),
//     OH = floor_or_ceil((H + 2 pad - dilation (kernel - 1) - 1) / stride) + 1,
//     and in ceil mode one fewer when the last window would start at or past H + pad.
//
// max_pool2d: padding counts as -inf; ties go to the first maximum in row-major window order and
// NaN propagates (as PyTorch's CPU kernel). Backward routes each output gradient to its argmax; the
// op saves int32 argmax indices (one per output element), not the input.
// avg_pool2d: divisor = window clipped to the padded input when count_include_pad, else the number
// of window elements inside the input (PyTorch's rule, which matters in ceil mode). Dilation must be 1.
// adaptive_avg_pool2d: (N,H,W,C) -> (N,OH,OW,C), output (i, j) the mean of rows
//   [floor(i H / OH), ceil((i + 1) H / OH)) and columns likewise: windows that overlap when OH does
//   not divide H (PSPNet's pyramid bins 1, 2, 3, 6), and repeat pixels when OH > H. Backward gives
//   each input the sum of its windows' gradients over their sizes.
// global_avg_pool: (N,H,W,C) -> (N,1,1,C), the mean over pixels (mean_spatial).
//
// Bad input throws strata::Error naming the op: x not rank 4, not f32/f64;
// kernel, stride or dilation < 1; pad < 0 or pad > kernel / 2; dilation != 1 for avg_pool2d; an
// output size < 1; H or W of 0; H * W too large for int32 argmax indices.
#pragma once

#include <cstdint>

#include "engine/tensor.h"

namespace strata {

struct Pool2dParams {
  int64_t kernel_h, kernel_w;
  int64_t stride_h, stride_w;
  int64_t pad_h = 0, pad_w = 0;
  int64_t dilation_h = 1, dilation_w = 1;  // max_pool2d only; avg_pool2d requires 1
  bool ceil_mode = false;
  bool count_include_pad = true;  // avg_pool2d only
};

Tensor max_pool2d(const Tensor& x, const Pool2dParams& params);
Tensor avg_pool2d(const Tensor& x, const Pool2dParams& params);
Tensor adaptive_avg_pool2d(const Tensor& x, int64_t out_h, int64_t out_w);
Tensor global_avg_pool(const Tensor& x);

}  // namespace strata
