// Label remapping CPU kernel (label type L = uint8_t, int32_t or int64_t), with the name, arguments
// and contract of kernels/cuda/labels.h, the backend last (kernels/cpu/backend.h):
//   out[i] = table[labels[i]]   when labels[i] is a class, 0 <= labels[i] < classes (the table's size)
//   out[i] = ignore_index       when labels[i] == ignore_index, or when it is invalid (anything else)
// in one pass that also writes the label statistics (kernels/common/labels.h): classes mapped, the
// first invalid position and its value.
//   labels, out: (n); table: (classes) int64; stats: (3)
#pragma once

#include <cstdint>

#include "kernels/cpu/backend.h"

namespace strata::kernels::cpu {

template <class L>
void map_labels(int64_t* out, int64_t* stats, const L* labels, const int64_t* table, int64_t n, int64_t classes,
                int64_t ignore_index, const Backend& backend);

}  // namespace strata::kernels::cpu
