// Elementwise CPU kernels (T = float or double). Arrays are contiguous; n is the element count.
// Broadcast variants name the broadcast: `channel` = a (C) vector added to every row of an
// (rows, C) array; `spatial` = an (N, C) array added to every pixel of an (N, HW, C) array.
#pragma once

#include <cstdint>

namespace strata::kernels::cpu {

template <class T> void add_cpu(T* y, const T* a, const T* b, int64_t n);
template <class T> void add_channel_cpu(T* y, const T* a, const T* bias, int64_t rows, int64_t channels);
template <class T> void add_spatial_cpu(T* y, const T* a, const T* b, int64_t batch, int64_t pixels, int64_t channels);
template <class T> void mul_cpu(T* y, const T* a, const T* b, int64_t n);
template <class T> void mul_channel_cpu(T* y, const T* a, const T* scale, int64_t rows, int64_t channels);
template <class T> void mul_spatial_cpu(T* y, const T* a, const T* b, int64_t batch, int64_t pixels, int64_t channels);
template <class T> void scale_cpu(T* y, const T* x, T s, int64_t n);
// y = x^p; backward dx = dy * p * x^(p-1)
template <class T> void pow_cpu(T* y, const T* x, T p, int64_t n);
template <class T> void pow_backward_cpu(T* dx, const T* dy, const T* x, T p, int64_t n);
// y = x * x; backward dx = 2 * x * dy
template <class T> void square_cpu(T* y, const T* x, int64_t n);
template <class T> void square_backward_cpu(T* dx, const T* dy, const T* x, int64_t n);
// Leaky ReLU with slope >= 0 (slope 0 is ReLU): y = x > 0 ? x : slope * x.
// The backward reads the output: for slope >= 0, y > 0 exactly when x > 0.
template <class T> void leaky_relu_cpu(T* y, const T* x, T slope, int64_t n);
template <class T> void leaky_relu_backward_cpu(T* dx, const T* dy, const T* y, T slope, int64_t n);

}  // namespace strata::kernels::cpu
