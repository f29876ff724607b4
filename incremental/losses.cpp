#include "incremental/losses.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "engine/error.h"
#include "engine/ops/channels.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/labels.h"
#include "engine/ops/pod.h"
#include "engine/ops/reduce.h"
#include "engine/ops/softmax.h"

namespace strata::incremental {

namespace {

void check_logits(const char* op, const char* role, const Tensor& logits) {
  check_defined(op, role, logits);
  check_floating(op, role, logits);
  check(logits.dim() == 4, op, ": expected ", role, " of rank 4 (N,H,W,C), got ", logits.describe());
  check(logits.size(3) >= 1, op, ": ", role, " ", logits.describe(), " has no channel");
}

// teacher (N,H,W,C_old) against the student's logits (N,H,W,C_tot), or their log-probabilities,
// named `role`; returns C_old.
int64_t check_teacher(const char* op, const char* role, const Tensor& logits, const Tensor& teacher,
                      bool needs_new_channel) {
  check_logits(op, role, logits);
  check_logits(op, "teacher_logits", teacher);
  check_same_dtype(op, logits, role, teacher, "teacher_logits");
  check_same_device(op, logits, role, teacher, "teacher_logits");
  for (int64_t d = 0; d < 3; ++d) {
    check(logits.size(d) == teacher.size(d), op, ": ", role, " ", logits.describe(), " and teacher_logits ",
          teacher.describe(), " differ in N,H,W");
  }
  const int64_t c_old = teacher.size(3), c_tot = logits.size(3);
  if (needs_new_channel) {
    check(c_old < c_tot, op, ": the teacher has C_old = ", c_old, " channels and the model C_tot = ", c_tot,
          "; the unbiased losses need at least one new channel (C_old < C_tot)");
  } else {
    check(c_old <= c_tot, op, ": the teacher has C_old = ", c_old, " channels, more than the model's C_tot = ", c_tot);
  }
  return c_old;
}

void check_unlabelled_reduction(const char* op, Reduction reduction) {
  check(reduction != Reduction::mean_valid, op, ": reduction mean_valid needs ignored pixels, and this loss has none; "
        "use mean_all (MiB/PLOP: mean over all pixels), sum or none");
}

// per_pixel (N,H,W,1) -> the reduction.
Tensor reduce_pixels(const Tensor& per_pixel, Reduction reduction) {
  switch (reduction) {
    case Reduction::none: return per_pixel.reshape({per_pixel.size(0), per_pixel.size(1), per_pixel.size(2)});
    case Reduction::sum: return sum(per_pixel);
    case Reduction::mean_all: return mean(per_pixel);
    case Reduction::mean_valid: break;
  }
  throw Error(cat("reduce_pixels: unexpected reduction ", to_string(reduction)));
}

// The labels as int64 after checking them against scores (N,H,W,C) named `role` (the logits or their
// log-probabilities): shape, dtype, and every value in [0, C) or equal to ignore_index (which must
// lie outside [0, C)).
// Checks labels against logits (N,H,W,C) named `role`: dtype, shape (N,H,W), device, and an
// ignore_index outside [0, C). Their values are checked by the op that reads them.
void check_label_tensor(const char* op, const char* role, const Tensor& logits, const Tensor& labels,
                        int64_t ignore_index) {
  check_defined(op, "labels", labels);
  check(is_label_dtype(labels.dtype()), op, ": expected labels of dtype u8, i32 or i64, got ", labels.describe());
  const Shape expected = {logits.size(0), logits.size(1), logits.size(2)};
  check(labels.shape() == expected, op, ": ", role, " are ", logits.describe(), " but labels are ", labels.describe(),
        "; expected labels of shape ", shape_str(expected), " (N,H,W)");
  check_same_device(op, logits, role, labels, "labels");
  const int64_t classes = logits.size(3);
  check(ignore_index < 0 || ignore_index >= classes, op, ": ignore_index ", ignore_index, " is one of the ", classes,
        " classes [0, ", classes, ")");
}

// The labels as int64 on the host after check_label_tensor and a check of every value: in [0, C) or
// ignore_index (the one-hot targets of icarl_bce are built on the host).
std::vector<int64_t> checked_labels(const char* op, const char* role, const Tensor& logits, const Tensor& labels,
                                    int64_t ignore_index) {
  check_label_tensor(op, role, logits, labels, ignore_index);
  const int64_t classes = logits.size(3);
  std::vector<int64_t> y = labels.to_vector<int64_t>();
  for (size_t i = 0; i < y.size(); ++i) {
    if (y[i] == ignore_index || (y[i] >= 0 && y[i] < classes)) continue;
    const int64_t flat = static_cast<int64_t>(i);
    const int64_t w = flat % logits.size(2), h = (flat / logits.size(2)) % logits.size(1);
    const int64_t n = flat / (logits.size(1) * logits.size(2));
    throw Error(cat(op, ": label ", y[i], " at (n=", n, ", h=", h, ", w=", w, ") is outside [0, ", classes,
                    ") and is not ignore_index ", ignore_index));
  }
  return y;
}

// The one-hot targets (N,H,W,C) of labels y (all-zero rows at ignored pixels) and the valid-pixel
// mask (N,H,W,1), built on the host in the logits' dtype, then moved to their device.
template <class T>
void fill_one_hot(Tensor& one_hot, Tensor& valid, const std::vector<int64_t>& y, int64_t classes,
                  int64_t ignore_index) {
  T* targets = one_hot.data<T>();
  T* mask = valid.data<T>();
  for (size_t i = 0; i < y.size(); ++i) {
    if (y[i] == ignore_index) continue;
    targets[i * static_cast<size_t>(classes) + static_cast<size_t>(y[i])] = T(1);
    mask[i] = T(1);
  }
}

// The checks of the unbiased cross-entropy's scores (logits or log-probabilities, named `role`).
void check_unbiased_scores(const char* op, const char* role, const Tensor& scores, int64_t old_channels) {
  check_logits(op, role, scores);
  check(old_channels >= 1 && old_channels < scores.size(3), op, ": old_channels = ", old_channels, " for ", role, " ",
        scores.describe(), "; expected 1 <= C_old < C_tot (step 0 uses cross_entropy)");
}

// The targets of the unbiased cross-entropy in the compact (N,H,W,1+N_new) scores: background and
// old classes (y < C_old, which the step's labels already send to 0) -> 0, class y >= C_old ->
// 1 + (y - C_old), ignore_index kept. A lookup table applied on the labels' device
// (engine/ops/labels.h), so no label travels through the host; invalid labels are reported under
// `op`. The caller's labels are left untouched.
Tensor unbiased_targets(const char* op, const char* role, const Tensor& scores, const Tensor& labels,
                        int64_t old_channels, int64_t ignore_index) {
  check_label_tensor(op, role, scores, labels, ignore_index);
  std::vector<int64_t> table(static_cast<size_t>(scores.size(3)));
  for (int64_t c = 0; c < scores.size(3); ++c) table[static_cast<size_t>(c)] = c < old_channels ? 0 : c - old_channels + 1;
  return map_labels(labels, table, ignore_index, op);
}

// unbiased_cross_entropy over checked log-probabilities log_p (N,H,W,C_tot), named `role`.
Tensor unbiased_cross_entropy_of(const char* op, const char* role, const Tensor& log_p, const Tensor& labels,
                                 int64_t old_channels, Reduction reduction, int64_t ignore_index) {
  const Tensor targets = unbiased_targets(op, role, log_p, labels, old_channels, ignore_index);
  Tensor log_p_old = logsumexp(log_p, 0, old_channels);  // log Σ_{c<C_old} p_c
  Tensor scores = concat({log_p_old, slice(log_p, old_channels, log_p.size(3))});
  return nll(scores, targets, reduction, ignore_index);
}

// unbiased_knowledge_distillation over checked log-probabilities log_p (N,H,W,C_tot) and teacher
// logits (N,H,W,C_old).
Tensor unbiased_knowledge_distillation_of(const Tensor& log_p, const Tensor& teacher_logits, Reduction reduction,
                                          double alpha) {
  const int64_t c_old = teacher_logits.size(3), c_tot = log_p.size(3);
  Tensor q = softmax(scale(teacher_logits.detach(), alpha));
  Tensor background_and_new = concat({slice(log_p, 0, 1), slice(log_p, c_old, c_tot)});
  Tensor log_background = logsumexp(background_and_new, 0, background_and_new.size(3));  // log p̂_0
  Tensor student = c_old > 1 ? concat({log_background, slice(log_p, 1, c_old)}) : log_background;
  Tensor per_pixel = scale(sum_channels(mul(q, student)), -1.0 / static_cast<double>(c_old));
  return reduce_pixels(per_pixel, reduction);
}

}  // namespace

Tensor knowledge_distillation(const Tensor& logits, const Tensor& teacher_logits, Reduction reduction, double alpha) {
  const char* op = "knowledge_distillation";
  const int64_t c_old = check_teacher(op, "logits", logits, teacher_logits, false);
  check_unlabelled_reduction(op, reduction);
  Tensor q = softmax(scale(teacher_logits.detach(), alpha));
  Tensor log_p_old = log_softmax(slice(logits, 0, c_old));
  Tensor per_pixel = scale(sum_channels(mul(q, log_p_old)), -1.0 / static_cast<double>(c_old));
  return reduce_pixels(per_pixel, reduction);
}

Tensor knowledge_distillation_l2(const Tensor& logits, const Tensor& teacher_logits, Reduction reduction,
                                 double alpha) {
  const char* op = "knowledge_distillation_l2";
  const int64_t c_old = check_teacher(op, "logits", logits, teacher_logits, false);
  check_unlabelled_reduction(op, reduction);
  Tensor q = softmax(scale(teacher_logits.detach(), alpha));
  Tensor difference = sub(softmax(slice(logits, 0, c_old)), q);
  Tensor per_pixel = scale(sum_channels(mul(difference, difference)), 1.0 / static_cast<double>(c_old));
  return reduce_pixels(per_pixel, reduction);
}

Tensor teacher_entropy(const Tensor& teacher_logits, Reduction reduction, double alpha) {
  const char* op = "teacher_entropy";
  check_unlabelled_reduction(op, reduction);
  const Tensor scaled = scale(teacher_logits.detach(), alpha);
  return knowledge_distillation(scaled, scaled, reduction, 1.0);  // −(1/C_old) Σ q log q
}

const char* distillation_loss_name(DistillationLoss loss) {
  switch (loss) {
    case DistillationLoss::cross_entropy: return "ce";
    case DistillationLoss::kl_divergence: return "kl";
    case DistillationLoss::l2: return "l2";
  }
  return "invalid";
}

DistillationInputs distillation_inputs(const Tensor& logits, const Tensor& teacher_logits, double alpha,
                                       const DistillationKnobs& knobs) {
  const char* op = "distillation";
  check(std::isfinite(knobs.temperature) && knobs.temperature > 0, op, ": the temperature must be > 0, got ",
        knobs.temperature);
  check(logits.defined() && teacher_logits.defined() && logits.dim() == 4 && teacher_logits.dim() == 4, op,
        ": expected logits and teacher logits of rank 4, got ", logits.describe(), " and ", teacher_logits.describe());
  DistillationInputs out{logits, teacher_logits, teacher_logits.size(3), alpha / knobs.temperature,
                         knobs.temperature * knobs.temperature};
  if (!knobs.include_background) {
    check(out.old_channels >= 2, op, ": without background the teacher's ", out.old_channels,
          " channel(s) leave no old class to distil; excluding background needs C_old >= 2");
    out.logits = slice(logits, 1, logits.size(3));
    out.teacher_logits = slice(teacher_logits, 1, out.old_channels);
    out.old_channels -= 1;
  }
  if (knobs.temperature != 1.0) out.logits = scale(out.logits, 1.0 / knobs.temperature);
  return out;
}

Tensor distillation(const Tensor& logits, const Tensor& teacher_logits, Reduction reduction, double alpha,
                    const DistillationKnobs& knobs, bool unbiased) {
  check(!unbiased || knobs.loss != DistillationLoss::l2,
        "distillation: the unbiased KD folds the new classes into background within a cross-entropy; it has no L2 "
        "form");
  check(!unbiased || knobs.include_background,
        "distillation: the unbiased KD distils background folded with the new classes; it cannot exclude "
        "background");
  const DistillationInputs in = distillation_inputs(logits, teacher_logits, alpha, knobs);
  Tensor value;
  if (knobs.loss == DistillationLoss::l2) {
    value = knowledge_distillation_l2(in.logits, in.teacher_logits, reduction, in.alpha);
  } else {
    value = unbiased ? unbiased_knowledge_distillation(in.logits, in.teacher_logits, reduction, in.alpha)
                     : knowledge_distillation(in.logits, in.teacher_logits, reduction, in.alpha);
    if (knobs.loss == DistillationLoss::kl_divergence) {
      value = sub(value, teacher_entropy(in.teacher_logits, reduction, in.alpha));
    }
  }
  return in.factor == 1.0 ? value : scale(value, in.factor);
}

Tensor unbiased_cross_entropy(const Tensor& logits, const Tensor& labels, int64_t old_channels, Reduction reduction,
                              int64_t ignore_index) {
  const char* op = "unbiased_cross_entropy";
  check_unbiased_scores(op, "logits", logits, old_channels);
  return unbiased_cross_entropy_of(op, "logits", log_softmax(logits), labels, old_channels, reduction, ignore_index);
}

Tensor unbiased_cross_entropy_from_log_probs(const Tensor& log_probs, const Tensor& labels, int64_t old_channels,
                                             Reduction reduction, int64_t ignore_index) {
  const char* op = "unbiased_cross_entropy";
  check_unbiased_scores(op, "log_probs", log_probs, old_channels);
  return unbiased_cross_entropy_of(op, "log_probs", log_probs, labels, old_channels, reduction, ignore_index);
}

Tensor unbiased_knowledge_distillation(const Tensor& logits, const Tensor& teacher_logits, Reduction reduction,
                                       double alpha) {
  const char* op = "unbiased_knowledge_distillation";
  check_teacher(op, "logits", logits, teacher_logits, true);
  check_unlabelled_reduction(op, reduction);
  return unbiased_knowledge_distillation_of(log_softmax(logits), teacher_logits, reduction, alpha);
}

Tensor unbiased_knowledge_distillation_from_log_probs(const Tensor& log_probs, const Tensor& teacher_logits,
                                                      Reduction reduction, double alpha) {
  const char* op = "unbiased_knowledge_distillation";
  check_teacher(op, "log_probs", log_probs, teacher_logits, true);
  check_unlabelled_reduction(op, reduction);
  return unbiased_knowledge_distillation_of(log_probs, teacher_logits, reduction, alpha);
}

Tensor feature_distillation(const Tensor& features, const Tensor& teacher_features, Reduction reduction) {
  const char* op = "feature_distillation";
  check_logits(op, "features", features);
  check_logits(op, "teacher_features", teacher_features);
  check_same_shape(op, features, "features", teacher_features, "teacher_features");
  check_same_dtype(op, features, "features", teacher_features, "teacher_features");
  check_same_device(op, features, "features", teacher_features, "teacher_features");
  check_unlabelled_reduction(op, reduction);
  return mse(features, teacher_features.detach(), reduction);
}

Tensor icarl_bce(const Tensor& logits, const Tensor& labels, Reduction reduction, int64_t ignore_index) {
  const char* op = "icarl_bce";
  check_logits(op, "logits", logits);
  const std::vector<int64_t> y = checked_labels(op, "logits", logits, labels, ignore_index);
  const int64_t valid_pixels = std::count_if(y.begin(), y.end(), [&](int64_t v) { return v != ignore_index; });
  Tensor targets = Tensor::zeros(logits.shape(), logits.dtype());
  Tensor valid = Tensor::zeros({logits.size(0), logits.size(1), logits.size(2), 1}, logits.dtype());
  if (logits.dtype() == DType::f64) {
    fill_one_hot<double>(targets, valid, y, logits.size(3), ignore_index);
  } else {
    fill_one_hot<float>(targets, valid, y, logits.size(3), ignore_index);
  }
  // BCE against an all-zero row is not zero: ignored pixels are masked out after the channel sum.
  Tensor per_pixel = mul(sum_channels(bce_with_logits(logits, targets.to(logits.device()), Reduction::none)),
                         valid.to(logits.device()));
  if (reduction != Reduction::mean_valid) return reduce_pixels(per_pixel, reduction);
  Tensor total = sum(per_pixel);
  if (valid_pixels == 0) {
    // PyTorch's mean over nothing: NaN, with a zero gradient.
    Tensor nan = Tensor::scalar(std::numeric_limits<double>::quiet_NaN(), total.dtype()).to(total.device());
    return add(scale(total, 0.0), nan);
  }
  return scale(total, 1.0 / static_cast<double>(valid_pixels));
}

Tensor icarl_distillation(const Tensor& logits, const Tensor& teacher_logits, Reduction reduction) {
  const char* op = "icarl_distillation";
  const int64_t c_old = check_teacher(op, "logits", logits, teacher_logits, false);
  check_unlabelled_reduction(op, reduction);
  Tensor targets = sigmoid(teacher_logits.detach());
  Tensor per_pixel = sum_channels(bce_with_logits(slice(logits, 0, c_old), targets, Reduction::none));
  return reduce_pixels(per_pixel, reduction);
}

Tensor icarl_disjoint(const Tensor& logits, const Tensor& teacher_logits, const Tensor& labels, Reduction reduction,
                      bool keep_background, int64_t ignore_index) {
  const char* op = "icarl_disjoint";
  const int64_t c_old = check_teacher(op, "logits", logits, teacher_logits, false);
  check_unlabelled_reduction(op, reduction);
  const std::vector<int64_t> y = checked_labels(op, "logits", logits, labels, ignore_index);
  const int64_t c_tot = logits.size(3);
  Tensor one_hot = Tensor::zeros(logits.shape(), logits.dtype());
  Tensor valid = Tensor::zeros({logits.size(0), logits.size(1), logits.size(2), 1}, logits.dtype());
  if (logits.dtype() == DType::f64) {
    fill_one_hot<double>(one_hot, valid, y, c_tot, ignore_index);
  } else {
    fill_one_hot<float>(one_hot, valid, y, c_tot, ignore_index);
  }
  one_hot = one_hot.to(logits.device());
  // The targets: the one-hot labels with the old channels replaced by the teacher's sigmoids (from
  // channel 1 when the labels' background is kept). No pixel is masked: an ignored one's one-hot row
  // is all zero and it counts with its replaced targets, as in MiB's IcarlLoss.
  const int64_t first_replaced = keep_background ? 1 : 0;
  std::vector<Tensor> parts;
  if (keep_background) parts.push_back(slice(one_hot, 0, 1));
  if (c_old > first_replaced) parts.push_back(sigmoid(slice(teacher_logits.detach(), first_replaced, c_old)));
  if (c_tot > c_old) parts.push_back(slice(one_hot, c_old, c_tot));
  const Tensor targets = parts.size() == 1 ? parts[0] : concat(parts);
  return reduce_pixels(sum_channels(bce_with_logits(logits, targets, Reduction::none)), reduction);
}

Tensor fold_new_channels_into_background(const Tensor& logits, int64_t old_channels) {
  const char* op = "fold_new_channels_into_background";
  check_logits(op, "logits", logits);
  const int64_t c_tot = logits.size(3);
  check(old_channels >= 1 && old_channels <= c_tot, op, ": old_channels ", old_channels, " outside [1, ", c_tot,
        "] for logits ", logits.describe());
  if (old_channels == c_tot) return logits;
  Tensor background = add(slice(logits, 0, 1), sum_channels(slice(logits, old_channels, c_tot)));
  return old_channels == 1 ? background : concat({background, slice(logits, 1, old_channels)});
}

Tensor local_pod(const std::vector<Tensor>& teacher_maps, const std::vector<Tensor>& student_maps,
                 const std::vector<double>& factors, double schedule_factor, const LocalPodOptions& options) {
  const char* op = "local_pod";
  check(!teacher_maps.empty(), op, ": no maps");
  check(student_maps.size() == teacher_maps.size() && factors.size() == teacher_maps.size(), op, ": ",
        teacher_maps.size(), " teacher maps, ", student_maps.size(), " student maps and ", factors.size(),
        " factors; expected one of each per map");
  check(std::isfinite(schedule_factor) && schedule_factor >= 0.0, op, ": schedule_factor ", schedule_factor,
        " is not a finite value >= 0");
  const size_t maps = teacher_maps.size();
  Tensor total;
  for (size_t m = 0; m < maps; ++m) {
    const Tensor& teacher = teacher_maps[m];
    Tensor student = student_maps[m];
    check_logits(op, cat("teacher map ", m).c_str(), teacher);
    check_logits(op, cat("student map ", m).c_str(), student);
    check(std::isfinite(factors[m]), op, ": factor ", factors[m], " of map ", m, " is not finite");
    if (student.size(3) != teacher.size(3)) {
      check(m + 1 == maps && student.size(3) > teacher.size(3), op, ": map ", m, " has student ", student.describe(),
            " and teacher ", teacher.describe(),
            "; only the last map (the logits) may differ in channels, with more in the student's (folded into "
            "background)");
      student = fold_new_channels_into_background(student, teacher.size(3));
    }
    // The reference skips a map whose factor is <= 0 but still divides by the number of maps.
    if (factors[m] <= 0.0) continue;
    Tensor term = scale(mean(local_pod_distance(teacher.detach(), student, options)), factors[m] * schedule_factor);
    total = total.defined() ? add(total, term) : term;
  }
  if (!total.defined()) return Tensor::zeros({}, teacher_maps[0].dtype(), teacher_maps[0].device());
  return scale(total, 1.0 / static_cast<double>(maps));
}

double pod_schedule_factor(int64_t total_classes, int64_t new_classes) {
  check(new_classes >= 1 && new_classes <= total_classes, "pod_schedule_factor: new_classes ", new_classes,
        " outside [1, total_classes = ", total_classes, "]");
  return std::sqrt(static_cast<double>(total_classes) / static_cast<double>(new_classes));
}

}  // namespace strata::incremental
