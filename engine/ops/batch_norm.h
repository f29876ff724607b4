// Batch normalisation, differentiable, f32/f64 on CPU and CUDA, with PyTorch's F.batch_norm semantics.
//
//   x            : (N,H,W,C) or (N,C), f32 or f64
//   weight, bias : (C) of x's dtype, or both undefined (no affine transform)
//   running_mean, running_var : (C) of x's dtype and contiguous, or both undefined (no running
//                  statistics); required in eval
//   returns y of x's shape: (x - mean) / sqrt(var + eps) * weight + bias
//
// training: mean and the biased variance over N*H*W normalise x, and the running statistics (when
//   given) are updated IN PLACE: running = (1 - momentum) running + momentum batch, with the
//   unbiased batch variance for running_var. Needs N*H*W > 1.
// eval: the running statistics normalise x and are left unchanged.
// Gradients flow to x, weight and bias in both modes (in eval x's gradient is the affine scaling).
//
// sync (synchronised batch norm, PyTorch's SyncBatchNorm, data-parallel training): in training the
// statistics are those of every rank's rows together (per-channel sums all-reduced over `sync`), the
// running statistics are updated with them (unbiased by the total rows), and backward all-reduces its
// per-channel sums before the input gradient, which is then the gradient of the ranks' summed losses
// (kernels/common/batch_norm.h NormSync). Every rank must call it for the same layers in the same order.
// Without sync, or in eval, the op is the rank's own.
//
// Bad input throws strata::Error naming the op and the offending tensor: wrong rank or dtype, a (C)
// tensor of another size, dtype or device, only one of weight/bias or of the running statistics,
// eval without running statistics, training with N*H*W <= 1, eps < 0 or a non-finite momentum/eps.
#pragma once

#include "engine/tensor.h"

namespace strata {

namespace distributed {
class Communicator;
}

Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                  const Tensor& running_var, bool training, double momentum = 0.1, double eps = 1e-5,
                  distributed::Communicator* sync = nullptr);

namespace detail {

// batch_norm and inplace_abn (engine/ops/inplace_abn.h) are one computation (engine/ops/batch_norm.cpp,
// kernels/common/batch_norm.h): In-place ABN with the plain weight, the identity activation and a
// backward that reads x is batch_norm. `slope` is In-place ABN's leaky ReLU slope, 1 for its identity
// and for batch_norm; messages and profiles name the op of `kind`.
enum class NormKind { batch_norm, inplace_abn };

Tensor batch_norm_or_inplace_abn(NormKind kind, const Tensor& x, const Tensor& weight, const Tensor& bias,
                                 const Tensor& running_mean, const Tensor& running_var, bool training, double momentum,
                                 double eps, double slope, distributed::Communicator* sync = nullptr);

}  // namespace detail

}  // namespace strata
