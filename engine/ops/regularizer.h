// The weight regularisers' ops (EWC, PI, RW; SPEC-continual.md §3.6; the math is
// kernels/common/regularizer.h):
//
//   importance_update(fisher, path, previous, param, grad, update)
//       in place, no autograd, nothing read back to the host: one fused pass over one parameter
//       tensor updating the Fisher EMA F, the path accumulator (PI's Δ or RW's s) and the remembered
//       point θ_prev as `update` says. Tensors `update` does not use may be undefined.
//   importance_update_and_penalty(fisher, path, previous, param, grad, anchor, weight, update,
//                                 importance, penalized_grad)
//       importance_update fused with the penalty of a parameter the previous model has, as training
//       runs it (one pass instead of update, penalty forward, its backward and the gradient sum):
//       returns Σ weight·(param − anchor)² (a detached scalar on the device) and sets penalized_grad
//       to a new tensor grad + 2·importance·weight·(param − anchor); the importance sees `grad`.
//   weighted_squared_distance(theta, anchor, weight) = Σ weight·(theta − anchor)²
//       a scalar, differentiable in theta only (anchor and weight are constants: the old model's
//       weights and their importance); dθ = 2·u·weight·(theta − anchor).
//
// Every tensor: the same shape, dtype (f32 or f64) and device, contiguous (the in-place ones must
// be). Errors (strata::Error): a mismatch naming the tensor and what was expected; a tensor that
// `update` needs and that is missing.
#pragma once

#include "engine/tensor.h"
#include "kernels/common/regularizer.h"

namespace strata {

using kernels::common::ImportancePath;
using kernels::common::ImportanceUpdate;

void importance_update(const Tensor& fisher, const Tensor& path, const Tensor& previous, const Tensor& param,
                       const Tensor& grad, const ImportanceUpdate& update);

Tensor importance_update_and_penalty(const Tensor& fisher, const Tensor& path, const Tensor& previous,
                                     const Tensor& param, const Tensor& grad, const Tensor& anchor,
                                     const Tensor& weight, const ImportanceUpdate& update, double importance,
                                     Tensor& penalized_grad);

Tensor weighted_squared_distance(const Tensor& theta, const Tensor& anchor, const Tensor& weight);

}  // namespace strata
