// Softmax-family CPU kernels over the last (channel) dimension (T = float or double). x is an array
// of P rows ("pixels") of C contiguous channels, i.e. any (..., C) tensor with P = numel / C; every
// kernel needs C >= 1. The per-pixel math is kernels/common/softmax.h.
#pragma once

#include <cstdint>

#include "kernels/cpu/backend.h"

namespace strata::kernels::cpu {

// y = softmax(x) per row; backward dx = y (dy - sum(dy y)) from the output y.   x, y, dx, dy: (P, C)
template <class T>
void softmax(T* y, const T* x, int64_t pixels, int64_t channels, const Backend& backend);
template <class T>
void softmax_backward(T* dx, const T* dy, const T* y, int64_t pixels, int64_t channels, const Backend& backend);
// y = log_softmax(x) per row; backward dx = dy - exp(y) sum(dy) from the output y.  (P, C)
template <class T>
void log_softmax(T* y, const T* x, int64_t pixels, int64_t channels, const Backend& backend);
template <class T>
void log_softmax_backward(T* dx, const T* dy, const T* y, int64_t pixels, int64_t channels, const Backend& backend);
// lse[p] = log sum_{c in [begin, end)} exp(x[p, c]), 0 <= begin < end <= C.    x: (P, C) -> lse: (P)
// backward: dx[p, c] = dlse[p] exp(x[p, c] - lse[p]) inside the range, 0 outside.
template <class T>
void logsumexp(T* lse, const T* x, int64_t pixels, int64_t channels, int64_t begin, int64_t end,
               const Backend& backend);
template <class T>
void logsumexp_backward(T* dx, const T* dlse, const T* x, const T* lse, int64_t pixels, int64_t channels, int64_t begin,
                        int64_t end, const Backend& backend);

}  // namespace strata::kernels::cpu
