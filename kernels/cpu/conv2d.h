// 2-D convolution CPU kernels (T = float or double): im2col + GEMM on NHWC activations and OHWI
// weights, the shape and math of kernels/common/conv2d.h. Same names and arguments as the CUDA
// kernels (kernels/cuda/conv2d.h), the backend last; the im2col buffer comes from its scratch.
//
//   x: (N,H,W,C)  w: (K,R,S,C)  bias: (K) or null  ->  y: (N,P,Q,K)
#pragma once

#include <cstdint>

#include "kernels/common/conv2d.h"
#include "kernels/cpu/backend.h"

namespace strata::kernels::cpu {

using common::Conv2dShape;
using common::ConvEpilogue;

// Overwrites y.
template <class T>
void conv2d_forward(T* y, const T* x, const T* w, const T* bias, const Conv2dShape& s, const Backend& backend);
// The convolution without bias, then the epilogue of kernels/common/conv2d.h on each output row while
// the row is fresh (per im2col chunk); overwrites y. Forward only: nothing for a backward is kept.
template <class T>
void conv2d_forward_epilogue(T* y, const T* x, const T* w, const ConvEpilogue<T>& epilogue, const Conv2dShape& s,
                             const Backend& backend);
// dx = d(loss)/dx from dy; overwrites dx.
template <class T>
void conv2d_backward_data(T* dx, const T* dy, const T* w, const Conv2dShape& s, const Backend& backend);
// dw = d(loss)/dw from dy and x; overwrites dw.
template <class T>
void conv2d_backward_filter(T* dw, const T* dy, const T* x, const Conv2dShape& s, const Backend& backend);

}  // namespace strata::kernels::cpu
