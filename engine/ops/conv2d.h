// 2-D convolution (PyTorch's conv2d semantics, cross-correlation) on NHWC activations and OHWI
// weights: f32/f64 on CPU (im2col + GEMM on OpenBLAS; 1x1 stride-1 convolutions are plain GEMMs) and
// on CUDA (cuDNN, NHWC, strict fp32 math for f32; one algorithm per shape and dtype, cached); bf16 on
// CUDA only, without bias (bf16 operands and output, f32 accumulation: --precision bf16's kernels,
// engine/precision.h), its gradients bf16 too.
//   x: (N,H,W,C)   weight: (K,R,S,C)   bias: (K) or undefined   ->   (N,P,Q,K)
//   P = (H + 2*pad_h - dilation_h*(R-1) - 1) / stride_h + 1, Q likewise (floor division)
// Throws strata::Error naming the tensors when ranks, channel counts, dtypes or devices disagree,
// when a stride or dilation is < 1 or a padding < 0, when the output would be empty, or for bf16
// tensors on the CPU or with a bias.
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

// An inference-only convolution with its epilogue (kernels/common/conv2d.h), what a frozen model
// with its batch norms folded into the weights runs (models/blocks.h, FoldedConv):
//   y = act(conv2d(x, weight) + bias + residual),   act(z) = z > 0 ? z : negative_slope * z
//   bias: (K) or undefined; residual: (N,P,Q,K), (N,1,1,K) added to every pixel of its image, or
//   undefined; negative_slope: 0 is ReLU, 1 the identity, in between a leaky ReLU.
// One pass over the output after the convolution (per im2col chunk on the CPU; one kernel after
// cuDNN on CUDA), instead of a bias, an add and an activation op. Records no autograd node: with
// grad mode on, an input that requires a gradient is an error (use conv2d and the activation ops to
// train). Throws as conv2d does, and for a residual of another shape, dtype or device or a slope
// outside [0, 1].
Tensor conv2d_activation(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& residual,
                         double negative_slope, const Conv2dParams& params = {});

// Output spatial size of a convolution, shared with model summaries: (in + 2 pad - dil (k-1) - 1) / stride + 1.
int64_t conv2d_output_size(int64_t in, int64_t kernel, int64_t stride, int64_t pad, int64_t dilation);

}  // namespace strata
