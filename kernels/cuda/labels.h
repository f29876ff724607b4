// Label remapping on CUDA (label type L = uint8_t, int32_t or int64_t), with the name, arguments and
// contract of kernels/cpu/labels.h, the backend last (kernels/cuda/backend.h):
//   out[i] = table[labels[i]] for a class label, ignore_index for ignored and invalid ones, and the
//   label statistics (kernels/common/labels.h) written to device memory in the same pass.
//   labels, out: (n); table: (classes) int64; stats: (3); all device memory
#pragma once

#include <cstdint>

#include "kernels/cuda/backend.h"

namespace strata::kernels::cuda {

template <class L>
void map_labels(int64_t* out, int64_t* stats, const L* labels, const int64_t* table, int64_t n, int64_t classes,
                int64_t ignore_index, const Backend& backend);

}  // namespace strata::kernels::cuda
