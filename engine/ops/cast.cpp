// Differentiable dtype cast (see cast.h): Tensor::to forward, Tensor::to back to the input's dtype
// in backward. Both run on x's device (strided copies with conversion, kernels/common/convert.h).
#include "engine/ops/cast.h"

#include "engine/autograd.h"

namespace strata {

Tensor cast(const Tensor& x, DType dtype) {
  constexpr const char* op = "cast";
  check_defined(op, "x", x);
  check(is_floating(x.dtype()) && is_floating(dtype), op, ": casts between f32, f64, bf16 and f16, got x ",
        x.describe(), " to ", dtype_name(dtype));
  if (x.dtype() == dtype) return x;
  Tensor y = x.to(dtype);
  const DType from = x.dtype();
  autograd::record(op, y, {x},
                   [from](const Tensor& grad, const std::vector<bool>&) { return std::vector<Tensor>{grad.to(from)}; });
  return y;
}

}  // namespace strata
