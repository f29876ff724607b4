// Reductions on CUDA (T = float or double), deterministic: partial sums over fixed chunks, then the chunks
// combined in order (or a fixed tree), so the result does not depend on scheduling.
//   N batch, P pixels (H * W), C channels; arrays are contiguous device memory.
#pragma once

#include <cstdint>

#include "kernels/cuda/stream.h"

namespace strata::kernels::cuda {

// out[c] = sum over rows r of x[r, c], accumulated in T     x: (rows, C) -> out: (C)
// `partials` is scratch of sum_rows_partials(rows, channels) values of T (from the caller's allocator).
template <class T> void sum_rows_cuda(T* out, const T* x, int64_t rows, int64_t channels, T* partials,
                                      const Stream& stream);
int64_t sum_rows_partials(int64_t rows, int64_t channels);

// The reductions of engine/ops/reduce.h, accumulated in double like the CPU kernels
// (kernels/cpu/reduce.h) and scaled as the CPU ops scale them: the sum s is rounded to T, then
// multiplied by `scale` (1 for a sum, 1 / count for a mean) in double and rounded to T again.
//
// out[0] = scale * sum of the n values of x.             x: (n) -> out: ()
// `partials` is scratch of sum_all_partials(n) doubles.
template <class T> void sum_all_cuda(T* out, const T* x, int64_t n, double scale, double* partials,
                                     const Stream& stream);
int64_t sum_all_partials(int64_t n);
// out[b, c] = scale * sum over p of x[b, p, c], over chunks of 256 pixels in order, as
// kernels/cpu/reduce.cpp's sum_rows_cpu per sample.      x: (N, P, C) -> out: (N, C)
// `partials` is scratch of sum_spatial_partials(batch, pixels, channels) doubles.
template <class T> void sum_spatial_cuda(T* out, const T* x, int64_t batch, int64_t pixels, int64_t channels,
                                         double scale, double* partials, const Stream& stream);
int64_t sum_spatial_partials(int64_t batch, int64_t pixels, int64_t channels);
// out[r] = scale * sum over c of x[r, c].                 x: (rows, C) -> out: (rows)
template <class T> void sum_channels_cuda(T* out, const T* x, int64_t rows, int64_t channels, double scale,
                                          const Stream& stream);

// The backward broadcasts, as kernels/cpu/reduce.h:
// y[r, c] = g[r] * s                                      g: (rows) -> y: (rows, C)
template <class T> void broadcast_channels_cuda(T* y, const T* g, T s, int64_t rows, int64_t channels,
                                                const Stream& stream);
// y[b, p, c] = g[b, c] * s                                g: (N, C) -> y: (N, P, C)
template <class T> void broadcast_spatial_cuda(T* y, const T* g, T s, int64_t batch, int64_t pixels,
                                               int64_t channels, const Stream& stream);

}  // namespace strata::kernels::cuda
