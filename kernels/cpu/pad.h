// Replicate (edge) padding CPU kernels (T = float or double), NHWC; each takes the backend last, as
// its CUDA twin in kernels/cuda/pad.h.
//   N batch, H x W input (both >= 1), C channels; top, bottom, left, right >= 0;
//   OH = H + top + bottom, OW = W + left + right.
#pragma once

#include <cstdint>

#include "kernels/cpu/backend.h"

namespace strata::kernels::cpu {

// y[n, oh, ow, c] = x[n, clamp(oh - top, 0, H - 1), clamp(ow - left, 0, W - 1), c]
//   x: (N, H, W, C) -> y: (N, OH, OW, C)
template <class T>
void pad_replicate(T* y, const T* x, int64_t batch, int64_t in_h, int64_t in_w, int64_t channels, int64_t top,
                   int64_t bottom, int64_t left, int64_t right, const Backend& backend);

// The adjoint as a gather: each input pixel sums dy over the output pixels that copy it (one for
// interior pixels; the whole replicated band or corner for edge pixels).
//   dy: (N, OH, OW, C) -> dx: (N, H, W, C)
template <class T>
void pad_replicate_backward(T* dx, const T* dy, int64_t batch, int64_t in_h, int64_t in_w, int64_t channels,
                            int64_t top, int64_t bottom, int64_t left, int64_t right, const Backend& backend);

}  // namespace strata::kernels::cpu
