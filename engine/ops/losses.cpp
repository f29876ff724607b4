#include "engine/ops/losses.h"

#include <limits>

#include "engine/autograd.h"
#include "engine/dispatch.h"
#include "engine/profiler.h"
#include "kernels/cpu/losses.h"

namespace strata {

namespace kc = kernels::cpu;

namespace {

const char* reduction_name(Reduction reduction) {
  switch (reduction) {
    case Reduction::none: return "none";
    case Reduction::sum: return "sum";
    case Reduction::mean_valid: return "mean_valid";
    case Reduction::mean_all: return "mean_all";
  }
  return "invalid";
}

bool is_label_dtype(DType dtype) { return dtype == DType::u8 || dtype == DType::i32 || dtype == DType::i64; }

template <class F>
decltype(auto) visit_label(const char* op, DType dtype, F&& f) {
  switch (dtype) {
    case DType::u8: return f(uint8_t{});
    case DType::i32: return f(int32_t{});
    case DType::i64: return f(int64_t{});
    default: break;
  }
  throw Error(cat(op, ": labels must be u8, i32 or i64, got ", dtype_name(dtype)));
}

// scores: (N,H,W,C) or (N,C); labels: the scores' shape without C.
void check_labelled(const char* op, const char* role, const Tensor& scores, const Tensor& labels) {
  check_floating(op, role, scores);
  check(scores.dim() == 4 || scores.dim() == 2, op, ": expected ", role, " of rank 4 (N,H,W,C) or rank 2 (N,C), got ",
        scores.describe());
  check(scores.size(-1) >= 1, op, ": ", role, " ", scores.describe(), " has no class channel (C = 0)");
  check_defined(op, "labels", labels);
  check(is_label_dtype(labels.dtype()), op, ": expected labels of dtype u8, i32 or i64, got ", labels.describe());
  Shape expected(scores.shape().begin(), scores.shape().end() - 1);
  check(labels.shape() == expected, op, ": ", role, " is ", scores.describe(), " but labels are ", labels.describe(),
        "; expected labels of shape ", shape_str(expected), scores.dim() == 4 ? " (N,H,W)" : " (N)");
  check_same_device(op, scores, role, labels, "labels");
  check_cpu(op, scores);
}

// "(n=1, h=2, w=0)" for (N,H,W) labels, "(n=3)" for (N) labels.
std::string label_position(const Shape& shape, int64_t flat) {
  if (shape.size() == 1) return cat("(n=", flat, ")");
  int64_t w = flat % shape[2], h = (flat / shape[2]) % shape[1], n = flat / (shape[1] * shape[2]);
  return cat("(n=", n, ", h=", h, ", w=", w, ")");
}

// Throws naming the first label that is neither ignore_index nor a class in [0, C).
void check_label_values(const char* op, const Tensor& labels, int64_t channels, int64_t ignore_index) {
  visit_label(op, labels.dtype(), [&](auto tag) {
    using L = decltype(tag);
    const L* data = labels.data<L>();
    int64_t bad = kc::first_invalid_label_cpu(data, labels.numel(), channels, ignore_index);
    if (bad < 0) return;
    throw Error(cat(op, ": label ", static_cast<int64_t>(data[bad]), " at ", label_position(labels.shape(), bad),
                    " of labels ", labels.describe(), " is outside [0, ", channels, ") and is not ignore_index ",
                    ignore_index));
  });
}

void check_elementwise(const char* op, const Tensor& a, const char* role_a, const Tensor& b, const char* role_b,
                       Reduction reduction) {
  check_floating(op, role_a, a);
  check_floating(op, role_b, b);
  check_same_dtype(op, a, role_a, b, role_b);
  check_same_device(op, a, role_a, b, role_b);
  check_same_shape(op, a, role_a, b, role_b);
  check_cpu(op, a);
  check(reduction != Reduction::mean_valid, op, ": reduction ", reduction_name(reduction),
        " divides by the non-ignored pixels, but ", op,
        " has no ignore index; use none, sum or mean_all (PyTorch's 'mean')");
}

// The factor a reduced loss applies to its sum (and its gradient to every element):
// sum -> 1, mean_valid -> 1/valid, mean_all -> 1/count; 0/0 is NaN, as in PyTorch.
double reduction_factor(Reduction reduction, int64_t valid, int64_t count) {
  auto inverse = [](int64_t n) {
    return n > 0 ? 1.0 / static_cast<double>(n) : std::numeric_limits<double>::quiet_NaN();
  };
  switch (reduction) {
    case Reduction::mean_valid: return inverse(valid);
    case Reduction::mean_all: return inverse(count);
    default: return 1.0;
  }
}

// The loss tensor: the per-element losses for none, else the scalar sum * factor.
Tensor loss_output(Reduction reduction, const Tensor& per_element, double sum, double factor, DType dtype) {
  if (reduction == Reduction::none) return per_element;
  return Tensor::scalar(sum * factor, dtype);
}

// Per-element upstream gradients (reduction none) or one scale for every element.
struct UpstreamGradient {
  Tensor per_element;  // contiguous, or undefined
  double scale = 1.0;
};

UpstreamGradient upstream(Reduction reduction, const Tensor& g, double factor) {
  if (reduction == Reduction::none) return {g.contiguous(), 1.0};
  return {Tensor(), g.item() * factor};
}

template <class T>
const T* data_or_null(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

template <class T>
T* data_or_null(Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

}  // namespace

Tensor cross_entropy(const Tensor& logits, const Tensor& labels, Reduction reduction, int64_t ignore_index) {
  const char* op = "cross_entropy";
  profiler::Scope profile_scope(op);
  check_labelled(op, "logits", logits, labels);
  int64_t channels = logits.size(-1), pixels = labels.numel();
  Tensor xc = logits.contiguous(), lc = labels.contiguous();
  check_label_values(op, lc, channels, ignore_index);
  Tensor per_pixel =
      reduction == Reduction::none ? Tensor::empty(labels.shape(), logits.dtype(), logits.device()) : Tensor();
  // Two values per pixel (max and log-sum of the logsumexp) instead of a softmax of the logits' size:
  // backward recomputes the softmax from the logits, which are usually kept alive anyway.
  Tensor lse =
      autograd::any_requires_grad({logits}) ? Tensor::empty({pixels, 2}, logits.dtype(), logits.device()) : Tensor();
  kc::LabelledLossSum total;
  visit_floating(op, logits.dtype(), [&](auto tag) {
    using T = decltype(tag);
    visit_label(op, lc.dtype(), [&](auto label_tag) {
      using L = decltype(label_tag);
      total = kc::cross_entropy_cpu(data_or_null<T>(per_pixel), data_or_null<T>(lse), xc.data<T>(), lc.data<L>(),
                                    pixels, channels, ignore_index);
    });
  });
  double factor = reduction_factor(reduction, total.valid, pixels);
  Tensor y = loss_output(reduction, per_pixel, total.sum, factor, logits.dtype());
  autograd::record(
      op, y, {logits},
      [reduction, factor, ignore_index, pixels, channels, x_saved = autograd::save(xc), lse_saved = autograd::save(lse),
       labels_saved = autograd::save(lc)](const Tensor& g, const std::vector<bool>&) {
        profiler::Scope backward_scope("cross_entropy", profiler::Phase::backward);
        UpstreamGradient up = upstream(reduction, g, factor);
        Tensor dx = Tensor::empty(x_saved.shape(), x_saved.dtype(), x_saved.device());
        visit_floating("cross_entropy backward", x_saved.dtype(), [&](auto tag) {
          using T = decltype(tag);
          visit_label("cross_entropy backward", labels_saved.dtype(), [&](auto label_tag) {
            using L = decltype(label_tag);
            kc::cross_entropy_backward_cpu(dx.data<T>(), data_or_null<T>(up.per_element), static_cast<T>(up.scale),
                                           x_saved.data<T>(), lse_saved.data<T>(), labels_saved.data<L>(), pixels,
                                           channels, ignore_index);
          });
        });
        return std::vector<Tensor>{dx};
      });
  return y;
}

Tensor nll(const Tensor& log_probs, const Tensor& labels, Reduction reduction, int64_t ignore_index) {
  const char* op = "nll";
  profiler::Scope profile_scope(op);
  check_labelled(op, "log_probs", log_probs, labels);
  int64_t channels = log_probs.size(-1), pixels = labels.numel();
  Tensor xc = log_probs.contiguous(), lc = labels.contiguous();
  check_label_values(op, lc, channels, ignore_index);
  Tensor per_pixel =
      reduction == Reduction::none ? Tensor::empty(labels.shape(), log_probs.dtype(), log_probs.device()) : Tensor();
  kc::LabelledLossSum total;
  visit_floating(op, log_probs.dtype(), [&](auto tag) {
    using T = decltype(tag);
    visit_label(op, lc.dtype(), [&](auto label_tag) {
      using L = decltype(label_tag);
      total = kc::nll_cpu(data_or_null<T>(per_pixel), xc.data<T>(), lc.data<L>(), pixels, channels, ignore_index);
    });
  });
  double factor = reduction_factor(reduction, total.valid, pixels);
  Tensor y = loss_output(reduction, per_pixel, total.sum, factor, log_probs.dtype());
  // The gradient is -w at each pixel's label: only the labels are kept, not the log-probabilities.
  autograd::record(
      op, y, {log_probs},
      [reduction, factor, ignore_index, pixels, channels, shape = log_probs.shape(), dtype = log_probs.dtype(),
       labels_saved = autograd::save(lc)](const Tensor& g, const std::vector<bool>&) {
        profiler::Scope backward_scope("nll", profiler::Phase::backward);
        UpstreamGradient up = upstream(reduction, g, factor);
        Tensor dx = Tensor::empty(shape, dtype, labels_saved.device());
        visit_floating("nll backward", dtype, [&](auto tag) {
          using T = decltype(tag);
          visit_label("nll backward", labels_saved.dtype(), [&](auto label_tag) {
            using L = decltype(label_tag);
            kc::nll_backward_cpu(dx.data<T>(), data_or_null<T>(up.per_element), static_cast<T>(up.scale),
                                 labels_saved.data<L>(), pixels, channels, ignore_index);
          });
        });
        return std::vector<Tensor>{dx};
      });
  return y;
}

namespace {

// A loss of two same-shape differentiable inputs computed element by element (bce_with_logits,
// mse): `forward(per_element_or_null, a, b, n)` returns the sum, `backward(da, db, g_per_element,
// g_scale, a, b, n)` writes the gradients that are not null.
template <class Forward, class Backward>
Tensor elementwise_loss(const char* op, const Tensor& a, const char* role_a, const Tensor& b, const char* role_b,
                        Reduction reduction, Forward forward, Backward backward) {
  profiler::Scope profile_scope(op);
  check_elementwise(op, a, role_a, b, role_b, reduction);
  int64_t n = a.numel();
  Tensor ac = a.contiguous(), bc = b.contiguous();
  Tensor per_element = reduction == Reduction::none ? Tensor::empty(a.shape(), a.dtype(), a.device()) : Tensor();
  double total = 0;
  visit_floating(op, a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    total = forward(data_or_null<T>(per_element), ac.data<T>(), bc.data<T>(), n);
  });
  double factor = reduction_factor(reduction, n, n);
  Tensor y = loss_output(reduction, per_element, total, factor, a.dtype());
  autograd::record(op, y, {a, b},
                   [op, reduction, factor, n, backward, a_saved = autograd::save(ac), b_saved = autograd::save(bc)](
                       const Tensor& g, const std::vector<bool>& needs) {
                     profiler::Scope backward_scope(op, profiler::Phase::backward);
                     UpstreamGradient up = upstream(reduction, g, factor);
                     Tensor da = needs[0] ? Tensor::empty(a_saved.shape(), a_saved.dtype(), a_saved.device()) : Tensor();
                     Tensor db = needs[1] ? Tensor::empty(b_saved.shape(), b_saved.dtype(), b_saved.device()) : Tensor();
                     visit_floating(op, a_saved.dtype(), [&](auto tag) {
                       using T = decltype(tag);
                       backward(data_or_null<T>(da), data_or_null<T>(db), data_or_null<T>(up.per_element),
                                static_cast<T>(up.scale), a_saved.data<T>(), b_saved.data<T>(), n);
                     });
                     return std::vector<Tensor>{da, db};
                   });
  return y;
}

}  // namespace

Tensor bce_with_logits(const Tensor& logits, const Tensor& targets, Reduction reduction) {
  return elementwise_loss(
      "bce_with_logits", logits, "logits", targets, "targets", reduction,
      [](auto... args) { return kc::bce_with_logits_cpu(args...); },
      [](auto... args) { kc::bce_with_logits_backward_cpu(args...); });
}

Tensor mse(const Tensor& a, const Tensor& b, Reduction reduction) {
  return elementwise_loss(
      "mse", a, "a", b, "b", reduction, [](auto... args) { return kc::mse_cpu(args...); },
      [](auto... args) { kc::mse_backward_cpu(args...); });
}

}  // namespace strata
