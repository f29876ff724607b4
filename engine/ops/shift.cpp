#include "engine/ops/shift.h"

#include "engine/autograd.h"
#include "engine/dispatch.h"
#include "engine/ops/device_dispatch.h"
#include "engine/profiler.h"
#include "kernels/cpu/shift.h"
#include "kernels/cuda/shift.h"

namespace strata {

namespace {

void check_image(const char* op, const Tensor& x) {
  check_dim(op, "x", x, 4, "(N,H,W,C)");
  check_floating(op, "x", x);
}

void count_copy(const Tensor& x, double tensors) {
  profiler::count(0, static_cast<double>(x.numel()) * tensors * static_cast<double>(dtype_size(x.dtype())));
}

}  // namespace

Tensor roll_flip(const Tensor& x, int64_t shift_h, int64_t shift_w, bool flip) {
  const char* op = "roll_flip";
  profiler::Scope profile_scope(op);
  check_image(op, x);
  check(x.size(1) >= 1 && x.size(2) >= 1, op, ": expected x with at least one pixel, got ", x.describe());
  const int64_t batch = x.size(0), height = x.size(1), width = x.size(2), channels = x.size(3);
  Tensor xc = x.contiguous();
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  dispatch(op, x, [&](auto tag, const auto& backend) {
    using T = decltype(tag);
    roll_flip(y.data<T>(), xc.data<T>(), batch, height, width, channels, shift_h, shift_w, flip, false, backend);
  });
  count_copy(x, 2);
  autograd::record(op, y, {x}, [=](const Tensor& grad, const std::vector<bool>&) {
    profiler::Scope backward_scope("roll_flip", profiler::Phase::backward);
    Tensor gc = grad.contiguous();
    Tensor dx = Tensor::empty(gc.shape(), gc.dtype(), gc.device());
    dispatch("roll_flip backward", gc, [&](auto tag, const auto& backend) {
      using T = decltype(tag);
      roll_flip(dx.data<T>(), gc.data<T>(), batch, height, width, channels, shift_h, shift_w, flip, true, backend);
    });
    count_copy(dx, 2);
    return std::vector<Tensor>{dx};
  });
  return y;
}

Tensor spatial_difference(const Tensor& x, int64_t dy, int64_t dx) {
  const char* op = "spatial_difference";
  profiler::Scope profile_scope(op);
  check_image(op, x);
  const int64_t batch = x.size(0), height = x.size(1), width = x.size(2), channels = x.size(3);
  check(dy > -height && dy < height && dx > -width && dx < width, op, ": offset (", dy, ", ", dx,
        ") leaves no pixel pair in ", x.describe(), "; expected |dy| < H and |dx| < W");
  const int64_t out_h = height - (dy < 0 ? -dy : dy), out_w = width - (dx < 0 ? -dx : dx);
  Tensor xc = x.contiguous();
  Tensor y = Tensor::empty({batch, out_h, out_w, channels}, x.dtype(), x.device());
  dispatch(op, x, [&](auto tag, const auto& backend) {
    using T = decltype(tag);
    spatial_difference(y.data<T>(), xc.data<T>(), batch, height, width, channels, dy, dx, backend);
  });
  profiler::count(static_cast<double>(y.numel()),
                  static_cast<double>(3 * y.numel()) * static_cast<double>(dtype_size(x.dtype())));
  autograd::record(op, y, {x}, [=](const Tensor& grad, const std::vector<bool>&) {
    profiler::Scope backward_scope("spatial_difference", profiler::Phase::backward);
    Tensor gc = grad.contiguous();
    Tensor gx = Tensor::empty({batch, height, width, channels}, gc.dtype(), gc.device());
    dispatch("spatial_difference backward", gc, [&](auto tag, const auto& backend) {
      using T = decltype(tag);
      spatial_difference_backward(gx.data<T>(), gc.data<T>(), batch, height, width, channels, dy, dx, backend);
    });
    count_copy(gx, 3);
    return std::vector<Tensor>{gx};
  });
  return y;
}

}  // namespace strata
