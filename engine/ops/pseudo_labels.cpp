// PLOP's entropy pseudo-labelling: argument checks and one kernel call per op for both backends
// (kernels/cpu/pseudo_labels.h, kernels/cuda/pseudo_labels.h, same contract).
#include "engine/ops/pseudo_labels.h"

#include <limits>

#include "engine/ops/device_dispatch.h"
#include "engine/ops/labels.h"
#include "engine/profiler.h"
#include "kernels/cpu/pseudo_labels.h"
#include "kernels/cuda/pseudo_labels.h"

namespace strata {

namespace {

using kernels::common::PseudoLabelProblem;

int64_t label_dtype_max(DType dtype) {
  switch (dtype) {
    case DType::u8: return std::numeric_limits<uint8_t>::max();
    case DType::i32: return std::numeric_limits<int32_t>::max();
    default: return std::numeric_limits<int64_t>::max();
  }
}

PseudoLabelProblem checked_problem(const char* op, const Tensor& teacher, const Tensor& labels,
                                   const PseudoLabelOptions& options) {
  check_defined(op, "teacher_logits", teacher);
  check_floating(op, "teacher_logits", teacher);
  check(teacher.dim() == 4, op, ": expected teacher_logits of rank 4 (N,h,w,C_old), got ", teacher.describe());
  check_defined(op, "labels", labels);
  check(is_label_dtype(labels.dtype()), op, ": expected labels of dtype u8, i32 or i64, got ", labels.describe());
  check(labels.dim() == 3 && labels.size(0) == teacher.size(0), op, ": teacher_logits are ", teacher.describe(),
        " but labels are ", labels.describe(), "; expected labels (N,H,W) with the teacher's N = ", teacher.size(0));
  check_same_device(op, teacher, "teacher_logits", labels, "labels");
  const int64_t old = teacher.size(3);
  check(old >= 2, op, ": the teacher has ", old,
        " channel(s); the entropy is normalised by log C_old, so at least 2 (background and one class) are needed");
  check(options.total_channels >= old, op, ": total_channels (C_tot) is ", options.total_channels,
        "; expected at least the teacher's C_old = ", old);
  check(options.ignore_index >= options.total_channels && options.ignore_index <= label_dtype_max(labels.dtype()), op,
        ": ignore_index ", options.ignore_index, " must be >= C_tot = ", options.total_channels,
        " and fit the labels' dtype ", dtype_name(labels.dtype()));
  PseudoLabelProblem problem;
  problem.batch = teacher.size(0);
  problem.low_height = teacher.size(1);
  problem.low_width = teacher.size(2);
  problem.height = labels.size(1);
  problem.width = labels.size(2);
  problem.old_channels = old;
  problem.total_channels = options.total_channels;
  problem.align_corners = options.align_corners;
  problem.median = options.median;
  problem.ignore_index = options.ignore_index;
  return problem;
}

// body(T{}, L{}, backend): the teacher's element type, the labels' type and the backend.
template <class Body>
void dispatch_labelled(const char* op, const Tensor& teacher, DType label_dtype, Body&& body) {
  dispatch(op, teacher, [&](auto tag, const auto& backend) {
    visit_label(op, label_dtype, [&](auto label_tag) { body(tag, label_tag, backend); });
  });
}

}  // namespace

const char* to_string(PseudoMedian median) {
  switch (median) {
    case PseudoMedian::reference: return "reference";
    case PseudoMedian::fixed: return "fixed";
  }
  return "invalid";
}

void accumulate_entropy_histogram(const Tensor& histogram, const Tensor& teacher_logits, const Tensor& labels,
                                  const PseudoLabelOptions& options) {
  constexpr const char* kOp = "accumulate_entropy_histogram";
  profiler::Scope profile_scope(kOp);
  const PseudoLabelProblem problem = checked_problem(kOp, teacher_logits, labels, options);
  check_defined(kOp, "histogram", histogram);
  const Shape expected = {problem.old_channels, kEntropyBins};
  check(histogram.dtype() == DType::i64 && histogram.shape() == expected && histogram.is_contiguous(), kOp,
        ": histogram is ", histogram.describe(), "; expected a contiguous i64", shape_str(expected), " (C_old rows, ",
        kEntropyBins, " bins)");
  check_same_device(kOp, teacher_logits, "teacher_logits", histogram, "histogram");
  const Tensor t = teacher_logits.detach().contiguous(), y = labels.contiguous();
  Tensor counts = histogram;  // the same storage, written through
  dispatch_labelled(kOp, t, y.dtype(), [&](auto tag, auto label_tag, const auto& backend) {
    using T = decltype(tag);
    using L = decltype(label_tag);
    entropy_histogram(counts.data<int64_t>(), t.data<T>(), y.data<L>(), problem, backend);
  });
}

PseudoLabels entropy_pseudo_labels(const Tensor& teacher_logits, const Tensor& labels, const Tensor& thresholds,
                                   const PseudoLabelOptions& options) {
  constexpr const char* kOp = "entropy_pseudo_labels";
  profiler::Scope profile_scope(kOp);
  const PseudoLabelProblem problem = checked_problem(kOp, teacher_logits, labels, options);
  check_defined(kOp, "thresholds", thresholds);
  check(thresholds.dim() == 1 && thresholds.size(0) == problem.old_channels, kOp, ": thresholds are ",
        thresholds.describe(), "; expected (", problem.old_channels, "), one per teacher class");
  check_same_dtype(kOp, teacher_logits, "teacher_logits", thresholds, "thresholds");
  check_same_device(kOp, teacher_logits, "teacher_logits", thresholds, "thresholds");
  const Tensor t = teacher_logits.detach().contiguous(), y = labels.contiguous(), tau = thresholds.contiguous();
  PseudoLabels out{Tensor::empty(y.shape(), y.dtype(), y.device()),
                   Tensor::empty({problem.batch}, t.dtype(), t.device())};
  dispatch_labelled(kOp, t, y.dtype(), [&](auto tag, auto label_tag, const auto& backend) {
    using T = decltype(tag);
    using L = decltype(label_tag);
    entropy_pseudo_labels(out.labels.data<L>(), out.image_weights.data<T>(), t.data<T>(), y.data<L>(), tau.data<T>(),
                          problem, backend);
  });
  return out;
}

}  // namespace strata
