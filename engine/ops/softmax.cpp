#include "engine/ops/softmax.h"

#include "engine/autograd.h"
#include "engine/dispatch.h"
#include "engine/profiler.h"
#include "kernels/cpu/softmax.h"

namespace strata {

namespace kc = kernels::cpu;

namespace {

// Validates x: (..., C) with C >= 1 and returns C.
int64_t check_channels(const char* op, const Tensor& x) {
  check_floating(op, "x", x);
  check(x.dim() >= 1 && x.size(-1) >= 1, op, ": expected x of shape (..., C) with C >= 1 channels, got ", x.describe());
  check_cpu(op, x);
  return x.size(-1);
}

// softmax and log_softmax: same shapes, and both backward passes read only the output.
template <class Forward, class Backward>
Tensor normalize(const char* op, const Tensor& x, Forward forward, Backward backward) {
  profiler::Scope profile_scope(op);
  int64_t channels = check_channels(op, x);
  int64_t pixels = x.numel() / channels;
  Tensor xc = x.contiguous();
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  visit_floating(op, x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    forward(y.data<T>(), xc.data<T>(), pixels, channels);
  });
  // Saves the output, not the input: the input can be freed as soon as its producer is done.
  autograd::record(
      op, y, {x},
      [op, backward, pixels, channels, y_saved = autograd::save(y)](const Tensor& g, const std::vector<bool>&) {
        profiler::Scope backward_scope(op, profiler::Phase::backward);
        Tensor gc = g.contiguous();
        Tensor dx = Tensor::empty(y_saved.shape(), y_saved.dtype(), y_saved.device());
        visit_floating(op, y_saved.dtype(), [&](auto tag) {
          using T = decltype(tag);
          backward(dx.data<T>(), gc.data<T>(), y_saved.data<T>(), pixels, channels);
        });
        return std::vector<Tensor>{dx};
      });
  return y;
}

}  // namespace

Tensor softmax(const Tensor& x) {
  return normalize(
      "softmax", x, [](auto... args) { kc::softmax_cpu(args...); },
      [](auto... args) { kc::softmax_backward_cpu(args...); });
}

Tensor log_softmax(const Tensor& x) {
  return normalize(
      "log_softmax", x, [](auto... args) { kc::log_softmax_cpu(args...); },
      [](auto... args) { kc::log_softmax_backward_cpu(args...); });
}

Tensor logsumexp(const Tensor& x, int64_t begin, int64_t end) {
  const char* op = "logsumexp";
  profiler::Scope profile_scope(op);
  check_floating(op, "x", x);
  check(x.dim() >= 1, op, ": expected x of shape (..., C), got ", x.describe());
  int64_t channels = x.size(-1);
  check(0 <= begin && begin < end && end <= channels, op, ": channel range [", begin, ", ", end, ") of x ",
        x.describe(), " is invalid; expected 0 <= begin < end <= C = ", channels);
  check_cpu(op, x);
  int64_t pixels = x.numel() / channels;
  Tensor xc = x.contiguous();
  Shape out_shape = x.shape();
  out_shape.back() = 1;
  Tensor y = Tensor::empty(out_shape, x.dtype(), x.device());
  visit_floating(op, x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    kc::logsumexp_cpu(y.data<T>(), xc.data<T>(), pixels, channels, begin, end);
  });
  autograd::record(op, y, {x},
                   [begin, end, pixels, channels, x_saved = autograd::save(xc), y_saved = autograd::save(y)](
                       const Tensor& g, const std::vector<bool>&) {
                     profiler::Scope backward_scope("logsumexp", profiler::Phase::backward);
                     Tensor gc = g.contiguous();
                     Tensor dx = Tensor::empty(x_saved.shape(), x_saved.dtype(), x_saved.device());
                     visit_floating("logsumexp backward", x_saved.dtype(), [&](auto tag) {
                       using T = decltype(tag);
                       kc::logsumexp_backward_cpu(dx.data<T>(), gc.data<T>(), x_saved.data<T>(), y_saved.data<T>(),
                                                  pixels, channels, begin, end);
                     });
                     return std::vector<Tensor>{dx};
                   });
  return y;
}

}  // namespace strata
