#include "engine/ops/upsample.h"

#include "engine/autograd.h"
#include "engine/dispatch.h"
#include "engine/ops/device_dispatch.h"
#include "engine/profiler.h"
#include "kernels/cpu/upsample.h"
#include "kernels/cuda/upsample.h"

namespace strata {

namespace {

void check_resize_input(const char* op, const Tensor& x, int64_t out_h, int64_t out_w) {
  check_dim(op, "x", x, 4, "(N,H,W,C)");
  check_floating(op, "x", x);
  check(x.size(1) >= 1 && x.size(2) >= 1, op, ": expected x with at least one pixel, got ", x.describe());
  check(out_h >= 1 && out_w >= 1, op, ": output size must be at least 1x1, got ", out_h, "x", out_w, " for x ",
        x.describe());
}

}  // namespace

Tensor upsample_bilinear(const Tensor& x, int64_t out_h, int64_t out_w, bool align_corners) {
  const char* op = "upsample_bilinear";
  profiler::Scope profile_scope(op);
  check_resize_input(op, x, out_h, out_w);
  int64_t batch = x.size(0), in_h = x.size(1), in_w = x.size(2), channels = x.size(3);
  Tensor xc = x.contiguous();
  Tensor y = Tensor::empty({batch, out_h, out_w, channels}, x.dtype(), x.device());
  dispatch(op, x, [&](auto tag, const auto& backend) {
    using T = decltype(tag);
    upsample_bilinear(y.data<T>(), xc.data<T>(), batch, in_h, in_w, channels, out_h, out_w, align_corners, backend);
  });
  // Four taps per output element (4 multiplies, 3 adds); x read once, y written once.
  profiler::count(7 * static_cast<double>(y.numel()),
                  static_cast<double>(xc.numel() + y.numel()) * static_cast<double>(dtype_size(x.dtype())));
  autograd::record(
      op, y, {x},
      [batch, in_h, in_w, channels, out_h, out_w, align_corners](const Tensor& grad, const std::vector<bool>&) {
        profiler::Scope backward_scope("upsample_bilinear", profiler::Phase::backward);
        Tensor gc = grad.contiguous();
        Tensor dx = Tensor::empty({batch, in_h, in_w, channels}, gc.dtype(), gc.device());
        dispatch("upsample_bilinear backward", gc, [&](auto tag, const auto& backend) {
          using T = decltype(tag);
          upsample_bilinear_backward(dx.data<T>(), gc.data<T>(), batch, in_h, in_w, channels, out_h, out_w,
                                     align_corners, backend);
        });
        // The adjoint: each output gradient element is gathered into its four input taps.
        const double outputs = static_cast<double>(gc.numel()), inputs = static_cast<double>(dx.numel());
        profiler::count(8 * outputs, (inputs + outputs) * static_cast<double>(dtype_size(gc.dtype())));
        return std::vector<Tensor>{dx};
      });
  return y;
}

Tensor upsample_nearest(const Tensor& x, int64_t out_h, int64_t out_w) {
  const char* op = "upsample_nearest";
  profiler::Scope profile_scope(op);
  check_resize_input(op, x, out_h, out_w);
  int64_t batch = x.size(0), in_h = x.size(1), in_w = x.size(2), channels = x.size(3);
  Tensor xc = x.contiguous();
  Tensor y = Tensor::empty({batch, out_h, out_w, channels}, x.dtype(), x.device());
  dispatch(op, x, [&](auto tag, const auto& backend) {
    using T = decltype(tag);
    upsample_nearest(y.data<T>(), xc.data<T>(), batch, in_h, in_w, channels, out_h, out_w, backend);
  });
  profiler::count(0, static_cast<double>(xc.numel() + y.numel()) * static_cast<double>(dtype_size(x.dtype())));
  autograd::record(
      op, y, {x}, [batch, in_h, in_w, channels, out_h, out_w](const Tensor& grad, const std::vector<bool>&) {
        profiler::Scope backward_scope("upsample_nearest", profiler::Phase::backward);
        Tensor gc = grad.contiguous();
        Tensor dx = Tensor::empty({batch, in_h, in_w, channels}, gc.dtype(), gc.device());
        dispatch("upsample_nearest backward", gc, [&](auto tag, const auto& backend) {
          using T = decltype(tag);
          upsample_nearest_backward(dx.data<T>(), gc.data<T>(), batch, in_h, in_w, channels, out_h, out_w, backend);
        });
        const double outputs = static_cast<double>(gc.numel()), inputs = static_cast<double>(dx.numel());
        profiler::count(outputs, (inputs + outputs) * static_cast<double>(dtype_size(gc.dtype())));
        return std::vector<Tensor>{dx};
      });
  return y;
}

}  // namespace strata
