// Dropout CPU kernels (T = float or double) over n contiguous elements. The mask is not stored:
// element i is kept iff dropout_mask::kept(seed, first + i, p) (kernels/common/dropout.h), a pure
// function of (seed, counter), so the backward regenerates exactly the forward's mask.
#pragma once

#include <cstdint>

#include "kernels/cpu/backend.h"

namespace strata::kernels::cpu {

// y[i] = kept(i) ? x[i] / (1 - p) : 0,   0 <= p < 1.
template <class T>
void dropout(T* y, const T* x, uint64_t seed, uint64_t first, double p, int64_t n, const Backend& backend);

// dx[i] = kept(i) ? dy[i] / (1 - p) : 0, with the mask of the forward draw (same seed and first).
template <class T>
void dropout_backward(T* dx, const T* dy, uint64_t seed, uint64_t first, double p, int64_t n, const Backend& backend);

}  // namespace strata::kernels::cpu
