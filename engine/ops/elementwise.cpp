#include "engine/ops/elementwise.h"

#include "engine/autograd.h"
#include "engine/ops/device_dispatch.h"
#include "engine/profiler.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/reduce.h"
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/reduce.h"

namespace strata {

namespace {

enum class Broadcast { none, channel, spatial };

void check_unary(const char* op, const Tensor& x) { check_floating(op, "x", x); }

Broadcast classify(const char* op, const Tensor& a, const Tensor& b) {
  check_floating(op, "a", a);
  check_floating(op, "b", b);
  check_same_dtype(op, a, "a", b, "b");
  check_same_device(op, a, "a", b, "b");
  if (a.shape() == b.shape()) return Broadcast::none;
  if (a.dim() >= 1 && b.dim() == 1 && b.size(0) == a.size(-1)) return Broadcast::channel;
  if (a.dim() == 4 && b.dim() == 4 && b.size(0) == a.size(0) && b.size(1) == 1 && b.size(2) == 1 &&
      b.size(3) == a.size(3)) {
    return Broadcast::spatial;
  }
  throw Error(cat(op, ": cannot combine a ", a.describe(), " with b ", b.describe(),
                  "; b must have a's shape, (C) or (N,1,1,C)"));
}

// Sums a gradient of a's shape down to b's broadcast shape: per-channel sums over all rows, or
// over each sample's pixels.
Tensor reduce_to(const Tensor& grad, Broadcast kind, const Shape& b_shape) {
  if (kind == Broadcast::none) return grad;
  Tensor g = grad.contiguous();
  Tensor out = Tensor::empty(b_shape, g.dtype(), g.device());
  profiler::count(static_cast<double>(g.numel()),
                  static_cast<double>(g.numel() + out.numel()) * static_cast<double>(dtype_size(g.dtype())));
  int64_t channels = g.size(-1);
  int64_t groups = kind == Broadcast::channel ? 1 : g.size(0);
  int64_t rows = channels > 0 ? g.numel() / channels / groups : 0;
  dispatch("reduce_to", g, [&](auto tag, const auto& backend) {
    using T = decltype(tag);
    for (int64_t n = 0; n < groups; ++n) {
      sum_rows(out.data<T>() + n * channels, g.data<T>() + n * rows * channels, rows, channels, backend);
    }
  });
  return out;
}

// profiler::count for an op of x's size: `flops` per element and `tensors` tensors of that size read
// or written once.
void count_unary(const Tensor& x, double flops, double tensors) {
  const double n = static_cast<double>(x.numel());
  profiler::count(n * flops, n * tensors * static_cast<double>(dtype_size(x.dtype())));
}

enum class BinaryOp { add, mul };

// y = a (op) b with b broadcast as classified, on a's device.
Tensor binary(const char* op, BinaryOp kind_of_op, const Tensor& a, const Tensor& b, Broadcast kind) {
  Tensor ac = a.contiguous(), bc = b.contiguous();
  Tensor y = Tensor::empty(a.shape(), a.dtype(), a.device());
  const int64_t channels = a.dim() > 0 ? a.size(-1) : 1;
  const int64_t rows = channels > 0 ? a.numel() / channels : 0;
  const int64_t batch = a.dim() == 4 ? a.size(0) : 1, pixels = a.dim() == 4 ? a.size(1) * a.size(2) : 1;
  const bool is_add = kind_of_op == BinaryOp::add;
  profiler::count(static_cast<double>(a.numel()),
                  static_cast<double>(2 * a.numel() + b.numel()) * static_cast<double>(dtype_size(a.dtype())));
  dispatch(op, a, [&](auto tag, const auto& backend) {
    using T = decltype(tag);
    T* yp = y.data<T>();
    const T *ap = ac.data<T>(), *bp = bc.data<T>();
    switch (kind) {
      case Broadcast::none: is_add ? add(yp, ap, bp, a.numel(), backend) : mul(yp, ap, bp, a.numel(), backend); break;
      case Broadcast::channel:
        is_add ? add_channel(yp, ap, bp, rows, channels, backend) : mul_channel(yp, ap, bp, rows, channels, backend);
        break;
      case Broadcast::spatial:
        is_add ? add_spatial(yp, ap, bp, batch, pixels, channels, backend)
               : mul_spatial(yp, ap, bp, batch, pixels, channels, backend);
        break;
    }
  });
  return y;
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
  profiler::Scope profile_scope("add");
  Broadcast kind = classify("add", a, b);
  Tensor y = binary("add", BinaryOp::add, a, b, kind);
  autograd::record("add", y, {a, b}, [kind, b_shape = b.shape()](const Tensor& g, const std::vector<bool>& needs) {
    profiler::Scope backward_scope("add", profiler::Phase::backward);
    return std::vector<Tensor>{needs[0] ? g : Tensor(), needs[1] ? reduce_to(g, kind, b_shape) : Tensor()};
  });
  return y;
}

// Not on a hot path: composed from scale and add, which also record its gradient.
Tensor sub(const Tensor& a, const Tensor& b) {
  profiler::Scope profile_scope("sub");
  classify("sub", a, b);
  return add(a, scale(b, -1.0));
}

Tensor mul(const Tensor& a, const Tensor& b) {
  profiler::Scope profile_scope("mul");
  Broadcast kind = classify("mul", a, b);
  Tensor y = binary("mul", BinaryOp::mul, a, b, kind);
  autograd::record("mul", y, {a, b},
                   [kind, a_saved = autograd::save(a), b_saved = autograd::save(b), b_shape = b.shape()](
                       const Tensor& g, const std::vector<bool>& needs) {
                     profiler::Scope backward_scope("mul", profiler::Phase::backward);
                     Tensor ga = needs[0] ? mul(g, b_saved) : Tensor();
                     Tensor gb = needs[1] ? reduce_to(mul(g, a_saved), kind, b_shape) : Tensor();
                     return std::vector<Tensor>{ga, gb};
                   });
  return y;
}

Tensor scale(const Tensor& x, double s) {
  profiler::Scope profile_scope("scale");
  check_unary("scale", x);
  Tensor xc = x.contiguous();
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  dispatch("scale", x, [&](auto tag, const auto& backend) {
    using T = decltype(tag);
    scale(y.data<T>(), xc.data<T>(), static_cast<T>(s), x.numel(), backend);
  });
  count_unary(x, 1, 2);
  autograd::record("scale", y, {x}, [s](const Tensor& g, const std::vector<bool>&) {
    profiler::Scope backward_scope("scale", profiler::Phase::backward);
    return std::vector<Tensor>{scale(g, s)};
  });
  return y;
}

Tensor square(const Tensor& x) {
  profiler::Scope profile_scope("square");
  check_unary("square", x);
  Tensor xc = x.contiguous();
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  dispatch("square", x, [&](auto tag, const auto& backend) {
    using T = decltype(tag);
    square(y.data<T>(), xc.data<T>(), x.numel(), backend);
  });
  count_unary(x, 1, 2);
  autograd::record("square", y, {x}, [x_saved = autograd::save(xc)](const Tensor& g, const std::vector<bool>&) {
    profiler::Scope backward_scope("square", profiler::Phase::backward);
    Tensor gc = g.contiguous();
    Tensor dx = Tensor::empty(x_saved.shape(), x_saved.dtype(), x_saved.device());
    dispatch("square backward", x_saved, [&](auto tag, const auto& backend) {
      using T = decltype(tag);
      square_backward(dx.data<T>(), gc.data<T>(), x_saved.data<T>(), dx.numel(), backend);
    });
    count_unary(dx, 2, 3);
    return std::vector<Tensor>{dx};
  });
  return y;
}

Tensor pow(const Tensor& x, double p) {
  profiler::Scope profile_scope("pow");
  check_unary("pow", x);
  Tensor xc = x.contiguous();
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  dispatch("pow", x, [&](auto tag, const auto& backend) {
    using T = decltype(tag);
    pow(y.data<T>(), xc.data<T>(), static_cast<T>(p), x.numel(), backend);
  });
  count_unary(x, 1, 2);
  autograd::record("pow", y, {x}, [p, x_saved = autograd::save(xc)](const Tensor& g, const std::vector<bool>&) {
    profiler::Scope backward_scope("pow", profiler::Phase::backward);
    Tensor gc = g.contiguous();
    Tensor dx = Tensor::empty(x_saved.shape(), x_saved.dtype(), x_saved.device());
    dispatch("pow backward", x_saved, [&](auto tag, const auto& backend) {
      using T = decltype(tag);
      pow_backward(dx.data<T>(), gc.data<T>(), x_saved.data<T>(), static_cast<T>(p), dx.numel(), backend);
    });
    count_unary(dx, 3, 3);
    return std::vector<Tensor>{dx};
  });
  return y;
}

Tensor leaky_relu(const Tensor& x, double negative_slope) {
  const char* op = negative_slope == 0.0 ? "relu" : "leaky_relu";
  profiler::Scope profile_scope(op);
  check_unary(op, x);
  check(negative_slope >= 0.0, op, ": negative_slope must be >= 0 (the backward reads the output), got ",
        negative_slope);
  Tensor xc = x.contiguous();
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  dispatch(op, x, [&](auto tag, const auto& backend) {
    using T = decltype(tag);
    leaky_relu(y.data<T>(), xc.data<T>(), static_cast<T>(negative_slope), x.numel(), backend);
  });
  count_unary(x, 1, 2);
  // Saves the output, not the input: the input can be freed as soon as its producer is done.
  autograd::record(op, y, {x},
                   [op, negative_slope, y_saved = autograd::save(y)](const Tensor& g, const std::vector<bool>&) {
                     profiler::Scope backward_scope(op, profiler::Phase::backward);
                     Tensor gc = g.contiguous();
                     Tensor dx = Tensor::empty(y_saved.shape(), y_saved.dtype(), y_saved.device());
                     dispatch("leaky_relu backward", gc, [&](auto tag, const auto& backend) {
                       using T = decltype(tag);
                       leaky_relu_backward(dx.data<T>(), gc.data<T>(), y_saved.data<T>(),
                                           static_cast<T>(negative_slope), dx.numel(), backend);
                     });
                     count_unary(dx, 1, 3);
                     return std::vector<Tensor>{dx};
                   });
  return y;
}

Tensor relu(const Tensor& x) { return leaky_relu(x, 0.0); }

Tensor sigmoid(const Tensor& x) {
  const char* op = "sigmoid";
  profiler::Scope profile_scope(op);
  check_unary(op, x);
  Tensor xc = x.contiguous();
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  dispatch(op, x, [&](auto tag, const auto& backend) {
    using T = decltype(tag);
    sigmoid(y.data<T>(), xc.data<T>(), x.numel(), backend);
  });
  count_unary(x, 4, 2);
  // dx = dy y (1 - y): the output is all the backward needs.
  autograd::record(op, y, {x}, [y_saved = autograd::save(y)](const Tensor& g, const std::vector<bool>&) {
    profiler::Scope backward_scope("sigmoid", profiler::Phase::backward);
    Tensor gc = g.contiguous();
    Tensor dx = Tensor::empty(y_saved.shape(), y_saved.dtype(), y_saved.device());
    dispatch("sigmoid backward", gc, [&](auto tag, const auto& backend) {
      using T = decltype(tag);
      sigmoid_backward(dx.data<T>(), gc.data<T>(), y_saved.data<T>(), dx.numel(), backend);
    });
    count_unary(dx, 3, 3);
    return std::vector<Tensor>{dx};
  });
  return y;
}

namespace {

// abs, log and clamp: one kernel pair (kernels/common/unary_math.h); the backward reads the input.
Tensor unary_math_op(const char* op, kernels::common::UnaryMath kind, const Tensor& x, double lo, double hi) {
  profiler::Scope profile_scope(op);
  check_unary(op, x);
  Tensor xc = x.contiguous();
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  dispatch(op, x, [&](auto tag, const auto& backend) {
    using T = decltype(tag);
    unary_math(y.data<T>(), xc.data<T>(), kind, static_cast<T>(lo), static_cast<T>(hi), x.numel(), backend);
  });
  count_unary(x, 1, 2);
  autograd::record(op, y, {x},
                   [op, kind, lo, hi, x_saved = autograd::save(xc)](const Tensor& g, const std::vector<bool>&) {
                     profiler::Scope backward_scope(op, profiler::Phase::backward);
                     Tensor gc = g.contiguous();
                     Tensor dx = Tensor::empty(x_saved.shape(), x_saved.dtype(), x_saved.device());
                     dispatch(op, x_saved, [&](auto tag, const auto& backend) {
                       using T = decltype(tag);
                       unary_math_backward(dx.data<T>(), gc.data<T>(), x_saved.data<T>(), kind, static_cast<T>(lo),
                                           static_cast<T>(hi), dx.numel(), backend);
                     });
                     count_unary(dx, 1, 3);
                     return std::vector<Tensor>{dx};
                   });
  return y;
}

}  // namespace

Tensor abs(const Tensor& x) { return unary_math_op("abs", kernels::common::UnaryMath::abs, x, 0, 0); }

Tensor log(const Tensor& x) { return unary_math_op("log", kernels::common::UnaryMath::log, x, 0, 0); }

Tensor clamp(const Tensor& x, double lo, double hi) {
  check(lo <= hi, "clamp: expected lo <= hi, got lo ", lo, ", hi ", hi);
  return unary_math_op("clamp", kernels::common::UnaryMath::clamp, x, lo, hi);
}

}  // namespace strata
