// In-place Activated Batch Normalisation (mapillary/inplace_abn v1, the BN + activation of the MiB
// and PLOP backbones), differentiable, f32/f64 on CPU and CUDA.
//
//   x            : (N,H,W,C) or (N,C), f32 or f64
//   weight, bias : (C) of x's dtype, or both undefined (|weight| + eps := 1, bias := 0)
//   running_mean, running_var : (C) of x's dtype and contiguous, or both undefined; required in eval
//   returns y of x's shape:
//     y = act((x - mean) / sqrt(var + eps) * (|weight| + eps) + bias)
//   act = leaky ReLU with negative_slope > 0, or identity (negative_slope is then ignored)
//
// The absolute value of the weight plus eps makes the affine map invertible, and a leaky ReLU with
// a positive slope is invertible, so the backward recomputes everything it needs from the output:
// it keeps only y, the per-channel 1/sqrt(var + eps) and weight/bias, never x. A network of
// conv -> inplace_abn therefore holds one activation per layer where conv -> batch_norm ->
// leaky_relu holds two (batch_norm's input and leaky_relu's output).
//
// training: batch mean and biased variance over N*H*W; running statistics (when given) updated IN
//   PLACE as batch_norm does (unbiased variance for running_var). Needs N*H*W > 1.
// eval: the running statistics normalise x and are left unchanged.
// Gradients flow to x, weight (sign(weight) times the gradient of |weight|, sign(0) = +1) and bias.
//
// sync: synchronised In-place ABN (InPlaceABNSync, as MiB and PLOP train on several GPUs): the
// statistics and backward sums of every rank, as batch_norm's sync (engine/ops/batch_norm.h).
//
// Bad input throws strata::Error as batch_norm (engine/ops/batch_norm.h) does, and for a leaky ReLU
// with negative_slope <= 0 (not invertible) or not finite.
#pragma once

#include "engine/tensor.h"

namespace strata {

namespace distributed {
class Communicator;
}

enum class Activation { identity, leaky_relu };

Tensor inplace_abn(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                   const Tensor& running_var, bool training, double momentum = 0.1, double eps = 1e-5,
                   Activation activation = Activation::leaky_relu, double negative_slope = 0.01,
                   distributed::Communicator* sync = nullptr);

}  // namespace strata
