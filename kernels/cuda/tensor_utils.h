// Device-side tensor utilities the engine's Tensor class needs on CUDA: fill with a value and a
// strided copy that also converts the element type (contiguous(), clone(), to(dtype)).
// Element types: float, double, bf16, f16, uint8_t, int32_t, int64_t.
#pragma once

#include <cstdint>

#include "kernels/cuda/backend.h"

namespace strata::kernels::cuda {

// A strided view: element (i0, ..., i{rank-1}) is at offset + sum_k i_k * strides[k].
struct StridedView {
  static constexpr int kMaxRank = 8;
  int rank = 0;
  int64_t offset = 0;
  int64_t shape[kMaxRank] = {};
  int64_t strides[kMaxRank] = {};
};

// dst[i] = value for i < n.
template <class T>
void fill_cuda(T* dst, T value, int64_t n, const Stream& stream);

// dst (contiguous, row-major over view.shape) = convert(src viewed through `view`).
template <class To, class From>
void copy_strided_cuda(To* dst, const From* src, const StridedView& view, const Stream& stream);

}  // namespace strata::kernels::cuda
