// 2-D convolution (PyTorch's conv2d semantics, cross-correlation) on NHWC activations and OHWI
// weights: f32/f64 on CPU (im2col + GEMM on OpenBLAS; 1x1 stride-1 convolutions are plain GEMMs) and
// on CUDA (cuDNN, NHWC, strict fp32 math for f32; one algorithm per shape and dtype, cached).
//   x: (N,H,W,C)   weight: (K,R,S,C)   bias: (K) or undefined   ->   (N,P,Q,K)
//   P = (H + 2*pad_h - dilation_h*(R-1) - 1) / stride_h + 1, Q likewise (floor division)
// Throws strata::Error naming the tensors when ranks, channel counts, dtypes or devices disagree,
// when a stride or dilation is < 1 or a padding < 0, or when the output would be empty.
#pragma once

#include "engine/tensor.h"

namespace strata {

struct Conv2dParams {
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;
  int64_t dilation_h = 1, dilation_w = 1;

  static Conv2dParams same(int64_t stride, int64_t pad, int64_t dilation = 1) {
    return Conv2dParams{stride, stride, pad, pad, dilation, dilation};
  }
};

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dParams& params = {});

// Output spatial size of a convolution, shared with model summaries: (in + 2 pad - dil (k-1) - 1) / stride + 1.
int64_t conv2d_output_size(int64_t in, int64_t kernel, int64_t stride, int64_t pad, int64_t dilation);

}  // namespace strata
