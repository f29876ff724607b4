// Channel concatenation and slicing on CUDA (T = float or double), with the semantics and argument order of
// kernels/cpu/channels.h, the backend last. Arrays are (rows, C) with C contiguous: any (..., C)
// tensor, rows = numel / C.
#pragma once

#include <cstdint>

#include "kernels/cuda/backend.h"

namespace strata::kernels::cuda {

// y[r, offset_i + c] = xs[i][r, c], offset_i = channels[0] + ... + channels[i - 1]
//   xs[i]: (rows, channels[i]), i < count -> y: (rows, sum of channels)
// xs and channels are host arrays (of device pointers and sizes): one copy kernel per input.
template <class T>
void concat_channels(T* y, const T* const* xs, const int64_t* channels, int64_t count, int64_t rows,
                     const Backend& backend);

// y[r, c] = x[r, begin + c], 0 <= begin <= end <= C        x: (rows, C) -> y: (rows, end - begin)
template <class T>
void slice_channels(T* y, const T* x, int64_t rows, int64_t channels, int64_t begin, int64_t end,
                    const Backend& backend);

// dx[r, c] = dy[r, c - begin] for c in [begin, end), 0 elsewhere.   dy: (rows, end - begin) -> dx: (rows, C)
template <class T>
void slice_channels_backward(T* dx, const T* dy, int64_t rows, int64_t channels, int64_t begin, int64_t end,
                             const Backend& backend);

}  // namespace strata::kernels::cuda
