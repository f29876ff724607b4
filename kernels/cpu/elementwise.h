// Elementwise CPU kernels (T = float or double). Arrays are contiguous; n is the element count. Each
// takes the backend last (kernels/cpu/backend.h), as its CUDA twin in kernels/cuda/elementwise.h.
// Broadcast variants name the broadcast: `channel` = a (C) vector added to every row of an
// (rows, C) array; `spatial` = an (N, C) array added to every pixel of an (N, HW, C) array.
#pragma once

#include <cstdint>

#include "kernels/common/unary_math.h"
#include "kernels/cpu/backend.h"

namespace strata::kernels::cpu {

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
// y = x^p; backward dx = dy * p * x^(p-1)
template <class T>
void pow(T* y, const T* x, T p, int64_t n, const Backend& backend);
template <class T>
void pow_backward(T* dx, const T* dy, const T* x, T p, int64_t n, const Backend& backend);
// y = x * x; backward dx = 2 * x * dy
template <class T>
void square(T* y, const T* x, int64_t n, const Backend& backend);
template <class T>
void square_backward(T* dx, const T* dy, const T* x, int64_t n, const Backend& backend);
// Leaky ReLU with slope >= 0 (slope 0 is ReLU): y = x > 0 ? x : slope * x.
// The backward reads the output: for slope >= 0, y > 0 exactly when x > 0.
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

}  // namespace strata::kernels::cpu
