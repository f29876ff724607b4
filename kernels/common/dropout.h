// Dropout mask math shared by the CPU and CUDA kernels, so both backends keep exactly the same
// elements for the same generator seed and offset.
//
// A draw of n elements reserves counter positions [first, first + n) of the generator; element i
// (row-major over the contiguous tensor) uses Philox word first + i of stream kStream
// (kernels/common/philox.h) and is
//   kept  iff  to_unit_float(word(seed, first + i, kStream)) >= p
// Random tensors (Tensor::randn/uniform) draw one block per element from stream 0, so a dropout
// mask drawn from the same generator after them never reuses their random bits.
// which happens with probability 1 - p up to the 2^-24 granularity of the uniform. Kept elements
// are scaled by 1 / (1 - p) so the expectation of the output equals the input (inverted dropout,
// Srivastava et al., JMLR 2014, as torch.nn.functional.dropout).
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/common/host_device.h"
#include "kernels/common/philox.h"

namespace strata::dropout_mask {

// The Philox stream reserved for dropout masks.
inline constexpr uint64_t kStream = 1;

// The uniform is k / 2^24 exactly; comparing it with p in double (not float(p)) keeps the decision
// exact for any p, so a Python reimplementation with double arithmetic reproduces it bit for bit.
STRATA_HOST_DEVICE inline bool kept_word(uint32_t word, double p) {
  return static_cast<double>(philox::to_unit_float(word)) >= p;
}

// Element `index` of the generator stream of `seed`.
STRATA_HOST_DEVICE inline bool kept(uint64_t seed, uint64_t index, double p) {
  return kept_word(philox::word(seed, index, kStream), p);
}

// The same decision as one integer compare, for kernels: to_unit_float(word) is exactly
// (word >> 8) / 2^24 and p 2^24 is exact in double, so (word >> 8) / 2^24 >= p holds exactly when
// (word >> 8) >= ceil(p 2^24). For p in [0, 1) the threshold is in [0, 2^24].
STRATA_HOST_DEVICE inline uint32_t keep_threshold(double p) {
  return static_cast<uint32_t>(std::ceil(p * 16777216.0));
}
STRATA_HOST_DEVICE inline bool kept_bits(uint32_t word, uint32_t threshold) { return (word >> 8) >= threshold; }

}  // namespace strata::dropout_mask
