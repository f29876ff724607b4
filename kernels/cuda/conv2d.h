// 2-D convolution on CUDA through cuDNN's legacy API (T = float, double or bf16), the operation, shape
// (kernels/common/conv2d.h) and arguments of kernels/cpu/conv2d.h, the backend last: cross-correlation,
// NHWC activations, OHWI = KRSC filters.
//
//   x: (N,H,W,C)  w: (K,R,S,C)  bias: (K) or null  ->  y: (N,P,Q,K)
//   y[n,p,q,k] = bias[k] + sum_{r,s,c} x[n, p*sh - ph + r*dh, q*sw - pw + s*dw, c] * w[k,r,s,c]
//
// Letters: N batch, H W input height/width, C input channels, K output channels, R S filter
// height/width, P Q output height/width.
//
// Float: data and compute in fp32, with CUDNN_FMA_MATH (strict fp32: cuDNN may not round to TF32
// on sm_80+) or, when the backend's float_math is tf32, with TF32 tensor-core math allowed. Double: data and compute in
// fp64, with the algorithms cuDNN supports for it (see conv2d.cpp). bf16 (--precision bf16): bf16
// operands and output, products accumulated in fp32 on the tensor cores, the output rounded once to
// bf16 (cuDNN's PSEUDO_BFLOAT16_CONFIG); forward, backward data and backward filter only, and a bf16
// forward with a bias throws CudaError (no bf16 bias kernel yet). The backend (kernels/cuda/backend.h) supplies the
// cuDNN handle (bound to its stream), the algorithm cache, where each pass's algorithm is chosen once per shape and
// data type (see conv_algorithms.h for the key and policy), and the scratch memory cuDNN's workspace comes from.
//
// Errors throw CudaError: a dimension or tensor too large for cuDNN's 32-bit int descriptors, no
// algorithm that supports the convolution within the workspace limit (the message lists what each
// candidate answered), or a failing cuDNN call (named with its status).
#pragma once

#include "kernels/common/conv2d.h"
#include "kernels/common/half.h"
#include "kernels/cuda/backend.h"

namespace strata::kernels::cuda {

using common::Conv2dShape;
using common::ConvEpilogue;

// Overwrites y.
template <class T>
void conv2d_forward(T* y, const T* x, const T* w, const T* bias, const Conv2dShape& s, const Backend& backend);
// The convolution without bias (cuDNN), then one kernel applying the epilogue of kernels/common/conv2d.h
// (bias, residual, activation) in place; overwrites y. Forward only.
template <class T>
void conv2d_forward_epilogue(T* y, const T* x, const T* w, const ConvEpilogue<T>& epilogue, const Conv2dShape& s,
                             const Backend& backend);
// The epilogue alone, in place on y (N P Q rows of K): conv2d_forward_epilogue's second half
// (kernels/cuda/conv2d_epilogue.cu).
template <class T>
void conv2d_epilogue(T* y, const ConvEpilogue<T>& epilogue, const Conv2dShape& s, const Backend& backend);
// dx = d(loss)/dx from dy; overwrites dx.
template <class T>
void conv2d_backward_data(T* dx, const T* dy, const T* w, const Conv2dShape& s, const Backend& backend);
// dw = d(loss)/dw from dy and x; overwrites dw.
template <class T>
void conv2d_backward_filter(T* dw, const T* dy, const T* x, const Conv2dShape& s, const Backend& backend);

}  // namespace strata::kernels::cuda
