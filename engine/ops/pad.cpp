#include "engine/ops/pad.h"

#include "engine/autograd.h"
#include "engine/dispatch.h"
#include "engine/ops/device_dispatch.h"
#include "engine/profiler.h"
#include "kernels/cpu/pad.h"
#include "kernels/cuda/pad.h"

namespace strata {

Tensor pad_replicate(const Tensor& x, int64_t top, int64_t bottom, int64_t left, int64_t right) {
  const char* op = "pad_replicate";
  profiler::Scope profile_scope(op);
  check_dim(op, "x", x, 4, "(N,H,W,C)");
  check_floating(op, "x", x);
  check(x.size(1) >= 1 && x.size(2) >= 1, op, ": expected x with at least one pixel to replicate, got ", x.describe());
  check(top >= 0 && bottom >= 0 && left >= 0 && right >= 0, op, ": pads must be >= 0, got top ", top, ", bottom ",
        bottom, ", left ", left, ", right ", right);
  int64_t batch = x.size(0), in_h = x.size(1), in_w = x.size(2), channels = x.size(3);
  Tensor xc = x.contiguous();
  Tensor y = Tensor::empty({batch, in_h + top + bottom, in_w + left + right, channels}, x.dtype(), x.device());
  dispatch(op, x, [&](auto tag, const auto& backend) {
    using T = decltype(tag);
    pad_replicate(y.data<T>(), xc.data<T>(), batch, in_h, in_w, channels, top, bottom, left, right, backend);
  });
  autograd::record(
      op, y, {x},
      [batch, in_h, in_w, channels, top, bottom, left, right](const Tensor& grad, const std::vector<bool>&) {
        profiler::Scope backward_scope("pad_replicate", profiler::Phase::backward);
        Tensor gc = grad.contiguous();
        Tensor dx = Tensor::empty({batch, in_h, in_w, channels}, gc.dtype(), gc.device());
        dispatch("pad_replicate backward", gc, [&](auto tag, const auto& backend) {
          using T = decltype(tag);
          pad_replicate_backward(dx.data<T>(), gc.data<T>(), batch, in_h, in_w, channels, top, bottom, left, right,
                                 backend);
        });
        return std::vector<Tensor>{dx};
      });
  return y;
}

}  // namespace strata
