// Losses: argument checks, dispatch to the CPU kernels (kernels/cpu/losses.cpp) or the CUDA kernels
// (kernels/cuda/losses.cu), and the autograd nodes.
//
// On CUDA the step stays on the device: a reduced loss is computed into a device scalar by the
// kernels, and its backward reads the upstream gradient from the device. Labels are validated by the
// loss kernel itself, in the pass that reads them anyway: it reports the number of valid pixels and
// the first invalid one, which the host reads back (16 bytes, one synchronisation per labelled loss;
// mean_valid's factor needs the valid count on the host for the backward in any case) and turns into
// the CPU's error message. Copying the labels to the host instead would move the whole label map
// (0.25 to 2 MiB per 512x512 image) and check it again on the host.
#include "engine/ops/losses.h"

#include <limits>

#include "engine/autograd.h"
#include "engine/dispatch.h"
#include "engine/ops/device_dispatch.h"
#include "engine/profiler.h"
#include "kernels/cpu/losses.h"

#if defined(STRATA_HAVE_CUDA)
#include "kernels/cuda/losses.h"
#endif

namespace strata {

namespace kc = kernels::cpu;
#if defined(STRATA_HAVE_CUDA)
namespace kcu = kernels::cuda;
#endif

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
}

// "(n=1, h=2, w=0)" for (N,H,W) labels, "(n=3)" for (N) labels.
std::string label_position(const Shape& shape, int64_t flat) {
  if (shape.size() == 1) return cat("(n=", flat, ")");
  int64_t w = flat % shape[2], h = (flat / shape[2]) % shape[1], n = flat / (shape[1] * shape[2]);
  return cat("(n=", n, ", h=", h, ", w=", w, ")");
}

[[noreturn]] void throw_invalid_label(const char* op, const Tensor& labels, int64_t bad, int64_t value,
                                      int64_t channels, int64_t ignore_index) {
  throw Error(cat(op, ": label ", value, " at ", label_position(labels.shape(), bad), " of labels ", labels.describe(),
                  " is outside [0, ", channels, ") and is not ignore_index ", ignore_index));
}

// Throws naming the first label that is neither ignore_index nor a class in [0, C) (CPU labels).
void check_label_values(const char* op, const Tensor& labels, int64_t channels, int64_t ignore_index) {
  visit_label(op, labels.dtype(), [&](auto tag) {
    using L = decltype(tag);
    const L* data = labels.data<L>();
    int64_t bad = kc::first_invalid_label_cpu(data, labels.numel(), channels, ignore_index);
    if (bad >= 0) throw_invalid_label(op, labels, bad, static_cast<int64_t>(data[bad]), channels, ignore_index);
  });
}

#if defined(STRATA_HAVE_CUDA)
// Reads the statistics a CUDA labelled-loss kernel wrote, stats = {valid pixels, first invalid pixel
// or -1}; throws for an invalid label (reading that one label back for the message) and returns the
// number of valid pixels.
int64_t read_label_stats(const char* op, const Tensor& labels, const Tensor& stats, int64_t channels,
                         int64_t ignore_index) {
  std::vector<int64_t> s = stats.to_vector<int64_t>();
  if (s[1] >= 0) {
    Tensor label = labels.reshape({labels.numel()}).narrow_channels(s[1], s[1] + 1);
    throw_invalid_label(op, labels, s[1], label.to_vector<int64_t>()[0], channels, ignore_index);
  }
  return s[0];
}
#endif

void check_elementwise(const char* op, const Tensor& a, const char* role_a, const Tensor& b, const char* role_b,
                       Reduction reduction) {
  check_floating(op, role_a, a);
  check_floating(op, role_b, b);
  check_same_dtype(op, a, role_a, b, role_b);
  check_same_device(op, a, role_a, b, role_b);
  check_same_shape(op, a, role_a, b, role_b);
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

#if defined(STRATA_HAVE_CUDA)
// How the CUDA kernels reduce: the factor of sum and mean_all, or a division by the valid pixels
// they count themselves.
kcu::LossReduction device_reduction(Reduction reduction, int64_t count) {
  kcu::LossReduction r;
  r.per_valid = reduction == Reduction::mean_valid;
  r.scale = r.per_valid ? 1.0 : reduction_factor(reduction, count, count);
  return r;
}

// The upstream gradient on the device: per element (reduction none, `per_element`) or the reduced
// loss's scalar gradient (`reduced`), which the kernels multiply by the reduction factor.
struct DeviceUpstream {
  Tensor per_element;
  Tensor reduced;
};

DeviceUpstream device_upstream(Reduction reduction, const Tensor& g) {
  if (reduction == Reduction::none) return {g.contiguous(), Tensor()};
  return {Tensor(), g.contiguous()};
}

// The scalar output of a reduced loss on the device, or undefined for reduction none.
Tensor device_scalar_or_none(Reduction reduction, const Tensor& like) {
  return reduction == Reduction::none ? Tensor() : Tensor::empty({}, like.dtype(), like.device());
}
#endif

}  // namespace

Tensor cross_entropy(const Tensor& logits, const Tensor& labels, Reduction reduction, int64_t ignore_index) {
  const char* op = "cross_entropy";
  profiler::Scope profile_scope(op);
  check_labelled(op, "logits", logits, labels);
  int64_t channels = logits.size(-1), pixels = labels.numel();
  Tensor xc = logits.contiguous(), lc = labels.contiguous();
  Tensor per_pixel =
      reduction == Reduction::none ? Tensor::empty(labels.shape(), logits.dtype(), logits.device()) : Tensor();
  // Two values per pixel (max and log-sum of the logsumexp) instead of a softmax of the logits' size:
  // backward recomputes the softmax from the logits, which are usually kept alive anyway.
  Tensor lse =
      autograd::any_requires_grad({logits}) ? Tensor::empty({pixels, 2}, logits.dtype(), logits.device()) : Tensor();
  Tensor y;
  double factor = 1.0;
  dispatch(op, logits,
           [&](auto tag) {
             using T = decltype(tag);
             check_label_values(op, lc, channels, ignore_index);
             kc::LabelledLossSum total;
             visit_label(op, lc.dtype(), [&](auto label_tag) {
               using L = decltype(label_tag);
               total = kc::cross_entropy_cpu(data_or_null<T>(per_pixel), data_or_null<T>(lse), xc.data<T>(),
                                             lc.data<L>(), pixels, channels, ignore_index);
             });
             factor = reduction_factor(reduction, total.valid, pixels);
             y = loss_output(reduction, per_pixel, total.sum, factor, logits.dtype());
           }
#if defined(STRATA_HAVE_CUDA)
           ,
           [&](auto tag, const kcu::Stream& stream) {
             using T = decltype(tag);
             Tensor reduced = device_scalar_or_none(reduction, logits);
             int64_t blocks = kcu::cross_entropy_partials<T>(pixels, channels);
             Tensor partial_sums = Tensor::empty({blocks}, DType::f64, logits.device());
             Tensor partial_counts = Tensor::empty({2 * blocks}, DType::i64, logits.device());
             Tensor stats = Tensor::empty({2}, DType::i64, logits.device());
             visit_label(op, lc.dtype(), [&](auto label_tag) {
               using L = decltype(label_tag);
               kcu::cross_entropy_cuda(data_or_null<T>(per_pixel), data_or_null<T>(lse), data_or_null<T>(reduced),
                                       stats.data<int64_t>(), xc.data<T>(), lc.data<L>(), pixels, channels,
                                       ignore_index, device_reduction(reduction, pixels),
                                       partial_sums.data<double>(), partial_counts.data<int64_t>(), stream);
             });
             int64_t valid = read_label_stats(op, lc, stats, channels, ignore_index);
             factor = reduction_factor(reduction, valid, pixels);
             y = reduction == Reduction::none ? per_pixel : reduced;
           }
#endif
  );
  autograd::record(
      op, y, {logits},
      [reduction, factor, ignore_index, pixels, channels, x_saved = autograd::save(xc), lse_saved = autograd::save(lse),
       labels_saved = autograd::save(lc)](const Tensor& g, const std::vector<bool>&) {
        profiler::Scope backward_scope("cross_entropy", profiler::Phase::backward);
        Tensor dx = Tensor::empty(x_saved.shape(), x_saved.dtype(), x_saved.device());
        dispatch("cross_entropy backward", x_saved,
                 [&](auto tag) {
                   using T = decltype(tag);
                   UpstreamGradient up = upstream(reduction, g, factor);
                   visit_label("cross_entropy backward", labels_saved.dtype(), [&](auto label_tag) {
                     using L = decltype(label_tag);
                     kc::cross_entropy_backward_cpu(dx.data<T>(), data_or_null<T>(up.per_element),
                                                    static_cast<T>(up.scale), x_saved.data<T>(), lse_saved.data<T>(),
                                                    labels_saved.data<L>(), pixels, channels, ignore_index);
                   });
                 }
#if defined(STRATA_HAVE_CUDA)
                 ,
                 [&](auto tag, const kcu::Stream& stream) {
                   using T = decltype(tag);
                   DeviceUpstream up = device_upstream(reduction, g);
                   visit_label("cross_entropy backward", labels_saved.dtype(), [&](auto label_tag) {
                     using L = decltype(label_tag);
                     kcu::cross_entropy_backward_cuda(dx.data<T>(), data_or_null<T>(up.per_element),
                                                      data_or_null<T>(up.reduced), factor, x_saved.data<T>(),
                                                      lse_saved.data<T>(), labels_saved.data<L>(), pixels, channels,
                                                      ignore_index, stream);
                   });
                 }
#endif
        );
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
  Tensor per_pixel =
      reduction == Reduction::none ? Tensor::empty(labels.shape(), log_probs.dtype(), log_probs.device()) : Tensor();
  Tensor y;
  double factor = 1.0;
  dispatch(op, log_probs,
           [&](auto tag) {
             using T = decltype(tag);
             check_label_values(op, lc, channels, ignore_index);
             kc::LabelledLossSum total;
             visit_label(op, lc.dtype(), [&](auto label_tag) {
               using L = decltype(label_tag);
               total =
                   kc::nll_cpu(data_or_null<T>(per_pixel), xc.data<T>(), lc.data<L>(), pixels, channels, ignore_index);
             });
             factor = reduction_factor(reduction, total.valid, pixels);
             y = loss_output(reduction, per_pixel, total.sum, factor, log_probs.dtype());
           }
#if defined(STRATA_HAVE_CUDA)
           ,
           [&](auto tag, const kcu::Stream& stream) {
             using T = decltype(tag);
             Tensor reduced = device_scalar_or_none(reduction, log_probs);
             int64_t blocks = kcu::nll_partials(pixels);
             Tensor partial_sums = Tensor::empty({blocks}, DType::f64, log_probs.device());
             Tensor partial_counts = Tensor::empty({2 * blocks}, DType::i64, log_probs.device());
             Tensor stats = Tensor::empty({2}, DType::i64, log_probs.device());
             visit_label(op, lc.dtype(), [&](auto label_tag) {
               using L = decltype(label_tag);
               kcu::nll_cuda(data_or_null<T>(per_pixel), data_or_null<T>(reduced), stats.data<int64_t>(),
                             xc.data<T>(), lc.data<L>(), pixels, channels, ignore_index,
                             device_reduction(reduction, pixels), partial_sums.data<double>(),
                             partial_counts.data<int64_t>(), stream);
             });
             int64_t valid = read_label_stats(op, lc, stats, channels, ignore_index);
             factor = reduction_factor(reduction, valid, pixels);
             y = reduction == Reduction::none ? per_pixel : reduced;
           }
#endif
  );
  // The gradient is -w at each pixel's label: only the labels are kept, not the log-probabilities.
  autograd::record(
      op, y, {log_probs},
      [reduction, factor, ignore_index, pixels, channels, shape = log_probs.shape(), dtype = log_probs.dtype(),
       labels_saved = autograd::save(lc)](const Tensor& g, const std::vector<bool>&) {
        profiler::Scope backward_scope("nll", profiler::Phase::backward);
        Tensor dx = Tensor::empty(shape, dtype, labels_saved.device());
        dispatch("nll backward", dx,
                 [&](auto tag) {
                   using T = decltype(tag);
                   UpstreamGradient up = upstream(reduction, g, factor);
                   visit_label("nll backward", labels_saved.dtype(), [&](auto label_tag) {
                     using L = decltype(label_tag);
                     kc::nll_backward_cpu(dx.data<T>(), data_or_null<T>(up.per_element), static_cast<T>(up.scale),
                                          labels_saved.data<L>(), pixels, channels, ignore_index);
                   });
                 }
#if defined(STRATA_HAVE_CUDA)
                 ,
                 [&](auto tag, const kcu::Stream& stream) {
                   using T = decltype(tag);
                   DeviceUpstream up = device_upstream(reduction, g);
                   visit_label("nll backward", labels_saved.dtype(), [&](auto label_tag) {
                     using L = decltype(label_tag);
                     kcu::nll_backward_cuda(dx.data<T>(), data_or_null<T>(up.per_element),
                                            data_or_null<T>(up.reduced), factor, labels_saved.data<L>(), pixels,
                                            channels, ignore_index, stream);
                   });
                 }
#endif
        );
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
  int64_t n = a.numel();
  Tensor ac = a.contiguous(), bc = b.contiguous();
  Tensor per_element = reduction == Reduction::none ? Tensor::empty(a.shape(), a.dtype(), a.device()) : Tensor();
  double factor = reduction_factor(reduction, n, n);
  const bool bce = kind == ElementwiseLoss::bce_with_logits;
  Tensor y;
  dispatch(op, a,
           [&](auto tag) {
             using T = decltype(tag);
             T* loss = data_or_null<T>(per_element);
             double total = bce ? kc::bce_with_logits_cpu(loss, ac.data<T>(), bc.data<T>(), n)
                                : kc::mse_cpu(loss, ac.data<T>(), bc.data<T>(), n);
             y = loss_output(reduction, per_element, total, factor, a.dtype());
           }
#if defined(STRATA_HAVE_CUDA)
           ,
           [&](auto tag, const kcu::Stream& stream) {
             using T = decltype(tag);
             Tensor reduced = device_scalar_or_none(reduction, a);
             Tensor partial_sums = Tensor::empty({kcu::elementwise_loss_partials(n)}, DType::f64, a.device());
             T* loss = data_or_null<T>(per_element);
             kcu::LossReduction r = device_reduction(reduction, n);
             if (bce) {
               kcu::bce_with_logits_cuda(loss, data_or_null<T>(reduced), ac.data<T>(), bc.data<T>(), n, r,
                                         partial_sums.data<double>(), stream);
             } else {
               kcu::mse_cuda(loss, data_or_null<T>(reduced), ac.data<T>(), bc.data<T>(), n, r,
                             partial_sums.data<double>(), stream);
             }
             y = reduction == Reduction::none ? per_element : reduced;
           }
#endif
  );
  autograd::record(
      op, y, {a, b},
      [op, bce, reduction, factor, n, a_saved = autograd::save(ac), b_saved = autograd::save(bc)](
          const Tensor& g, const std::vector<bool>& needs) {
        profiler::Scope backward_scope(op, profiler::Phase::backward);
        Tensor da = needs[0] ? Tensor::empty(a_saved.shape(), a_saved.dtype(), a_saved.device()) : Tensor();
        Tensor db = needs[1] ? Tensor::empty(b_saved.shape(), b_saved.dtype(), b_saved.device()) : Tensor();
        dispatch(op, a_saved,
                 [&](auto tag) {
                   using T = decltype(tag);
                   UpstreamGradient up = upstream(reduction, g, factor);
                   const T* dloss = data_or_null<T>(up.per_element);
                   T scale = static_cast<T>(up.scale);
                   if (bce) {
                     kc::bce_with_logits_backward_cpu(data_or_null<T>(da), data_or_null<T>(db), dloss, scale,
                                                      a_saved.data<T>(), b_saved.data<T>(), n);
                   } else {
                     kc::mse_backward_cpu(data_or_null<T>(da), data_or_null<T>(db), dloss, scale, a_saved.data<T>(),
                                          b_saved.data<T>(), n);
                   }
                 }
#if defined(STRATA_HAVE_CUDA)
                 ,
                 [&](auto tag, const kcu::Stream& stream) {
                   using T = decltype(tag);
                   DeviceUpstream up = device_upstream(reduction, g);
                   const T* dloss = data_or_null<T>(up.per_element);
                   const T* dreduced = data_or_null<T>(up.reduced);
                   if (bce) {
                     kcu::bce_with_logits_backward_cuda(data_or_null<T>(da), data_or_null<T>(db), dloss, dreduced,
                                                        factor, a_saved.data<T>(), b_saved.data<T>(), n, stream);
                   } else {
                     kcu::mse_backward_cuda(data_or_null<T>(da), data_or_null<T>(db), dloss, dreduced, factor,
                                            a_saved.data<T>(), b_saved.data<T>(), n, stream);
                   }
                 }
#endif
        );
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
