#include "engine/ops/argmax.h"

#include "engine/dispatch.h"
#include "engine/ops/device_dispatch.h"
#include "engine/profiler.h"
#include "kernels/cpu/argmax.h"
#include "kernels/cuda/argmax.h"

namespace strata {

Tensor argmax(const Tensor& x) {
  const char* op = "argmax";
  profiler::Scope profile_scope(op);
  check_floating(op, "x", x);
  check(x.dim() >= 1 && x.size(-1) >= 1, op, ": expected x of shape (..., C) with C >= 1 channels, got ", x.describe());
  int64_t channels = x.size(-1);
  Tensor xc = x.contiguous();
  Shape out_shape(x.shape().begin(), x.shape().end() - 1);
  Tensor index = Tensor::empty(out_shape, DType::i64, x.device());
  dispatch(op, x, [&](auto tag, const auto& backend) {
    using T = decltype(tag);
    argmax(index.data<int64_t>(), xc.data<T>(), index.numel(), channels, backend);
  });
  return index;
}

}  // namespace strata
