// inplace_abn (engine/ops/inplace_abn.h): batch_norm's implementation with |weight| + eps, the
// activation and a backward from the output (engine/ops/batch_norm.cpp).
#include "engine/ops/inplace_abn.h"

#include "engine/ops/batch_norm.h"

namespace strata {

Tensor inplace_abn(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                   const Tensor& running_var, bool training, double momentum, double eps, Activation activation,
                   double negative_slope, distributed::Communicator* sync) {
  // Identity is a leaky ReLU of slope 1 (negative_slope is then ignored).
  const double slope = activation == Activation::identity ? 1.0 : negative_slope;
  return detail::batch_norm_or_inplace_abn(detail::NormKind::inplace_abn, x, weight, bias, running_mean, running_var,
                                           training, momentum, eps, slope, sync);
}

}  // namespace strata
