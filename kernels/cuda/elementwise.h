// Elementwise CUDA kernels (T = float or double): the same operations and broadcast patterns as
// kernels/cpu/elementwise.h, same argument order plus the stream. All arrays are contiguous
// device memory; rows = elements / channels.
#pragma once

#include <cstdint>

#include "kernels/cuda/stream.h"

namespace strata::kernels::cuda {

template <class T> void add_cuda(T* y, const T* a, const T* b, int64_t n, const Stream& stream);
template <class T> void add_channel_cuda(T* y, const T* a, const T* bias, int64_t rows, int64_t channels, const Stream& stream);
template <class T> void add_spatial_cuda(T* y, const T* a, const T* b, int64_t batch, int64_t pixels, int64_t channels, const Stream& stream);
template <class T> void mul_cuda(T* y, const T* a, const T* b, int64_t n, const Stream& stream);
template <class T> void mul_channel_cuda(T* y, const T* a, const T* scale, int64_t rows, int64_t channels, const Stream& stream);
template <class T> void mul_spatial_cuda(T* y, const T* a, const T* b, int64_t batch, int64_t pixels, int64_t channels, const Stream& stream);
template <class T> void scale_cuda(T* y, const T* x, T s, int64_t n, const Stream& stream);
// y = x^p; backward dx = dy * p * x^(p-1) (0 when p == 0)
template <class T> void pow_cuda(T* y, const T* x, T p, int64_t n, const Stream& stream);
template <class T> void pow_backward_cuda(T* dx, const T* dy, const T* x, T p, int64_t n, const Stream& stream);
// y = x * x; backward dx = 2 * x * dy
template <class T> void square_cuda(T* y, const T* x, int64_t n, const Stream& stream);
template <class T> void square_backward_cuda(T* dx, const T* dy, const T* x, int64_t n, const Stream& stream);
template <class T> void leaky_relu_cuda(T* y, const T* x, T slope, int64_t n, const Stream& stream);
template <class T> void leaky_relu_backward_cuda(T* dx, const T* dy, const T* y, T slope, int64_t n, const Stream& stream);

}  // namespace strata::kernels::cuda
