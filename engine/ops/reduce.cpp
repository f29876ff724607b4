#include "engine/ops/reduce.h"

#include "engine/autograd.h"
#include "engine/ops/device_dispatch.h"
#include "engine/profiler.h"
#include "kernels/cpu/reduce.h"
#include "kernels/cuda/reduce.h"

namespace strata {

namespace {

// A reduction or its broadcast backward: one operation per element of the larger tensor, both read
// or written once.
void count_elements(const Tensor& large, const Tensor& small) {
  profiler::count(static_cast<double>(large.numel()),
                  static_cast<double>(large.numel() + small.numel()) * static_cast<double>(dtype_size(large.dtype())));
}

Tensor reduce_all(const char* op, const Tensor& x, bool average) {
  profiler::Scope profile_scope(op);
  check_floating(op, "x", x);
  Tensor xc = x.contiguous();
  int64_t n = x.numel();
  check(!average || n > 0, op, ": mean of an empty tensor ", x.describe());
  double factor = average ? 1.0 / static_cast<double>(n) : 1.0;
  Tensor y = Tensor::empty({}, x.dtype(), x.device());
  dispatch(op, x, [&](auto tag, const auto& backend) {
    using T = decltype(tag);
    sum_all(y.data<T>(), xc.data<T>(), n, factor, backend);
  });
  count_elements(xc, y);
  autograd::record(op, y, {x}, [op, factor, shape = x.shape()](const Tensor& g, const std::vector<bool>&) {
    profiler::Scope backward_scope(op, profiler::Phase::backward);
    // The upstream scalar is read on the device: no host round trip.
    Tensor gc = g.contiguous();
    Tensor dx = Tensor::empty(shape, g.dtype(), g.device());
    dispatch("reduce_all backward", g, [&](auto tag, const auto& backend) {
      using T = decltype(tag);
      broadcast_channels(dx.data<T>(), gc.data<T>(), static_cast<T>(factor), int64_t{1}, dx.numel(), backend);
    });
    count_elements(dx, gc);
    return std::vector<Tensor>{dx};
  });
  return y;
}

Tensor reduce_spatial(const char* op, const Tensor& x, bool average) {
  profiler::Scope profile_scope(op);
  check_dim(op, "x", x, 4, "(N,H,W,C)");
  check_floating(op, "x", x);
  Tensor xc = x.contiguous();
  int64_t batch = x.size(0), pixels = x.size(1) * x.size(2), channels = x.size(3);
  check(!average || pixels > 0, op, ": mean over an empty spatial extent of ", x.describe());
  double factor = average ? 1.0 / static_cast<double>(pixels) : 1.0;
  Tensor y = Tensor::empty({batch, 1, 1, channels}, x.dtype(), x.device());
  dispatch(op, x, [&](auto tag, const auto& backend) {
    using T = decltype(tag);
    sum_spatial(y.data<T>(), xc.data<T>(), batch, pixels, channels, factor, backend);
  });
  count_elements(xc, y);
  autograd::record(op, y, {x}, [op, factor, shape = x.shape()](const Tensor& g, const std::vector<bool>&) {
    profiler::Scope backward_scope(op, profiler::Phase::backward);
    Tensor gc = g.contiguous();
    Tensor dx = Tensor::empty(shape, g.dtype(), g.device());
    dispatch("reduce_spatial backward", g, [&](auto tag, const auto& backend) {
      using T = decltype(tag);
      broadcast_spatial(dx.data<T>(), gc.data<T>(), static_cast<T>(factor), shape[0], shape[1] * shape[2], shape[3],
                        backend);
    });
    count_elements(dx, gc);
    return std::vector<Tensor>{dx};
  });
  return y;
}

Tensor reduce_channels(const char* op, const Tensor& x, bool average) {
  profiler::Scope profile_scope(op);
  check_floating(op, "x", x);
  check(x.dim() >= 1, op, ": expected x with a channel dimension, got ", x.describe());
  Tensor xc = x.contiguous();
  int64_t channels = x.size(-1);
  check(!average || channels > 0, op, ": mean over zero channels of ", x.describe());
  int64_t rows = channels > 0 ? x.numel() / channels : 0;
  double factor = average ? 1.0 / static_cast<double>(channels) : 1.0;
  Shape out_shape = x.shape();
  out_shape.back() = 1;
  Tensor y = Tensor::empty(out_shape, x.dtype(), x.device());
  dispatch(op, x, [&](auto tag, const auto& backend) {
    using T = decltype(tag);
    sum_channels(y.data<T>(), xc.data<T>(), rows, channels, factor, backend);
  });
  count_elements(xc, y);
  autograd::record(op, y, {x}, [op, factor, shape = x.shape()](const Tensor& g, const std::vector<bool>&) {
    profiler::Scope backward_scope(op, profiler::Phase::backward);
    Tensor gc = g.contiguous();
    Tensor dx = Tensor::empty(shape, g.dtype(), g.device());
    int64_t c = shape.back();
    dispatch("reduce_channels backward", g, [&](auto tag, const auto& backend) {
      using T = decltype(tag);
      broadcast_channels(dx.data<T>(), gc.data<T>(), static_cast<T>(factor), gc.numel(), c, backend);
    });
    count_elements(dx, gc);
    return std::vector<Tensor>{dx};
  });
  return y;
}

}  // namespace

Tensor sum(const Tensor& x) { return reduce_all("sum", x, false); }
Tensor mean(const Tensor& x) { return reduce_all("mean", x, true); }
Tensor sum_spatial(const Tensor& x) { return reduce_spatial("sum_spatial", x, false); }
Tensor mean_spatial(const Tensor& x) { return reduce_spatial("mean_spatial", x, true); }
Tensor sum_channels(const Tensor& x) { return reduce_channels("sum_channels", x, false); }
Tensor mean_channels(const Tensor& x) { return reduce_channels("mean_channels", x, true); }

}  // namespace strata
