#include "engine/ops/softmax.h"

#include "engine/autograd.h"
#include "engine/dispatch.h"
#include "engine/ops/device_dispatch.h"
#include "engine/profiler.h"
#include "kernels/cpu/softmax.h"
#include "kernels/cuda/softmax.h"

namespace strata {

namespace {

// Validates x: (..., C) with C >= 1 and returns C.
int64_t check_channels(const char* op, const Tensor& x) {
  check_floating(op, "x", x);
  check(x.dim() >= 1 && x.size(-1) >= 1, op, ": expected x of shape (..., C) with C >= 1 channels, got ", x.describe());
  return x.size(-1);
}

// softmax (kLog false) and log_softmax (kLog true): same shapes, and both backward passes read only
// the output.
template <bool kLog>
Tensor normalize(const char* op, const Tensor& x) {
  profiler::Scope profile_scope(op);
  int64_t channels = check_channels(op, x);
  int64_t pixels = x.numel() / channels;
  Tensor xc = x.contiguous();
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  dispatch(op, x, [&](auto tag, const auto& backend) {
    using T = decltype(tag);
    if constexpr (kLog) {
      log_softmax(y.data<T>(), xc.data<T>(), pixels, channels, backend);
    } else {
      softmax(y.data<T>(), xc.data<T>(), pixels, channels, backend);
    }
  });
  // Per element: max, subtract, exp, sum, then divide (or subtract the log-sum).
  profiler::count(5 * static_cast<double>(x.numel()),
                  2 * static_cast<double>(x.numel()) * static_cast<double>(dtype_size(x.dtype())));
  // Saves the output, not the input: the input can be freed as soon as its producer is done.
  autograd::record(op, y, {x}, [op, pixels, channels, y_saved = autograd::save(y)](const Tensor& g,
                                                                                   const std::vector<bool>&) {
    profiler::Scope backward_scope(op, profiler::Phase::backward);
    Tensor gc = g.contiguous();
    Tensor dx = Tensor::empty(y_saved.shape(), y_saved.dtype(), y_saved.device());
    dispatch(op, y_saved, [&](auto tag, const auto& backend) {
      using T = decltype(tag);
      if constexpr (kLog) {
        log_softmax_backward(dx.data<T>(), gc.data<T>(), y_saved.data<T>(), pixels, channels, backend);
      } else {
        softmax_backward(dx.data<T>(), gc.data<T>(), y_saved.data<T>(), pixels, channels, backend);
      }
    });
    // A per-pixel sum over dy (and y), then dx from dy and y.
    const double n = static_cast<double>(dx.numel());
    profiler::count(4 * n, 4 * n * static_cast<double>(dtype_size(dx.dtype())));
    return std::vector<Tensor>{dx};
  });
  return y;
}

}  // namespace

Tensor softmax(const Tensor& x) { return normalize<false>("softmax", x); }

Tensor log_softmax(const Tensor& x) { return normalize<true>("log_softmax", x); }

Tensor logsumexp(const Tensor& x, int64_t begin, int64_t end) {
  const char* op = "logsumexp";
  profiler::Scope profile_scope(op);
  check_floating(op, "x", x);
  check(x.dim() >= 1, op, ": expected x of shape (..., C), got ", x.describe());
  int64_t channels = x.size(-1);
  check(0 <= begin && begin < end && end <= channels, op, ": channel range [", begin, ", ", end, ") of x ",
        x.describe(), " is invalid; expected 0 <= begin < end <= C = ", channels);
  int64_t pixels = x.numel() / channels;
  Tensor xc = x.contiguous();
  Shape out_shape = x.shape();
  out_shape.back() = 1;
  Tensor y = Tensor::empty(out_shape, x.dtype(), x.device());
  dispatch(op, x, [&](auto tag, const auto& backend) {
    using T = decltype(tag);
    logsumexp(y.data<T>(), xc.data<T>(), pixels, channels, begin, end, backend);
  });
  {
    const double read = static_cast<double>(pixels * (end - begin));
    profiler::count(3 * read, (read + static_cast<double>(pixels)) * static_cast<double>(dtype_size(x.dtype())));
  }
  autograd::record(op, y, {x},
                   [begin, end, pixels, channels, x_saved = autograd::save(xc), y_saved = autograd::save(y)](
                       const Tensor& g, const std::vector<bool>&) {
                     profiler::Scope backward_scope("logsumexp", profiler::Phase::backward);
                     Tensor gc = g.contiguous();
                     Tensor dx = Tensor::empty(x_saved.shape(), x_saved.dtype(), x_saved.device());
                     dispatch("logsumexp backward", x_saved, [&](auto tag, const auto& backend) {
                       using T = decltype(tag);
                       logsumexp_backward(dx.data<T>(), gc.data<T>(), x_saved.data<T>(), y_saved.data<T>(), pixels,
                                          channels, begin, end, backend);
                     });
                     const double n = static_cast<double>(dx.numel()), p = static_cast<double>(pixels);
                     profiler::count(3 * n, (2 * n + 2 * p) * static_cast<double>(dtype_size(dx.dtype())));
                     return std::vector<Tensor>{dx};
                   });
  return y;
}

}  // namespace strata
