// Channel concatenation and slicing CPU kernels (T = float or double). Arrays are (rows, C) with C
// contiguous: any (..., C) tensor, rows = numel / C.
#pragma once

#include <cstdint>

#include "kernels/cpu/backend.h"

namespace strata::kernels::cpu {

// y[r, offset_i + c] = xs[i][r, c], offset_i = channels[0] + ... + channels[i - 1]
//   xs[i]: (rows, channels[i]), i < count -> y: (rows, sum of channels)
template <class T>
void concat_channels(T* y, const T* const* xs, const int64_t* channels, int64_t count, int64_t rows,
                     const Backend& backend);

// y[r, c] = x[r, begin + c], 0 <= begin <= end <= C        x: (rows, C) -> y: (rows, end - begin)
// (also the backward of concat: each input's gradient is its slice of the output gradient)
template <class T>
void slice_channels(T* y, const T* x, int64_t rows, int64_t channels, int64_t begin, int64_t end,
                    const Backend& backend);

// Backward of slice: dx[r, c] = dy[r, c - begin] for c in [begin, end), 0 elsewhere.
//   dy: (rows, end - begin) -> dx: (rows, C)
template <class T>
void slice_channels_backward(T* dx, const T* dy, int64_t rows, int64_t channels, int64_t begin, int64_t end,
                             const Backend& backend);

}  // namespace strata::kernels::cpu
