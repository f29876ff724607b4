// Elementwise CUDA kernels (T = float or double): the operations, broadcast patterns, names and
// arguments of kernels/cpu/elementwise.h, the backend last (kernels/cuda/backend.h). All arrays are
// contiguous device memory; rows = elements / channels.
#pragma once

#include <cstdint>

#include "kernels/common/unary_math.h"
#include "kernels/cuda/backend.h"

namespace strata::kernels::cuda {

template <class T>
void add(T* y, const T* a, const T* b, int64_t n, const Backend& backend);
template <class T>
void add_channel(T* y, const T* a, const T* bias, int64_t rows, int64_t channels, const Backend& backend);
template <class T>
void add_spatial(T* y, const T* a, const T* b, int64_t batch, int64_t pixels, int64_t channels, const Backend& backend);
template <class T>
void mul(T* y, const T* a, const T* b, int64_t n, const Backend& backend);
template <class T>
void mul_channel(T* y, const T* a, const T* scale, int64_t rows, int64_t channels, const Backend& backend);
template <class T>
void mul_spatial(T* y, const T* a, const T* b, int64_t batch, int64_t pixels, int64_t channels, const Backend& backend);
template <class T>
void scale(T* y, const T* x, T s, int64_t n, const Backend& backend);
// y = x^p; backward dx = dy * p * x^(p-1) (0 when p == 0)
template <class T>
void pow(T* y, const T* x, T p, int64_t n, const Backend& backend);
template <class T>
void pow_backward(T* dx, const T* dy, const T* x, T p, int64_t n, const Backend& backend);
// y = x * x; backward dx = 2 * x * dy
template <class T>
void square(T* y, const T* x, int64_t n, const Backend& backend);
template <class T>
void square_backward(T* dx, const T* dy, const T* x, int64_t n, const Backend& backend);
template <class T>
void leaky_relu(T* y, const T* x, T slope, int64_t n, const Backend& backend);
template <class T>
void leaky_relu_backward(T* dx, const T* dy, const T* y, T slope, int64_t n, const Backend& backend);
// y = sigmoid(x); backward dx = dy * y * (1 - y) from the output (kernels/common/sigmoid.h)
template <class T>
void sigmoid(T* y, const T* x, int64_t n, const Backend& backend);
template <class T>
void sigmoid_backward(T* dx, const T* dy, const T* y, int64_t n, const Backend& backend);
// y = abs(x), log(x) or clamp(x, lo, hi) (lo and hi read by clamp only); the backward reads the input
// (kernels/common/unary_math.h)
template <class T>
void unary_math(T* y, const T* x, common::UnaryMath op, T lo, T hi, int64_t n, const Backend& backend);
template <class T>
void unary_math_backward(T* dx, const T* dy, const T* x, common::UnaryMath op, T lo, T hi, int64_t n,
                         const Backend& backend);

}  // namespace strata::kernels::cuda
