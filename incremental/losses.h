// The continual losses of the reference methods (SPEC-continual.md §3), each a differentiable
// composition of engine ops (softmax family, slice/concat, elementwise, reductions, nll,
// bce_with_logits, mse). This unfused composition is the reference the fused kernels are tested
// against. Notation: logits z (N,H,W,C_tot) of the model being trained, teacher logits z° (N,H,W,C_old)
// of the frozen previous-step model, labels y (N,H,W) after the step's label table, N_new =
// C_tot − C_old, p = softmax(z) over all C_tot channels, q = softmax(α·z°) (α multiplies the teacher
// logits before the softmax, MiB's --alpha; no temperature anywhere).
//
//   knowledge_distillation          LwF / ILT output KD (§3.2), per pixel
//                                   −(1/C_old) Σ_{c<C_old} q_c · log softmax(z_{0:C_old})_c
//                                   (the student's log-softmax over its first C_old channels only)
//   knowledge_distillation_l2       the LwF ablation log's L2 KD, per pixel
//                                   (1/C_old) Σ_{c<C_old} (softmax(z_{0:C_old})_c − q_c)²
//                                   (MSE between the probabilities KD compares)
//   teacher_entropy                 per pixel −(1/C_old) Σ_{c<C_old} q_c log q_c: what KD's soft cross-
//                                   entropy exceeds the KL divergence by (not differentiated)
//   distillation                    KD or unbiased KD under the LwF ablation log's knobs
//                                   (DistillationKnobs, below)
//   unbiased_cross_entropy          MiB (§3.5.1), per pixel: y < C_old (background and old classes,
//                                   which the step's labels already send to 0) -> −log Σ_{c<C_old} p_c;
//                                   C_old <= y < C_tot -> −log p_y; y = ignore_index -> 0
//   unbiased_knowledge_distillation MiB (§3.5.2), per pixel
//                                   −(1/C_old)[q_0 log p̂_0 + Σ_{c=1}^{C_old−1} q_c log p_c]
//                                   with p̂_0 = p_0 + Σ_{c>=C_old} p_c (background folded with the new
//                                   channels, which are the last N_new channels)
//   feature_distillation            ILT (§3.4): mean squared error of backbone features, mean over all elements
//   icarl_bce                       LwF-MC classification (§3.3), per pixel Σ_{c<C_tot} BCEWithLogits(z_c, 1[y=c]),
//                                   0 for y = ignore_index (its one-hot row is all zero and its loss masked)
//   icarl_distillation              LwF-MC distillation (§3.3), per pixel Σ_{c<C_old} BCEWithLogits(z_c, σ(z°_c));
//                                   with mean_all this is C_old · mean_{b,c,h,w} BCE, the reference's
//                                   `n_cl_old * BCEWithLogitsLoss(mean)`; the method multiplies it by
//                                   icarl_importance (10 for LwF-MC), as it multiplies KD by λ_kd
//   icarl_disjoint                  LwF-MC with --icarl-disjoint (§3.3, MiB's IcarlLoss), per pixel
//                                   Σ_{c<C_tot} BCEWithLogits(z_c, r_c) with r_c = σ(z°_c) for c < C_old and
//                                   1[y=c] for c >= C_old; keep_background (--icarl-bkg) sets r_0 = 1[y=0].
//                                   Not masked: an ignored pixel (all-zero one-hot row) counts with its
//                                   replaced targets, as in the reference; so no mean_valid
//   fold_new_channels_into_background  PLOP's logits folding ("extra_channels: sum", §3.7 (b)): the
//                                   student's logits (N,H,W,C_tot) -> (N,H,W,C_old) with channel 0 =
//                                   z_0 + Σ_{c>=C_old} z_c and channels 1..C_old−1 kept, so they compare
//                                   with the teacher's C_old channels; differentiable
//   local_pod                       PLOP's Local POD over a list of maps (§3.7 (b)):
//                                   (1/M) Σ_m factor_m · schedule · mean_n d_m(n) over the M maps, with
//                                   d_m(n) = local_pod_distance(teacher_m, student_m) (engine/ops/pod.h);
//                                   a map whose factor is <= 0 adds nothing but still counts in M, as
//                                   in the reference. A student map with more channels than its teacher
//                                   map (the logits, only the last map, as the reference asserts) is
//                                   folded with fold_new_channels_into_background first
//   pod_schedule_factor             PLOP's "pod schedule" sqrt(C_tot / N_new)
// Fine-tuning's loss is the engine's cross_entropy(z, y, Reduction::mean_all).
//
// Shared log-probabilities: unbiased_cross_entropy and unbiased_knowledge_distillation both read
// log p = log_softmax(z) over all C_tot channels. Their *_from_log_probs variants take log p
// (N,H,W,C_tot) computed once by the caller, so a method that uses both (MiB) runs one log_softmax
// per step (and one backward of it); the logits-taking functions compute it themselves and are
// otherwise the same composition, so both give the same values and gradients. Inputs are checked
// the same way, with messages naming log_probs instead of logits.
//
// Reductions (every loss takes one explicitly; MiB/PLOP use mean_all, SPEC §3.0):
//   none       per-pixel losses (N,H,W) (feature_distillation: per element, the features' shape)
//   sum        the sum
//   mean_all   divided by all N·H·W pixels, ignored ones included (feature_distillation: all elements)
//   mean_valid divided by the non-ignored pixels; only for the labelled losses (unbiased_cross_entropy,
//              icarl_bce); 0 valid pixels give NaN with a zero gradient, as PyTorch's 'mean'
// Gradients flow to the logits / features being trained only: the teacher's tensors are targets and
// are detached (the teacher runs without a graph anyway). Labels are never modified.
//
// Bad input throws strata::Error naming the loss and the tensor: logits or features that are not
// f32/f64 of rank 4, teacher tensors whose N,H,W (features: shape) or dtype differ, C_old > C_tot for
// KD (>= for the unbiased losses, which need a new channel; C_old >= 1), labels not u8/i32/i64 of
// shape (N,H,W), a label outside [0, C_tot) that is not ignore_index (naming it and its position),
// an ignore_index inside [0, C_tot), mean_valid for an unlabelled loss.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/ops/losses.h"
#include "engine/ops/pod.h"
#include "engine/tensor.h"

namespace strata::incremental {

// logits (N,H,W,C_tot), teacher_logits (N,H,W,C_old), 1 <= C_old <= C_tot.
Tensor knowledge_distillation(const Tensor& logits, const Tensor& teacher_logits, Reduction reduction,
                              double alpha = 1.0);

// logits (N,H,W,C_tot), teacher_logits (N,H,W,C_old), 1 <= C_old <= C_tot.
Tensor knowledge_distillation_l2(const Tensor& logits, const Tensor& teacher_logits, Reduction reduction,
                                 double alpha = 1.0);

// teacher_logits (N,H,W,C_old), C_old >= 1; no gradient.
Tensor teacher_entropy(const Tensor& teacher_logits, Reduction reduction, double alpha = 1.0);

// The distillation knobs of the LwF ablation log (../shared/reference/lwf-ablation-log.md; issue 12
// item 4), each a flag of strata train; the defaults are the references' KD (T = 1, soft cross-entropy,
// background distilled).
enum class DistillationLoss {
  cross_entropy,  // --kd-loss ce: −Σ q log p, the references' soft cross-entropy
  kl_divergence,  // --kd-loss kl: Σ q (log q − log p), the same gradient; the value less the teacher's entropy
  l2,             // --kd-loss l2: mean squared difference of p and q (the log's "distill_kl" runs)
};
const char* distillation_loss_name(DistillationLoss loss);  // "ce", "kl", "l2"

struct DistillationKnobs {
  double temperature = 1.0;  // --kd-temperature T: z/T and α z°/T in the softmaxes, the loss times T²
  DistillationLoss loss = DistillationLoss::cross_entropy;
  bool include_background = true;  // false (--kd-exclude-background): channel 0 left out of both softmaxes
  bool references() const {
    return temperature == 1.0 && loss == DistillationLoss::cross_entropy && include_background;
  }
};

// What the knobs make of the distillation's inputs, so the fused and unfused paths share them: without
// background, channel 0 sliced off both (C_old − 1 old channels remain, C_old >= 2 required); the
// student's logits divided by T; α / T for the teacher's; T² for the loss.
struct DistillationInputs {
  Tensor logits, teacher_logits;
  int64_t old_channels = 0;
  double alpha = 1.0;
  double factor = 1.0;
};
DistillationInputs distillation_inputs(const Tensor& logits, const Tensor& teacher_logits, double alpha,
                                       const DistillationKnobs& knobs);

// KD (unbiased: MiB's unbiased KD) under the knobs: T² · loss(z/T, z°, α/T) over the channels kept,
// loss being knowledge_distillation / unbiased_knowledge_distillation (ce), that less teacher_entropy
// (kl), or knowledge_distillation_l2. The unbiased KD folds the new channels into background, so it
// takes neither l2 nor an excluded background (strata::Error naming the knob).
Tensor distillation(const Tensor& logits, const Tensor& teacher_logits, Reduction reduction, double alpha,
                    const DistillationKnobs& knobs, bool unbiased);

// logits (N,H,W,C_tot), labels (N,H,W), 1 <= old_channels < C_tot.
Tensor unbiased_cross_entropy(const Tensor& logits, const Tensor& labels, int64_t old_channels, Reduction reduction,
                              int64_t ignore_index = 255);

// log_probs = log_softmax(logits) (N,H,W,C_tot), labels (N,H,W), 1 <= old_channels < C_tot.
Tensor unbiased_cross_entropy_from_log_probs(const Tensor& log_probs, const Tensor& labels, int64_t old_channels,
                                             Reduction reduction, int64_t ignore_index = 255);

// logits (N,H,W,C_tot), teacher_logits (N,H,W,C_old), 1 <= C_old < C_tot.
Tensor unbiased_knowledge_distillation(const Tensor& logits, const Tensor& teacher_logits, Reduction reduction,
                                       double alpha = 1.0);

// log_probs = log_softmax(logits) (N,H,W,C_tot), teacher_logits (N,H,W,C_old), 1 <= C_old < C_tot.
Tensor unbiased_knowledge_distillation_from_log_probs(const Tensor& log_probs, const Tensor& teacher_logits,
                                                      Reduction reduction, double alpha = 1.0);

// features and teacher_features of the same shape (e.g. (N,H,W,2048), the last ResNet stage).
Tensor feature_distillation(const Tensor& features, const Tensor& teacher_features, Reduction reduction);

// logits (N,H,W,C_tot), labels (N,H,W).
Tensor icarl_bce(const Tensor& logits, const Tensor& labels, Reduction reduction, int64_t ignore_index = 255);

// logits (N,H,W,C_tot), teacher_logits (N,H,W,C_old), 1 <= C_old <= C_tot.
Tensor icarl_distillation(const Tensor& logits, const Tensor& teacher_logits, Reduction reduction);

// logits (N,H,W,C_tot), teacher_logits (N,H,W,C_old), 1 <= C_old <= C_tot, labels (N,H,W).
Tensor icarl_disjoint(const Tensor& logits, const Tensor& teacher_logits, const Tensor& labels, Reduction reduction,
                      bool keep_background, int64_t ignore_index = 255);

// logits (N,H,W,C_tot), 1 <= old_channels <= C_tot -> (N,H,W,old_channels).
Tensor fold_new_channels_into_background(const Tensor& logits, int64_t old_channels);
// teacher_maps[m], student_maps[m]: (N,H,W,C_m) of one dtype and device (the last student map may have
// more channels than its teacher map); factors: one per map; schedule_factor >= 0 (pod_schedule_factor,
// or 1 without PLOP's schedule). The maps need not share N, H, W or C with each other. Returns a scalar
// (shape []) in the maps' dtype, 0 without a graph when no factor is > 0. Throws naming the map's index
// for lists of different lengths, an empty list, channel counts that differ on another map than the
// last or where the student has fewer channels, and everything local_pod_distance refuses.
Tensor local_pod(const std::vector<Tensor>& teacher_maps, const std::vector<Tensor>& student_maps,
                 const std::vector<double>& factors, double schedule_factor, const LocalPodOptions& options = {});
// sqrt(total_classes / new_classes), 1 <= new_classes <= total_classes.
double pod_schedule_factor(int64_t total_classes, int64_t new_classes);

}  // namespace strata::incremental
