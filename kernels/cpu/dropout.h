// Dropout CPU kernels (T = float or double) over n contiguous elements. The mask is not stored:
// element i is kept iff dropout_mask::kept(seed, first + i, p) (kernels/common/dropout.h), a pure
// function of (seed, counter), so the backward regenerates exactly the forward's mask.
#pragma once

#include <cstdint>

namespace strata::kernels::cpu {

// y[i] = kept(i) ? x[i] / (1 - p) : 0,   0 <= p < 1.
template <class T>
void dropout_cpu(T* y, const T* x, uint64_t seed, uint64_t first, double p, int64_t n);

// dx[i] = kept(i) ? dy[i] / (1 - p) : 0, with the mask of the forward draw (same seed and first).
template <class T>
void dropout_backward_cpu(T* dx, const T* dy, uint64_t seed, uint64_t first, double p, int64_t n);

}  // namespace strata::kernels::cpu
