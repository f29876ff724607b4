// The problem description of a 2-D convolution (cross-correlation, as PyTorch's conv2d) on NHWC
// activations and OHWI weights, shared by the CPU kernels (kernels/cpu/conv2d.h), the CUDA kernels
// (kernels/cuda/conv2d.h) and the cuDNN algorithm cache's key (kernels/cuda/conv_algorithms.h):
//
//   x: (N,H,W,C)  w: (K,R,S,C)  bias: (K) or null  ->  y: (N,P,Q,K)
//   y[n,p,q,k] = bias[k] + sum_{r,s,c} x[n, p*sh - ph + r*dh, q*sw - pw + s*dw, c] * w[k,r,s,c]
//   P = (H + 2 ph - dh (R-1) - 1) / sh + 1, Q likewise; taps outside the image read 0.
//
// Letters: N batch, H W input height/width, C input channels, K output channels, R S kernel
// height/width, P Q output height/width.
#pragma once

#include <cstdint>

namespace strata::kernels::common {

struct Conv2dShape {
  int64_t N, H, W, C;
  int64_t K, R, S;
  int64_t P, Q;
  int64_t stride_h, stride_w;
  int64_t pad_h, pad_w;
  int64_t dilation_h, dilation_w;

  // A 1x1 convolution with stride 1 and no padding is a plain GEMM over pixels.
  bool is_pointwise() const { return R == 1 && S == 1 && stride_h == 1 && stride_w == 1 && pad_h == 0 && pad_w == 0; }
};

}  // namespace strata::kernels::common
