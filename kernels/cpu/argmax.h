// Argmax over the last (channel) dimension (T = float or double): index[p] = the first c with
// x[p, c] maximal, NaN counting as the maximum (torch.argmax).   x: (P, C), C >= 1 -> index: (P)
#pragma once

#include <cstdint>

#include "kernels/cpu/backend.h"

namespace strata::kernels::cpu {

template <class T>
void argmax(int64_t* index, const T* x, int64_t pixels, int64_t channels, const Backend& backend);

}  // namespace strata::kernels::cpu
