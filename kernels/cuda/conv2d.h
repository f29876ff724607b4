// 2-D convolution on CUDA through cuDNN's legacy API (T = float or double), the same operation, shapes and
// argument order as kernels/cpu/conv2d.h (cross-correlation, NHWC activations, OHWI = KRSC filters)
// plus the workspace source, the algorithm cache and the handles:
//
//   x: (N,H,W,C)  w: (K,R,S,C)  bias: (K) or null  ->  y: (N,P,Q,K)
//   y[n,p,q,k] = bias[k] + sum_{r,s,c} x[n, p*sh - ph + r*dh, q*sw - pw + s*dw, c] * w[k,r,s,c]
//
// Letters: N batch, H W input height/width, C input channels, K output channels, R S filter
// height/width, P Q output height/width.
//
// Strict fp32 for float: data and compute in fp32 with CUDNN_FMA_MATH, so cuDNN may not round to
// TF32 on sm_80+. Double: data and compute in fp64, with the algorithms cuDNN supports for it (see
// conv2d.cpp). Each pass's algorithm is chosen once per shape and data type and kept in `algorithms`
// (see conv_algorithms.h for the key and policy); its workspace comes from `workspace`, which the
// engine backs with the device's caching allocator.
//
// Errors throw CudaError: a dimension or tensor too large for cuDNN's 32-bit int descriptors, no
// algorithm that supports the convolution within the workspace limit (the message lists what each
// candidate answered), or a failing cuDNN call (named with its status).
#pragma once

#include <cudnn.h>

#include <cstddef>

#include "kernels/cpu/conv2d.h"
#include "kernels/cuda/backend.h"
#include "kernels/cuda/conv_algorithms.h"

namespace strata::kernels::cuda {

// The shape struct is the CPU kernels' (a plain description of the problem), so both backends take
// the same arguments.
using Conv2dShape = cpu::Conv2dShape;

// Device scratch for one convolution call, from the caller's allocator.
class Workspace {
 public:
  virtual ~Workspace() = default;
  // A device buffer of at least `bytes` (nullptr for 0) with undefined contents, valid until the next
  // call or until the Workspace is destroyed. Work queued on the compute stream may still use it
  // after that: the allocator's reuse is ordered on the same stream.
  virtual void* get(size_t bytes) = 0;
};

// Overwrites y.
template <class T>
void conv2d_forward_cuda(T* y, const T* x, const T* w, const T* bias, const Conv2dShape& s, Workspace& workspace,
                         ConvAlgorithmCache& algorithms, cudnnHandle_t cudnn, const Stream& stream);
// dx = d(loss)/dx from dy; overwrites dx.
template <class T>
void conv2d_backward_data_cuda(T* dx, const T* dy, const T* w, const Conv2dShape& s, Workspace& workspace,
                               ConvAlgorithmCache& algorithms, cudnnHandle_t cudnn, const Stream& stream);
// dw = d(loss)/dw from dy and x; overwrites dw.
template <class T>
void conv2d_backward_filter_cuda(T* dw, const T* dy, const T* x, const Conv2dShape& s, Workspace& workspace,
                                 ConvAlgorithmCache& algorithms, cudnnHandle_t cudnn, const Stream& stream);

// The cache key of one pass of a T convolution as the functions above use it (NHWC; FMA math for
// float, the default math type for double).
template <class T>
ConvAlgorithmKey conv2d_algorithm_key(const Conv2dShape& s, ConvPass pass);

}  // namespace strata::kernels::cuda
