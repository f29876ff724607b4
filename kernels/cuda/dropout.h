// Dropout on CUDA (T = float or double) over n contiguous elements, with the semantics and argument order of
// kernels/cpu/dropout.h, the backend last: element i is kept iff dropout_mask::kept(seed, first + i, p)
// (kernels/common/dropout.h), so the mask equals the CPU's bit for bit for the same generator seed
// and offset, and the backward regenerates the forward's mask.
#pragma once

#include <cstdint>

#include "kernels/cuda/backend.h"

namespace strata::kernels::cuda {

// y[i] = kept(i) ? x[i] / (1 - p) : 0,   0 <= p < 1.
template <class T>
void dropout(T* y, const T* x, uint64_t seed, uint64_t first, double p, int64_t n, const Backend& backend);

// dx[i] = kept(i) ? dy[i] / (1 - p) : 0, with the mask of the forward draw (same seed and first).
template <class T>
void dropout_backward(T* dx, const T* dy, uint64_t seed, uint64_t first, double p, int64_t n, const Backend& backend);

}  // namespace strata::kernels::cuda
