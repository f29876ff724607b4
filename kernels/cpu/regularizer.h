// The weight regularisers' kernels (EWC, PI, RW; SPEC-continual.md §3.6), the per-element math of
// kernels/common/regularizer.h over one parameter tensor of n elements:
//   importance_update                   F, Δ/s and θ_prev updated in place from θ and g, one pass
//   weighted_squared_distance           values[i] = w·(θ − θ_old)²   (the caller sums them)
//   weighted_squared_distance_backward  dθ[i] = 2·u·w·(θ − θ_old), u the upstream scalar read in place
#pragma once

#include <cstdint>

#include "kernels/common/regularizer.h"
#include "kernels/cpu/backend.h"

namespace strata::kernels::cpu {

using common::ImportanceUpdate;

// fisher, path, previous: n values each, null when `update` does not use them.
template <class T>
void importance_update(T* fisher, T* path, T* previous, const T* param, const T* grad, int64_t n,
                       const ImportanceUpdate& update, const Backend& backend);

// importance_update fused with the penalty of the parameter (kernels/common/regularizer.h):
// values[i] = w·(θ − θ_old)², grad_out[i] = g + 2·importance·w·(θ − θ_old).
template <class T>
void importance_update_and_penalty(T* fisher, T* path, T* previous, T* values, T* grad_out, const T* param,
                                   const T* grad, const T* anchor, const T* weight, int64_t n,
                                   const ImportanceUpdate& update, double importance, const Backend& backend);

template <class T>
void weighted_squared_distance(T* values, const T* theta, const T* anchor, const T* weight, int64_t n,
                               const Backend& backend);

// upstream: one value.
template <class T>
void weighted_squared_distance_backward(T* dtheta, const T* upstream, const T* theta, const T* anchor, const T* weight,
                                        int64_t n, const Backend& backend);

}  // namespace strata::kernels::cpu
