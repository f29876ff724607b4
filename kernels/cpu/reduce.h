// Reduction CPU kernels (T = float or double), deterministic for any thread count: partial sums
// over fixed chunks, combined in chunk order, accumulated in double. The operations, names and
// arguments of kernels/cuda/reduce.h, the backend last (kernels/cpu/backend.h).
//
// The scaled sums round as the ops define them: the double sum s is rounded to T, then multiplied by
// `scale` (1 for a sum, 1 / count for a mean) in double and rounded to T again.
#pragma once

#include <cstdint>

#include "kernels/cpu/backend.h"

namespace strata::kernels::cpu {

// out[c] = sum over rows r of x[r, c]                    x: (rows, C) -> out: (C)
template <class T>
void sum_rows(T* out, const T* x, int64_t rows, int64_t channels, const Backend& backend);
// out[0] = scale * sum of the n values of x              x: (n) -> out: ()
template <class T>
void sum_all(T* out, const T* x, int64_t n, double scale, const Backend& backend);
// out[b, c] = scale * sum over p of x[b, p, c]           x: (N, P, C) -> out: (N, C)
template <class T>
void sum_spatial(T* out, const T* x, int64_t batch, int64_t pixels, int64_t channels, double scale,
                 const Backend& backend);
// out[r] = scale * sum over c of x[r, c]                 x: (rows, C) -> out: (rows)
template <class T>
void sum_channels(T* out, const T* x, int64_t rows, int64_t channels, double scale, const Backend& backend);
// Broadcast back: y[r, c] = g[r] * s                     g: (rows) -> y: (rows, C)
template <class T>
void broadcast_channels(T* y, const T* g, T s, int64_t rows, int64_t channels, const Backend& backend);
// Broadcast back: y[b, p, c] = g[b, c] * s               g: (N, C) -> y: (N, P, C)
template <class T>
void broadcast_spatial(T* y, const T* g, T s, int64_t batch, int64_t pixels, int64_t channels, const Backend& backend);

}  // namespace strata::kernels::cpu
