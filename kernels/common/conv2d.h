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
//
// The epilogue of an inference convolution (engine/ops/conv2d.h, conv2d_epilogue), applied to each
// output element v = y[n,p,q,k] of the convolution without bias before it is stored:
//   z = v + bias[k] + residual[n,p,q,k]   (residual[n,0,0,k] when the residual is broadcast)
//   y = z > 0 ? z : slope z               (slope 0: ReLU; 1: the identity; else leaky ReLU)
// It is what a batch norm folded into the convolution (its shift in `bias`), a residual sum and the
// activation that follows become in a frozen model (models/blocks.h, FoldedConv).
#pragma once

#include <cstdint>

#include "kernels/common/host_device.h"

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

// The arrays of an epilogue; null pointers skip their term.
template <class T>
struct ConvEpilogue {
  const T* bias = nullptr;      // (K)
  const T* residual = nullptr;  // (N,P,Q,K), or (N,1,1,K) when residual_broadcast
  bool residual_broadcast = false;
  T slope = 1;
};

// The activation of z = v + bias + residual (summed in that order by both backends).
template <class T>
STRATA_HOST_DEVICE inline T conv_epilogue_activation(T z, T slope) {
  return z > T(0) ? z : slope * z;
}

// The residual's row for output row (n P Q + p Q + q); `pixels` = P Q.
template <class T>
STRATA_HOST_DEVICE inline int64_t conv_epilogue_residual_row(const ConvEpilogue<T>& e, int64_t row, int64_t pixels) {
  return e.residual_broadcast ? row / pixels : row;
}

}  // namespace strata::kernels::common
