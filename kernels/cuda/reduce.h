// Reductions on CUDA (T = float or double), deterministic: partial sums over fixed chunks, then the
// chunks combined in order (or a fixed tree), so the result does not depend on scheduling. The
// operations, names and arguments of kernels/cpu/reduce.h, the backend last (kernels/cuda/backend.h);
// partial sums live in the backend's scratch memory.
//   N batch, P pixels (H * W), C channels; arrays are contiguous device memory.
#pragma once

#include <cstdint>

#include "kernels/cuda/backend.h"

namespace strata::kernels::cuda {

// out[c] = sum over rows r of x[r, c], accumulated in T (the CPU accumulates in double; in f64 the
// chunks and their order are the CPU's, so the bits are the same)     x: (rows, C) -> out: (C)
template <class T>
void sum_rows(T* out, const T* x, int64_t rows, int64_t channels, const Backend& backend);

// The reductions of engine/ops/reduce.h, accumulated in double like the CPU kernels and scaled as
// they scale: the sum s is rounded to T, then multiplied by `scale` (1 for a sum, 1 / count for a
// mean) in double and rounded to T again.
//
// out[0] = scale * sum of the n values of x.             x: (n) -> out: ()
template <class T>
void sum_all(T* out, const T* x, int64_t n, double scale, const Backend& backend);
// out[b, c] = scale * sum over p of x[b, p, c], over chunks of 256 pixels in order, as the CPU's
// sum_rows per sample.                                   x: (N, P, C) -> out: (N, C)
template <class T>
void sum_spatial(T* out, const T* x, int64_t batch, int64_t pixels, int64_t channels, double scale,
                 const Backend& backend);
// out[r] = scale * sum over c of x[r, c].                 x: (rows, C) -> out: (rows)
template <class T>
void sum_channels(T* out, const T* x, int64_t rows, int64_t channels, double scale, const Backend& backend);

// The backward broadcasts:
// y[r, c] = g[r] * s                                      g: (rows) -> y: (rows, C)
template <class T>
void broadcast_channels(T* y, const T* g, T s, int64_t rows, int64_t channels, const Backend& backend);
// y[b, p, c] = g[b, c] * s                                g: (N, C) -> y: (N, P, C)
template <class T>
void broadcast_spatial(T* y, const T* g, T s, int64_t batch, int64_t pixels, int64_t channels, const Backend& backend);

}  // namespace strata::kernels::cuda
