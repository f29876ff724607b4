// Whether tensors hold only finite values (no NaN, no +-Inf), checked on their own devices: the
// guard a checkpoint passes before it is written (incremental/checkpoint.h).
//
// Each floating tensor x is reduced to sum(0 * x) in double: 0 * x is 0 for every finite x and NaN
// for NaN and +-Inf (IEEE 754), and a sum of zeros is 0 while one NaN makes it NaN, so the scalar is
// NaN exactly when x holds a non-finite value. bf16/f16 tensors are widened to f32 first (the cast
// keeps NaN and Inf); integer tensors are finite by definition. The scalars of one device are read
// back in one copy: the host waits once per device, not once per tensor.
//
// Takes tensors of any shape, dtype and device (empty ones are finite). Not recorded by autograd.
#pragma once

#include <string>

#include "engine/safetensors.h"

namespace strata {

// The key of the first tensor of `tensors` (in key order) holding a NaN or an Inf; "" when all are
// finite.
std::string first_nonfinite(const TensorMap& tensors);

}  // namespace strata
