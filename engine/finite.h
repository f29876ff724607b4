// Whether tensors hold only finite values (no NaN, no +-Inf), checked on their own devices: the
// guard a checkpoint passes before it is written (incremental/checkpoint.h).
//
// Each floating tensor x is reduced to sum(0 * x) in double: 0 * x is 0 for every finite x and NaN
// for NaN and +-Inf (IEEE 754), and a sum of zeros is 0 while one NaN makes it NaN, so the scalar is
// NaN exactly when x holds a non-finite value. bf16/f16 tensors are widened to f32 first (the cast
// keeps NaN and Inf); integer tensors are finite by definition. The scalars of one device are read
// back in one copy: the host waits once per device, not once per tensor.
//
// Takes tensors of any shape, dtype and device (empty ones are finite). Not recorded by autograd,
// not checked by anomaly mode (engine/autograd.h).
//
// The training loop's health probe (incremental/trainer.cpp) queues nonfinite_marker() and
// squared_norm() on the device and folds their scalars into the read it makes at each logging
// interval anyway, so watching parameters, gradients and statistics costs no extra host wait.
#pragma once

#include <string>
#include <vector>

#include "engine/safetensors.h"

namespace strata {

// (1) f64 on `device`: NaN when one of `tensors` holds a NaN or an Inf, else 0. Queued, not read.
// Every tensor must be on `device`.
Tensor nonfinite_marker(const std::vector<Tensor>& tensors, Device device);

// (1) f64 on `device`: the sum of the squares of every element of `tensors` (the squared global L2
// norm of gradient clipping); Inf or NaN when an element is. Each tensor's sum runs in its dtype.
// Queued, not read. Every tensor must be on `device`.
Tensor squared_norm(const std::vector<Tensor>& tensors, Device device);

// Whether `x` holds only finite values: one host read.
bool all_finite(const Tensor& x);

// The key of the first tensor of `tensors` (in key order) holding a NaN or an Inf; "" when all are
// finite.
std::string first_nonfinite(const TensorMap& tensors);

}  // namespace strata
