// Losses: argument checks, one kernel call per pass for both backends (kernels/cpu/losses.h,
// kernels/cuda/losses.h, same contract), and the autograd nodes.
//
// Nothing here reads a device value on the host. A reduced loss is a scalar the forward kernel
// writes on the loss's device; its backward kernel reads the upstream gradient from there, and for a
// mean over valid pixels their count from the label statistics the forward kernel wrote
// (kernels/common/labels.h), which the node keeps (24 bytes). The same statistics validate the labels,
// checked in the pass that reads them: at once on the CPU, at the device's next host synchronisation
// on CUDA (engine/ops/labels.h). Copying the labels to the host instead would move the whole label
// map (0.25 to 2 MiB per 512x512 image) and make the step wait for it.
#include "engine/ops/losses.h"

#include <limits>

#include "engine/autograd.h"
#include "engine/ops/device_dispatch.h"
#include "engine/ops/labels.h"
#include "engine/profiler.h"
#include "kernels/cpu/losses.h"
#include "kernels/cuda/losses.h"

namespace strata {

namespace {

using kernels::common::LossReduction;
using kernels::common::LossUpstream;

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
}

void check_elementwise(const char* op, const Tensor& a, const char* role_a, const Tensor& b, const char* role_b,
                       Reduction reduction) {
  check_floating(op, role_a, a);
  check_floating(op, role_b, b);
  check_same_dtype(op, a, role_a, b, role_b);
  check_same_device(op, a, role_a, b, role_b);
  check_same_shape(op, a, role_a, b, role_b);
  check(reduction != Reduction::mean_valid, op, ": reduction ", to_string(reduction),
        " divides by the non-ignored pixels, but ", op,
        " has no ignore index; use none, sum or mean_all (PyTorch's 'mean')");
}

// How the kernels scale a reduced loss of `count` elements: sum -> 1, mean_all -> 1/count (0/0 is
// NaN, as in PyTorch), mean_valid -> 1/valid labels, counted by the kernels themselves.
LossReduction kernel_reduction(Reduction reduction, int64_t count) {
  LossReduction r;
  r.per_valid = reduction == Reduction::mean_valid;
  if (reduction == Reduction::mean_all) {
    r.scale = count > 0 ? 1.0 / static_cast<double>(count) : std::numeric_limits<double>::quiet_NaN();
  }
  return r;
}

// The forward's outputs: per-element losses (reduction none) or the scalar loss, on `like`'s device.
struct LossOutputs {
  Tensor per_element;
  Tensor reduced;
  const Tensor& loss() const { return per_element.defined() ? per_element : reduced; }
};

LossOutputs loss_outputs(Reduction reduction, const Shape& per_element_shape, const Tensor& like) {
  if (reduction == Reduction::none) return {Tensor::empty(per_element_shape, like.dtype(), like.device()), Tensor()};
  return {Tensor(), Tensor::empty({}, like.dtype(), like.device())};
}

template <class T>
const T* data_or_null(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

template <class T>
T* data_or_null(Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

// The upstream gradient g of the loss as the backward kernels read it (kernels/common/losses.h):
// per element for reduction none, else the scalar g on the device, with the forward's statistics.
struct Upstream {
  Tensor g;  // contiguous
  Reduction reduction;
  LossReduction scale;
  Tensor stats;  // labelled losses: the forward's label statistics

  template <class T>
  LossUpstream<T> view() const {
    LossUpstream<T> up;
    (reduction == Reduction::none ? up.dloss : up.dreduced) = g.data<T>();
    up.stats = data_or_null<int64_t>(stats);
    up.reduction = scale;
    return up;
  }
};

// What the forward of a labelled loss prepares: checked, contiguous inputs, the outputs, and the
// label statistics its kernel writes.
struct LabelledForward {
  Tensor scores, labels;  // contiguous
  int64_t pixels, channels;
  LossOutputs out;
  Tensor stats;
  LossReduction scale;
};

LabelledForward labelled_forward(const char* op, const char* role, const Tensor& scores, const Tensor& labels,
                                 Reduction reduction) {
  check_labelled(op, role, scores, labels);
  const int64_t pixels = labels.numel();
  return {scores.contiguous(),
          labels.contiguous(),
          pixels,
          scores.size(-1),
          loss_outputs(reduction, labels.shape(), scores),
          label_stats_tensor(scores.device()),
          kernel_reduction(reduction, pixels)};
}

// The work of a labelled loss for the profiler (engine/profiler.h's convention): `flops_per_value`
// per class score, the scores read once and the labels once, `written` values out.
void count_labelled(const Tensor& scores, const Tensor& labels, double flops_per_value, double written) {
  const double values = static_cast<double>(scores.numel()), element = static_cast<double>(dtype_size(scores.dtype()));
  profiler::count(flops_per_value * values,
                  values * element + static_cast<double>(labels.nbytes()) + written * element);
}

// body(T{}, L{}, backend): the scores' element type, the labels' type and the scores' backend.
template <class Body>
void dispatch_labelled(const char* op, const Tensor& scores, DType label_dtype, Body&& body) {
  dispatch(op, scores, [&](auto tag, const auto& backend) {
    visit_label(op, label_dtype, [&](auto label_tag) { body(tag, label_tag, backend); });
  });
}

}  // namespace

const char* to_string(Reduction reduction) {
  switch (reduction) {
    case Reduction::none: return "none";
    case Reduction::sum: return "sum";
    case Reduction::mean_valid: return "mean_valid";
    case Reduction::mean_all: return "mean_all";
  }
  return "invalid";
}

Tensor cross_entropy(const Tensor& logits, const Tensor& labels, Reduction reduction, int64_t ignore_index) {
  const char* op = "cross_entropy";
  profiler::Scope profile_scope(op);
  LabelledForward f = labelled_forward(op, "logits", logits, labels, reduction);
  // Per score: the max, a subtraction, an exp and a sum.
  count_labelled(f.scores, f.labels, 4, static_cast<double>(f.out.loss().numel() + 2 * f.pixels));
  const int64_t pixels = f.pixels, channels = f.channels;
  // Two values per pixel (max and log-sum of the logsumexp) instead of a softmax of the logits' size:
  // backward recomputes the softmax from the logits, which are usually kept alive anyway.
  Tensor lse =
      autograd::any_requires_grad({logits}) ? Tensor::empty({pixels, 2}, logits.dtype(), logits.device()) : Tensor();
  dispatch_labelled(op, f.scores, f.labels.dtype(), [&](auto tag, auto label_tag, const auto& backend) {
    using T = decltype(tag);
    using L = decltype(label_tag);
    cross_entropy(data_or_null<T>(f.out.per_element), data_or_null<T>(lse), data_or_null<T>(f.out.reduced),
                  f.stats.data<int64_t>(), f.scores.data<T>(), f.labels.data<L>(), pixels, channels, ignore_index,
                  f.scale, backend);
  });
  check_label_stats(op, f.stats, labels, channels, ignore_index);
  Tensor y = f.out.loss();
  autograd::record(op, y, {logits},
                   [reduction, scale = f.scale, ignore_index, pixels, channels, x_saved = autograd::save(f.scores),
                    lse_saved = autograd::save(lse), labels_saved = autograd::save(f.labels),
                    stats_saved = autograd::save(f.stats)](const Tensor& g, const std::vector<bool>&) {
                     profiler::Scope backward_scope("cross_entropy", profiler::Phase::backward);
                     // Per score: the softmax rebuilt (a subtraction, an exp) and the scale; dx written.
                     count_labelled(x_saved, labels_saved, 3, static_cast<double>(x_saved.numel()));
                     Upstream up{g.contiguous(), reduction, scale, stats_saved};
                     Tensor dx = Tensor::empty(x_saved.shape(), x_saved.dtype(), x_saved.device());
                     dispatch_labelled("cross_entropy backward", x_saved, labels_saved.dtype(),
                                       [&](auto tag, auto label_tag, const auto& backend) {
                                         using T = decltype(tag);
                                         using L = decltype(label_tag);
                                         cross_entropy_backward(dx.data<T>(), up.view<T>(), x_saved.data<T>(),
                                                                lse_saved.data<T>(), labels_saved.data<L>(), pixels,
                                                                channels, ignore_index, backend);
                                       });
                     return std::vector<Tensor>{dx};
                   });
  return y;
}

Tensor nll(const Tensor& log_probs, const Tensor& labels, Reduction reduction, int64_t ignore_index) {
  const char* op = "nll";
  profiler::Scope profile_scope(op);
  LabelledForward f = labelled_forward(op, "log_probs", log_probs, labels, reduction);
  // One log-probability read per pixel (its label's), one addition.
  profiler::count(static_cast<double>(f.pixels),
                  static_cast<double>(f.pixels * dtype_size(f.scores.dtype()) + f.labels.nbytes()));
  const int64_t pixels = f.pixels, channels = f.channels;
  dispatch_labelled(op, f.scores, f.labels.dtype(), [&](auto tag, auto label_tag, const auto& backend) {
    using T = decltype(tag);
    using L = decltype(label_tag);
    nll(data_or_null<T>(f.out.per_element), data_or_null<T>(f.out.reduced), f.stats.data<int64_t>(), f.scores.data<T>(),
        f.labels.data<L>(), pixels, channels, ignore_index, f.scale, backend);
  });
  check_label_stats(op, f.stats, labels, channels, ignore_index);
  Tensor y = f.out.loss();
  // The gradient is -w at each pixel's label: only the labels are kept, not the log-probabilities.
  autograd::record(
      op, y, {log_probs},
      [reduction, scale = f.scale, ignore_index, pixels, channels, shape = log_probs.shape(), dtype = log_probs.dtype(),
       labels_saved = autograd::save(f.labels),
       stats_saved = autograd::save(f.stats)](const Tensor& g, const std::vector<bool>&) {
        profiler::Scope backward_scope("nll", profiler::Phase::backward);
        profiler::count(static_cast<double>(pixels),
                        static_cast<double>(pixels * channels * dtype_size(dtype) + labels_saved.nbytes()));
        Upstream up{g.contiguous(), reduction, scale, stats_saved};
        Tensor dx = Tensor::empty(shape, dtype, labels_saved.device());
        dispatch_labelled("nll backward", dx, labels_saved.dtype(), [&](auto tag, auto label_tag, const auto& backend) {
          using T = decltype(tag);
          using L = decltype(label_tag);
          nll_backward(dx.data<T>(), up.view<T>(), labels_saved.data<L>(), pixels, channels, ignore_index, backend);
        });
        return std::vector<Tensor>{dx};
      });
  return y;
}

namespace {

enum class ElementwiseLoss { bce_with_logits, mse };

// A loss of two same-shape differentiable inputs computed element by element (bce_with_logits,
// mse), with gradients for both inputs.
Tensor elementwise_loss(const char* op, ElementwiseLoss kind, const Tensor& a, const char* role_a, const Tensor& b,
                        const char* role_b, Reduction reduction) {
  profiler::Scope profile_scope(op);
  check_elementwise(op, a, role_a, b, role_b, reduction);
  const int64_t n = a.numel();
  Tensor ac = a.contiguous(), bc = b.contiguous();
  LossOutputs out = loss_outputs(reduction, a.shape(), a);
  const LossReduction scale = kernel_reduction(reduction, n);
  const bool bce = kind == ElementwiseLoss::bce_with_logits;
  // bce: max, multiply-add, |x|, exp, log1p and the sum; mse: subtraction, square and sum. Both
  // inputs read, the per-element losses written when asked for.
  const double element = static_cast<double>(dtype_size(a.dtype()));
  profiler::count((bce ? 6.0 : 3.0) * static_cast<double>(n),
                  (2.0 + (reduction == Reduction::none ? 1.0 : 0.0)) * static_cast<double>(n) * element);
  dispatch(op, a, [&](auto tag, const auto& backend) {
    using T = decltype(tag);
    T* loss = data_or_null<T>(out.per_element);
    T* reduced = data_or_null<T>(out.reduced);
    if (bce) {
      bce_with_logits(loss, reduced, ac.data<T>(), bc.data<T>(), n, scale, backend);
    } else {
      mse(loss, reduced, ac.data<T>(), bc.data<T>(), n, scale, backend);
    }
  });
  Tensor y = out.loss();
  autograd::record(
      op, y, {a, b},
      [op, bce, reduction, scale, n, a_saved = autograd::save(ac), b_saved = autograd::save(bc)](
          const Tensor& g, const std::vector<bool>& needs) {
        profiler::Scope backward_scope(op, profiler::Phase::backward);
        profiler::count((bce ? 4.0 : 3.0) * static_cast<double>(n),
                        (2.0 + (needs[0] ? 1.0 : 0.0) + (needs[1] ? 1.0 : 0.0)) * static_cast<double>(n) *
                            static_cast<double>(dtype_size(a_saved.dtype())));
        Upstream up{g.contiguous(), reduction, scale, Tensor()};
        Tensor da = needs[0] ? Tensor::empty(a_saved.shape(), a_saved.dtype(), a_saved.device()) : Tensor();
        Tensor db = needs[1] ? Tensor::empty(b_saved.shape(), b_saved.dtype(), b_saved.device()) : Tensor();
        dispatch(op, a_saved, [&](auto tag, const auto& backend) {
          using T = decltype(tag);
          if (bce) {
            bce_with_logits_backward(data_or_null<T>(da), data_or_null<T>(db), up.view<T>(), a_saved.data<T>(),
                                     b_saved.data<T>(), n, backend);
          } else {
            mse_backward(data_or_null<T>(da), data_or_null<T>(db), up.view<T>(), a_saved.data<T>(), b_saved.data<T>(),
                         n, backend);
          }
        });
        return std::vector<Tensor>{da, db};
      });
  return y;
}

}  // namespace

Tensor bce_with_logits(const Tensor& logits, const Tensor& targets, Reduction reduction) {
  return elementwise_loss("bce_with_logits", ElementwiseLoss::bce_with_logits, logits, "logits", targets, "targets",
                          reduction);
}

Tensor mse(const Tensor& a, const Tensor& b, Reduction reduction) {
  return elementwise_loss("mse", ElementwiseLoss::mse, a, "a", b, "b", reduction);
}

}  // namespace strata
