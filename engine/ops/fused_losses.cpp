// Fused segmentation losses: argument checks, one kernel call per pass for both backends
// (kernels/cpu/fused_losses.h, kernels/cuda/fused_losses.h, same contract), and the autograd node.
#include "engine/ops/fused_losses.h"

#include <cmath>

#include "engine/autograd.h"
#include "engine/ops/device_dispatch.h"
#include "engine/ops/labels.h"
#include "engine/profiler.h"
#include "kernels/cpu/fused_losses.h"
#include "kernels/cuda/fused_losses.h"

namespace strata {

namespace {

using kernels::common::FusedLossProblem;
using kernels::common::kMaxFusedTerms;
using kernels::common::kPixelStats;
using kernels::common::LossReduction;
using kernels::common::pixel_loss_is_labelled;
using kernels::common::pixel_loss_reads_teacher;

constexpr const char* kOp = "fused_losses";

void check_term(const FusedLossTerm& term, int64_t channels, int64_t old_channels) {
  const char* name = to_string(term.kind);
  check(std::isfinite(term.weight) && term.weight >= 0, kOp, ": term ", name, " has weight ", term.weight,
        "; expected a finite weight >= 0");
  check(term.reduction != Reduction::none, kOp, ": term ", name,
        " asks for reduction none; the fused losses give reduced values only (use the unfused losses for "
        "per-pixel ones)");
  check(term.reduction != Reduction::mean_valid || pixel_loss_is_labelled(term.kind), kOp, ": term ", name,
        " has no ignored pixels, so reduction mean_valid does not apply; use mean_all or sum");
  const bool unbiased =
      term.kind == PixelLoss::unbiased_cross_entropy || term.kind == PixelLoss::unbiased_knowledge_distillation;
  if (unbiased) {
    check(old_channels >= 1 && old_channels < channels, kOp, ": term ", name,
          " needs 1 <= old_channels < C = ", channels, " (at least one new class), got old_channels = ", old_channels);
  } else if (pixel_loss_reads_teacher(term.kind)) {
    check(old_channels >= 1 && old_channels <= channels, kOp, ": term ", name,
          " needs 1 <= old_channels <= C = ", channels, ", got old_channels = ", old_channels);
  }
}

// The problem the kernels solve, after checking every argument against it.
FusedLossProblem checked_problem(const Tensor& logits, const Tensor& teacher, const Tensor& labels,
                                 const std::vector<FusedLossTerm>& terms, const FusedLossOptions& options) {
  check_defined(kOp, "logits", logits);
  check_floating(kOp, "logits", logits);
  check(logits.dim() == 4 && logits.size(3) >= 1, kOp, ": expected logits of rank 4 (N,h,w,C) with C >= 1, got ",
        logits.describe());
  check_defined(kOp, "labels", labels);
  check(is_label_dtype(labels.dtype()), kOp, ": expected labels of dtype u8, i32 or i64, got ", labels.describe());
  check(labels.dim() == 3 && labels.size(0) == logits.size(0), kOp, ": logits are ", logits.describe(),
        " but labels are ", labels.describe(), "; expected labels (N,H,W) with the logits' N = ", logits.size(0));
  check_same_device(kOp, logits, "logits", labels, "labels");
  check(!terms.empty() && terms.size() <= static_cast<size_t>(kMaxFusedTerms), kOp, ": expected 1 to ", kMaxFusedTerms,
        " terms, got ", terms.size());
  const int64_t channels = logits.size(3);
  check(options.ignore_index < 0 || options.ignore_index >= channels, kOp, ": ignore_index ", options.ignore_index,
        " is one of the ", channels, " classes [0, ", channels, ")");
  check(std::isfinite(options.alpha) && options.alpha > 0, kOp, ": alpha must be > 0, got ", options.alpha);
  FusedLossProblem problem;
  problem.batch = logits.size(0);
  problem.low_height = logits.size(1);
  problem.low_width = logits.size(2);
  problem.height = labels.size(1);
  problem.width = labels.size(2);
  problem.channels = channels;
  problem.old_channels = options.old_channels;
  problem.align_corners = options.align_corners;
  problem.alpha = options.alpha;
  problem.ignore_index = options.ignore_index;
  problem.terms = static_cast<int>(terms.size());
  const double all_pixels = static_cast<double>(problem.pixels());
  for (size_t k = 0; k < terms.size(); ++k) {
    check_term(terms[k], channels, options.old_channels);
    problem.kinds[k] = terms[k].kind;
    // The two keep their per-pixel statistic in one slot (kernels/common/fused_losses.h's PixelStats).
    for (size_t j = 0; j < k; ++j) {
      const bool both = (terms[j].kind == PixelLoss::knowledge_distillation_l2 &&
                         terms[k].kind == PixelLoss::unbiased_knowledge_distillation) ||
                        (terms[j].kind == PixelLoss::unbiased_knowledge_distillation &&
                         terms[k].kind == PixelLoss::knowledge_distillation_l2);
      check(!both, kOp, ": terms unbiased_knowledge_distillation and knowledge_distillation_l2 cannot share a call; ",
            "fuse them in two");
    }
    problem.weights[k] = terms[k].weight;
    LossReduction& r = problem.reductions[k];
    r.per_valid = terms[k].reduction == Reduction::mean_valid;
    if (terms[k].reduction == Reduction::mean_all) r.scale = all_pixels > 0 ? 1.0 / all_pixels : NAN;
  }
  if (problem.reads_teacher()) {
    check(teacher.defined(), kOp, ": a term reads the teacher, but teacher_logits is undefined");
    check_same_dtype(kOp, logits, "logits", teacher, "teacher_logits");
    check_same_device(kOp, logits, "logits", teacher, "teacher_logits");
    const Shape expected = {logits.size(0), logits.size(1), logits.size(2), options.old_channels};
    check(teacher.shape() == expected, kOp, ": teacher_logits are ", teacher.describe(), "; expected ",
          shape_str(expected), " (the logits' N,h,w and old_channels = ", options.old_channels, " channels)");
  }
  if (options.image_weights.defined()) {
    const Tensor& w = options.image_weights;
    check(w.dim() == 1 && w.size(0) == logits.size(0), kOp, ": image_weights are ", w.describe(), "; expected (",
          logits.size(0), "), one per image");
    check_same_dtype(kOp, logits, "logits", w, "image_weights");
    check_same_device(kOp, logits, "logits", w, "image_weights");
  }
  return problem;
}

template <class T>
const T* data_or_null(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

// The work of a fused pass for the profiler (engine/profiler.h's convention). Per full-resolution
// pixel and channel: the interpolation (two multiply-adds from the row-blended taps, a third per
// row) and, forward, the logsumexps' max, subtraction, exp and sum over all channels and over the
// old or background ones (8), backward p_c and each term's exps and selects (about 4 per term) and
// the adjoint's two multiply-adds. Bytes: the low-resolution logits (and the teacher's) read once,
// the labels and the per-pixel stats once; backward also the (N,H,w,C) row buffer written and read.
double interpolation_flops(const FusedLossProblem& problem) {
  const double per_pixel =
      6.0 * static_cast<double>(problem.channels + (problem.reads_teacher() ? problem.old_channels : 0));
  return per_pixel * static_cast<double>(problem.pixels());
}

double low_resolution_bytes(const FusedLossProblem& problem, size_t element) {
  const double per_channel =
      static_cast<double>(problem.batch * problem.low_height * problem.low_width) * static_cast<double>(element);
  return per_channel * static_cast<double>(problem.channels + (problem.reads_teacher() ? problem.old_channels : 0));
}

void count_forward(const FusedLossProblem& problem, const Tensor& logits, const Tensor& labels) {
  const double pixels = static_cast<double>(problem.pixels()),
               element = static_cast<double>(dtype_size(logits.dtype()));
  profiler::count(interpolation_flops(problem) + 8.0 * pixels * static_cast<double>(problem.channels),
                  low_resolution_bytes(problem, dtype_size(logits.dtype())) + static_cast<double>(labels.nbytes()) +
                      pixels * kPixelStats * element);
}

void count_backward(const FusedLossProblem& problem, const Tensor& logits, const Tensor& labels) {
  const double pixels = static_cast<double>(problem.pixels()),
               element = static_cast<double>(dtype_size(logits.dtype()));
  const double row_buffer = static_cast<double>(problem.batch * problem.height * problem.low_width * problem.channels);
  profiler::count(
      interpolation_flops(problem) + (3.0 + 4.0 * problem.terms) * pixels * static_cast<double>(problem.channels),
      2.0 * low_resolution_bytes(problem, dtype_size(logits.dtype())) + static_cast<double>(labels.nbytes()) +
          pixels * kPixelStats * element + 2.0 * row_buffer * element);
}

// body(T{}, L{}, backend): the logits' element type, the labels' type and the logits' backend.
template <class Body>
void dispatch_labelled(const char* op, const Tensor& logits, DType label_dtype, Body&& body) {
  dispatch(op, logits, [&](auto tag, const auto& backend) {
    visit_label(op, label_dtype, [&](auto label_tag) { body(tag, label_tag, backend); });
  });
}

}  // namespace

const char* to_string(PixelLoss kind) {
  switch (kind) {
    case PixelLoss::cross_entropy: return "cross_entropy";
    case PixelLoss::unbiased_cross_entropy: return "unbiased_cross_entropy";
    case PixelLoss::knowledge_distillation: return "knowledge_distillation";
    case PixelLoss::unbiased_knowledge_distillation: return "unbiased_knowledge_distillation";
    case PixelLoss::icarl_bce: return "icarl_bce";
    case PixelLoss::icarl_distillation: return "icarl_distillation";
    case PixelLoss::icarl_disjoint: return "icarl_disjoint";
    case PixelLoss::icarl_disjoint_bkg: return "icarl_disjoint_bkg";
    case PixelLoss::knowledge_distillation_l2: return "knowledge_distillation_l2";
  }
  return "invalid";
}

Tensor fused_losses(const Tensor& logits, const Tensor& teacher_logits, const Tensor& labels,
                    const std::vector<FusedLossTerm>& terms, const FusedLossOptions& options) {
  profiler::Scope profile_scope(kOp);
  const FusedLossProblem problem = checked_problem(logits, teacher_logits, labels, terms, options);
  const Tensor z = logits.contiguous(), y = labels.contiguous();
  const Tensor t = problem.reads_teacher() ? teacher_logits.detach().contiguous() : Tensor();
  const Tensor w = options.image_weights.defined() ? options.image_weights.detach().contiguous() : Tensor();
  count_forward(problem, z, y);
  Tensor values = Tensor::empty({problem.terms}, z.dtype(), z.device());
  Tensor stats = label_stats_tensor(z.device());
  Tensor pixel_stats = autograd::any_requires_grad({logits})
                           ? Tensor::empty({problem.pixels(), kPixelStats}, z.dtype(), z.device())
                           : Tensor();
  dispatch_labelled(kOp, z, y.dtype(), [&](auto tag, auto label_tag, const auto& backend) {
    using T = decltype(tag);
    using L = decltype(label_tag);
    fused_losses(values.data<T>(), pixel_stats.defined() ? pixel_stats.data<T>() : nullptr, stats.data<int64_t>(),
                 z.data<T>(), data_or_null<T>(t), data_or_null<T>(w), y.data<L>(), problem, backend);
  });
  check_label_stats(kOp, stats, labels, problem.channels, problem.ignore_index);
  autograd::record(kOp, values, {logits},
                   [problem, z_saved = autograd::save(z), t_saved = autograd::save(t), w_saved = autograd::save(w),
                    y_saved = autograd::save(y), stats_saved = autograd::save(stats),
                    pixel_stats_saved = autograd::save(pixel_stats)](const Tensor& g, const std::vector<bool>&) {
                     profiler::Scope backward_scope(kOp, profiler::Phase::backward);
                     count_backward(problem, z_saved, y_saved);
                     const Tensor dvalues = g.contiguous();
                     Tensor dz = Tensor::empty(z_saved.shape(), z_saved.dtype(), z_saved.device());
                     dispatch_labelled("fused_losses backward", z_saved, y_saved.dtype(),
                                       [&](auto tag, auto label_tag, const auto& backend) {
                                         using T = decltype(tag);
                                         using L = decltype(label_tag);
                                         fused_losses_backward(
                                             dz.data<T>(), dvalues.data<T>(), stats_saved.data<int64_t>(),
                                             pixel_stats_saved.data<T>(), z_saved.data<T>(), data_or_null<T>(t_saved),
                                             data_or_null<T>(w_saved), y_saved.data<L>(), problem, backend);
                                       });
                     return std::vector<Tensor>{dz};
                   });
  return values;
}

}  // namespace strata
