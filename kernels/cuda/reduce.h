// Reductions on CUDA (T = float), deterministic: partial sums over fixed chunks of rows, then the
// chunks combined in order by one thread per channel, so the result does not depend on scheduling.
#pragma once

#include <cstdint>

#include "kernels/cuda/stream.h"

namespace strata::kernels::cuda {

// out[c] = sum over rows r of x[r, c]     x: (rows, C) -> out: (C)
// `partials` is scratch of sum_rows_partials(rows, channels) floats (from the caller's allocator).
template <class T> void sum_rows_cuda(T* out, const T* x, int64_t rows, int64_t channels, float* partials,
                                      const Stream& stream);
int64_t sum_rows_partials(int64_t rows, int64_t channels);

}  // namespace strata::kernels::cuda
