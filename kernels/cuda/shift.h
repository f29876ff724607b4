// The spatial shift kernels of engine/ops/shift.h (T = float or double), NHWC, index maps in
// kernels/common/shift.h; each takes the backend last, as the semantics, names and arguments of kernels/cpu/shift.h.
//   N batch, H x W pixels, C channels (innermost, contiguous).
#pragma once

#include <cstdint>

#include "kernels/cuda/backend.h"

namespace strata::kernels::cuda {

// y[n, p] = x[n, roll_flip_source(p, ..., inverse)] for every pixel p: with inverse = false the
// roll-then-flip of x, with inverse = true its adjoint (the gradient of the forward), both (N, H, W, C).
template <class T>
void roll_flip(T* y, const T* x, int64_t batch, int64_t height, int64_t width, int64_t channels, int64_t shift_h,
               int64_t shift_w, bool flip, bool inverse, const Backend& backend);

// y: (N, H - |dy|, W - |dx|, C) = x[p] - x[p + (dy, dx)] over the positions where both exist.
template <class T>
void spatial_difference(T* y, const T* x, int64_t batch, int64_t height, int64_t width, int64_t channels, int64_t dy,
                        int64_t dx, const Backend& backend);

// The adjoint as a gather: gx (N, H, W, C) from gy (N, H - |dy|, W - |dx|, C).
template <class T>
void spatial_difference_backward(T* gx, const T* gy, int64_t batch, int64_t height, int64_t width, int64_t channels,
                                 int64_t dy, int64_t dx, const Backend& backend);

}  // namespace strata::kernels::cuda
