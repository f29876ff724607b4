// Argmax over the last (channel) dimension on CUDA (T = float or double): index[p] = the first c with x[p, c]
// maximal, NaN counting as the maximum (torch.argmax), as kernels/cpu/argmax.h plus the stream.
//   x: (P, C), C >= 1 -> index: (P)
#pragma once

#include <cstdint>

#include "kernels/cuda/backend.h"

namespace strata::kernels::cuda {

template <class T>
void argmax_cuda(int64_t* index, const T* x, int64_t pixels, int64_t channels, const Stream& stream);

}  // namespace strata::kernels::cuda
