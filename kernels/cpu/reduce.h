// Reduction CPU kernels (T = float or double), deterministic for any thread count: partial sums
// over fixed chunks, combined in chunk order, accumulated in double.
#pragma once

#include <cstdint>

namespace strata::kernels::cpu {

// out = sum of all n values.
template <class T> T sum_all_cpu(const T* x, int64_t n);
// out[c] = sum over rows r of x[r, c]     x: (rows, C) -> out: (C)
template <class T> void sum_rows_cpu(T* out, const T* x, int64_t rows, int64_t channels);
// out[r] = sum over c of x[r, c]          x: (rows, C) -> out: (rows)
template <class T> void sum_channels_cpu(T* out, const T* x, int64_t rows, int64_t channels);
// Broadcast back: y[r, c] = g[r] * s       g: (rows) -> y: (rows, C)
template <class T> void broadcast_channels_cpu(T* y, const T* g, T s, int64_t rows, int64_t channels);
// Broadcast back: y[n, p, c] = g[n, c] * s g: (N, C) -> y: (N, P, C)
template <class T> void broadcast_spatial_cpu(T* y, const T* g, T s, int64_t batch, int64_t pixels, int64_t channels);

}  // namespace strata::kernels::cpu
