// Continual methods (SPEC-continual.md §3) as compositions of weighted loss terms plus hooks, not
// forks of the trainer. A method is a MethodConfig (MiB's flags: --loss-kd, --loss-de, --unce,
// --unkd, --init-balanced, --alpha, --icarl, --icarl-importance, --icarl-disjoint, --icarl-bkg,
// --reg-importance, --reg-alpha, --reg-iterations, --reg-no-normalize; PLOP's: --pod, --pod-factor,
// --pod-logits, --pod-logits-factor, --pseudo, --pseudo-median, --threshold, --classif-adaptive-factor;
// the LwF ablation log's: --kd-temperature, --kd-loss, --kd-exclude-background, --share-stages,
// --freeze-old-classifier; MiB's --freeze as --freeze-backbone) that a preset fills in (§3.9) and that flags may change term by term. At step t the active terms are
//
//   term     weight    when                       loss (incremental/losses.h, reduction mean_all)
//   ce       1         !icarl, and step 0 or !(unce or pseudo)
//                                                 cross_entropy(z, y): −log p_y over all B·H·W pixels
//   pseudo_ce 1        step >= 1, pseudo          cross_entropy(z, ŷ) on PLOP's pseudo-labels ŷ
//                                                 (engine/ops/pseudo_labels.h), each image's pixels
//                                                 times its γ with classif_adaptive_factor (§3.7 (a))
//   unce     1         step >= 1, unce            unbiased_cross_entropy(z, y, C_old)       (§3.5.1)
//   bce      1         icarl, and step 0 or !icarl_disjoint
//                                                 icarl_bce(z, y): LwF-MC's one-hot BCE (§3.3)
//   icarl_disjoint     step >= 1, icarl, icarl_disjoint (in place of bce), weight 1
//                                                 icarl_disjoint(z, z°, y, icarl_bkg): one BCE whose old
//                                                 channels' targets are σ(z°) (from channel 1 with
//                                                 icarl_bkg: the labels' background kept), no pixel
//                                                 masked (MiB's IcarlLoss)
//   kd       loss_kd   step >= 1, loss_kd > 0, !unkd   knowledge_distillation(z, z°, alpha)  (§3.2)
//   unkd     loss_kd   step >= 1, loss_kd > 0, unkd    unbiased_knowledge_distillation(z, z°, alpha) (§3.5.2)
//                      both under the kd knobs when set: distillation(z, z°, alpha, kd, unkd), i.e. at
//                      temperature T, as KL or L2 (kd only), background excluded (kd only)
//   icarl    icarl_importance  step >= 1, icarl, !icarl_disjoint, icarl_importance > 0
//                                                 icarl_distillation(z, z°): Σ_{c<C_old} BCE(z_c, σ(z°_c)),
//                                                 i.e. C_old · the reference's mean BCE (§3.3, "combined")
//   de       loss_de   step >= 1, loss_de > 0      feature_distillation(body, body°): MSE over every
//                                                 element of the backbone output (ILT, §3.4)
//   pod      1         step >= 1, pod             local_pod over the 4 stage pre-activations and the head
//                                                 output (pod_factor each) and with pod_logits the
//                                                 low-resolution logits (pod_logits_factor), times
//                                                 sqrt(C_tot / N_new), over the number of maps (§3.7 (b))
//   reg      reg_importance  step >= 1, EWC/PI/RW  Σ ŵ(θ − θ_old)² over the previous model's parameters
//                                                 (incremental/regularizer.h, §3.6): not part of loss(),
//                                                 regularize() after the importance update
//
// and the total is their weighted sum (train.py's L = L_seg + L_kd + L_de + L_icarl). The reg term
// has its own backward after the others', as train.py's: update_importance() reads the gradients of
// the others alone first (StepSession::train_iteration; fused with the penalty's gradient by default). Every term's
// reduction is the references' (mean over all pixels, ignored ones in the denominator; KD terms carry
// 1/C_old). LwF-MC is active from step 0, as in the reference: its step 0 trains with the BCE, not CE.
// Losses are those of logits upsampled to the crop (§3.0). By default the logit terms (ce, unce,
// kd, unkd) run as one fused op on the low-resolution logits of the student and the teacher
// (engine/ops/fused_losses.h), which never builds the full-resolution logits: the forwards are
// asked for low_res_logits only. With fused_losses off they are the compositions of
// incremental/losses.h on the upsampled logits, as the references compute them.
//
// Presets (§3.9, λ from incremental/recipe.h):
//   FT    nothing beyond ce
//   LwF   loss_kd 100
//   ILT   loss_kd 100, loss_de 100
//   MiB   unce, unkd, init_balanced, loss_kd = mib_kd_weight(task) (10; 100 for VOC 15-1 and 10-1)
//   LwF-MC icarl, icarl_importance 10 (MiB's --icarl default is 1)
//   EWC   regularizer ewc, reg_importance 500 (--convention mib; 100 under plop, the PLOP repository's),
//         reg_alpha 0.9
//   PI    regularizer pi, reg_importance 500 (mib; 100 under plop)
//   RW    regularizer rw, reg_importance 100, reg_alpha 0.9, reg_iterations 10
//   PLOP  pod (factor 0.01, ADE20K 0.001), pod_logits (0.0005, ADE20K 0.00001), pseudo (median
//         reference under --convention plop, fixed under mib; threshold 0.001),
//         classif_adaptive_factor, init_balanced (PLOP's --method PLOP; its ADE scripts' factors)
// Names are matched case-insensitively ("mib", "MIB", "MiB"; "LWF-MC" is MiB's spelling).
//
// The kd knobs (the LwF ablation log's, issue 12 item 4) compose with every preset that distils logits
// through a softmax (LwF, ILT, MiB, or --loss-kd on any other): its run
// distill_real_kl_t4_include_bg.fine_tune.share_res12.disw10 reads --method LwF --loss-kd 10
// --kd-loss kl --kd-temperature 4 --share-stages 2; its "distill_kl" runs were L2 (--kd-loss l2), and a
// run without include_bg adds --kd-exclude-background.
//
// Combinations the references accept but silently ignore are errors naming both flags: --unce with
// --icarl (MiB's code keeps only the BCE), --icarl-disjoint without --icarl, --icarl-bkg without
// --icarl-disjoint, --icarl-importance without --icarl or with --icarl-disjoint (that variant has
// no weight), --reg-importance or --reg-no-normalize without a regulariser, --reg-alpha with PI,
// --reg-iterations with EWC or PI, --pseudo with --unce or --icarl, --classif-adaptive-factor without
// --pseudo, --pod-logits or --pod-factor without --pod, --pod-logits-factor without --pod-logits,
// --pseudo-median or --threshold without --pseudo, --unkd with --kd-loss l2 or --kd-exclude-background,
// the kd knobs without kd or unkd, --share-stages without a teacher.
//
// Hooks:
//   on_step_start   after the previous step's weights are loaded into a step-t model (t >= 1):
//                   MiB's balanced classifier init when init_balanced (§3.5.3); freezes the backbone
//                   (freeze_backbone), the stem and first share_stages stages, and the previous
//                   steps' classifiers (freeze_old_classifier)
//                   by clearing their requires_grad: they leave the graph and SGD skips them. The
//                   frozen backbone's batch-norm statistics still update in training mode, as under
//                   MiB's --freeze (which applies it at step 0 too; here step 0 always trains it)
//   needs_teacher   whether step t runs the frozen previous-step model (some term uses it)
//   forward_options the one place that says what step t's forwards (the student's and the
//                   teacher's) must return, as the model's models::ForwardOptions: the logits
//                   (low-resolution ones only on the fused path), the backbone output for
//                   ILT's de term, the stage pre-activations, head output and low-resolution logits
//                   for PLOP's pod and pseudo_ce; nothing more for FT, LwF and MiB; with share_stages K
//                   the teacher's stage-K output, which the student starts from (StepSession)
//   start_step      once the step's model is on its device: EWC/PI/RW build their accumulators and,
//                   at step >= 1, the penalty's anchors and weights from the previous checkpoint
//   regularize      EWC/PI/RW, every iteration after the backward (see the reg row)
//   set_pseudo_thresholds  PLOP's thresholds, computed before a step >= 1 trains
//                   (StepSession::compute_pseudo_label_thresholds, called by the trainer)
//   state           tensors a method carries in the step checkpoint (EWC/PI/RW's importance and
//                   accumulators, PLOP's thresholds); none of FT, LwF, LwF-MC, ILT and MiB has any
//
// Method::loss reads no loss value back to the host: the weighted terms come back as one detached
// device tensor (LossBreakdown::values), which the trainer accumulates and reads once per logging
// interval; the student's log_softmax is computed once and shared by the terms that need it (unce
// and unkd, incremental/losses.h's *_from_log_probs); the unbiased cross-entropy remaps its labels on
// their device (engine/ops/labels.h's map_labels).
//
// Errors (strata::Error): an unknown method name (listing the valid ones), a negative weight, a
// zero alpha, the contradictory flags above; at run time a step >= 1 loss without the teacher output
// it needs.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine/safetensors.h"
#include "engine/tensor.h"
#include "incremental/losses.h"
#include "incremental/protocol.h"
#include "incremental/pseudo_labels.h"
#include "incremental/regularizer.h"
#include "incremental/task.h"
#include "models/segmentation_model.h"

namespace strata::incremental {

struct MethodConfig {
  std::string name = "FT";     // the preset it came from, with "+" when flags changed it
  double loss_kd = 0;          // lambda_kd: weight of the output distillation (0: off)
  double loss_de = 0;          // lambda_de: weight of the backbone-feature MSE (0: off)
  bool unce = false;           // unbiased cross-entropy at steps >= 1
  bool unkd = false;           // the KD term is MiB's unbiased KD
  bool init_balanced = false;  // MiB's classifier initialisation at steps >= 1
  double alpha = 1.0;          // multiplies the teacher logits before their softmax
  // The LwF ablation log's knobs of the kd and unkd terms (--kd-temperature, --kd-loss,
  // --kd-exclude-background; incremental/losses.h's DistillationKnobs): the references' KD by default.
  DistillationKnobs kd;
  // LwF-MC (MiB's --icarl): the one-hot BCE as the classification loss at every step, and at steps
  // >= 1 the old channels' sigmoid distillation weighted icarl_importance, or with icarl_disjoint one
  // BCE whose old channels' targets are the teacher's sigmoids (icarl_bkg: except background's).
  bool icarl = false;
  double icarl_importance = 1.0;  // MiB's default; the LwF-MC preset's is 10
  bool icarl_disjoint = false;
  bool icarl_bkg = false;
  // EWC, PI, RW (MiB's --regularizer, --reg_importance, --reg_alpha, --reg_iterations,
  // --reg_no_normalize): importance accumulated at every step, its penalty at steps >= 1.
  RegularizerSettings regularizer;
  // Knobs composable with every method, at steps >= 1: the backbone's weights not trained (MiB's
  // --freeze, ILT's "encoder fixed"), the previous steps' classifier rows not trained (the LwF ablation
  // log's fix_branch). A frozen parameter requires no gradient, so the backward never computes one.
  bool freeze_backbone = false;
  bool freeze_old_classifier = false;
  // The stem and the first share_stages ResNet stages (0..4) frozen and shared by teacher and student
  // at steps >= 1 (the LwF ablation log's share_res1..share_res1234): the teacher computes them once
  // per batch and the student starts from its output, so they run once, not twice; their batch-norm
  // statistics stay the previous step's (the student never runs them in training). Needs a teacher.
  int share_stages = 0;
  // PLOP (its argparser's --pod local, --pod_factor, --pod_logits, --pod_options, --pseudo entropy,
  // --threshold, --classif_adaptive_factor; §3.7), at steps >= 1. pod: Local POD between the
  // teacher's and the student's stage pre-activations and head output (pod_factor each) and, with
  // pod_logits, low-resolution logits with the new channels folded into background
  // (pod_logits_factor), times sqrt(C_tot / N_new), over the number of maps. pseudo: background
  // pixels take the teacher's class where its normalised entropy is below that class's threshold
  // (computed before the step trains, incremental/pseudo_labels.h; pseudo_median the variant, at least
  // pseudo_threshold), 255 elsewhere. classif_adaptive_factor: each image's CE times the share of its
  // background pixels so labelled.
  bool pod = false;
  double pod_factor = 0.01;
  bool pod_logits = false;
  double pod_logits_factor = 0.0005;
  bool pseudo = false;
  PseudoMedian pseudo_median = PseudoMedian::reference;
  double pseudo_threshold = kPlopMinimumThreshold;
  bool classif_adaptive_factor = false;
  // How the logit terms run, not what they compute (so not part of describe()): true, one fused op
  // on the low-resolution logits (engine/ops/fused_losses.h); false, the unfused compositions on
  // upsampled logits (incremental/losses.h), the reference the fused path is tested against
  // (--unfused-losses).
  bool fused_losses = true;
  // The model's, not the method's (so not part of describe() either): the auxiliary heads' loss weight
  // (PSPNet 0.4 as semseg, BiSeNet 1 per head; 0: no aux term), the classification term on each aux
  // head's logits, logged as one "aux" value, and whether
  // the logits' upsampling aligns corners (PSPNet: true), which the fused losses and pseudo-labels
  // reproduce.
  double loss_aux = 0;
  bool align_corners = false;
  // Sets loss_aux and align_corners from the model (its architecture's references' values).
  void adapt_to(const models::ModelConfig& model);

  // "MiB (unce, unkd x10, init_balanced)", "LwF-MC (bce, icarl x10)"; stored in checkpoints and logs.
  std::string describe() const;
  bool uses_teacher() const;  // some term reads the previous step's model (at steps >= 1)
  void validate() const;  // throws naming the flag (both, for a contradictory pair)
};

// The preset names, in the order --help lists them.
std::vector<std::string> method_names();
// The preset `name` for `task` (lambda_kd depends on the task for MiB) under `convention` (EWC's
// and PI's reg_importance: MiB's 500, the PLOP repository's 100); throws listing the names.
// PLOP's factors depend on the dataset: VOC's from --method PLOP (0.01, logits 0.0005), ADE20K's from
// PLOP's ADE scripts (0.001, logits 0.00001); its pseudo-label median is PLOP's arithmetic under
// --convention plop and the true median under mib.
MethodConfig method_preset(const std::string& name, const Task& task, Convention convention = Convention::plop);

// Changes a preset term by term (MiB's flags); each set field replaces the preset's value.
struct MethodOverrides {
  std::optional<double> loss_kd, loss_de, alpha, icarl_importance, reg_importance, reg_alpha;
  std::optional<int64_t> reg_iterations;
  std::optional<int> share_stages;
  std::optional<bool> unce, unkd, init_balanced, icarl, icarl_disjoint, icarl_bkg, reg_no_normalize, freeze_backbone,
      freeze_old_classifier;
  std::optional<bool> pod, pod_logits, pseudo, classif_adaptive_factor;
  std::optional<double> pod_factor, pod_logits_factor, pseudo_threshold;
  std::optional<PseudoMedian> pseudo_median;
  std::optional<double> kd_temperature;
  std::optional<DistillationLoss> kd_loss;
  std::optional<bool> kd_exclude_background;
  bool any() const {
    return loss_kd || loss_de || alpha || icarl_importance || unce || unkd || init_balanced || icarl ||
           icarl_disjoint || icarl_bkg || reg_importance || reg_alpha || reg_iterations || reg_no_normalize ||
           freeze_backbone || freeze_old_classifier || pod || pod_logits || pseudo || classif_adaptive_factor ||
           pod_factor || pod_logits_factor || pseudo_threshold || pseudo_median || kd_temperature || kd_loss ||
           kd_exclude_background || share_stages;
  }
};
// Throws (naming both flags) when an override contradicts the result: --icarl-importance without
// --icarl or with --icarl-disjoint; --reg-importance or --reg-no-normalize without a regulariser
// (--method EWC, PI or RW), --reg-alpha with PI (no Fisher estimate), --reg-iterations with EWC or PI
// (RW's only); --kd-temperature, --kd-loss or --kd-exclude-background without a kd or unkd term;
// besides MethodConfig::validate's checks.
MethodConfig apply_overrides(MethodConfig config, const MethodOverrides& overrides);

enum class LossKind {
  cross_entropy,
  unbiased_cross_entropy,
  knowledge_distillation,
  unbiased_knowledge_distillation,
  feature_distillation,
  icarl_bce,
  icarl_distillation,
  icarl_disjoint,
  icarl_disjoint_bkg,
  pseudo_cross_entropy,  // PLOP: CE on the pseudo-labels, each image weighted by γ with classif_adaptive_factor
  local_pod,             // PLOP: Local POD over the stage pre-activations, head output and logits
  auxiliary,             // PSPNet, BiSeNet: the classification term on each aux head's logits, weighted loss_aux
};

struct LossTerm {
  LossKind kind;
  const char* name;  // "ce", "unce", "bce", "icarl_disjoint", "kd", "unkd", "icarl", "de", "pseudo_ce", "pod": log keys
  double weight;
};

// One batch's loss. The values stay on the logits' device: reading them is a host synchronisation,
// which the trainer does once per logging interval, never inside the step.
struct LossBreakdown {
  Tensor total;                    // scalar, differentiable: the sum of the weighted terms
  std::vector<std::string> names;  // the active terms in order (LossTerm::name)
  Tensor values;                   // (K) for K names, detached, the logits' dtype and device: each weighted term
};

class Method {
 public:
  explicit Method(MethodConfig config);

  const MethodConfig& config() const { return config_; }
  std::vector<LossTerm> terms(int step) const;
  bool needs_teacher(int step) const;
  // What step t's student and teacher forwards must return (see the file comment).
  models::ForwardOptions forward_options(int step) const;

  // PLOP's pseudo-labels: whether step t needs the thresholds, and setting them (computed before the
  // step trains, StepSession::compute_pseudo_label_thresholds, or restored from a checkpoint of the
  // step by load_state). loss() throws when they are needed and missing.
  bool needs_pseudo_thresholds(int step) const { return step >= 1 && config_.pseudo; }
  void set_pseudo_thresholds(PseudoLabelThresholds thresholds);
  const std::optional<PseudoLabelThresholds>& pseudo_thresholds() const { return thresholds_; }

  // Whether step 0 trains exactly as FT's (plain cross-entropy, no importance to accumulate), so
  // that methods may share one step-0 checkpoint (as MiB's 15-5 and 15-1 share one, SPEC §1.3).
  bool step0_is_fine_tuning() const;

  // The hook run once the step-t model holds the previous step's weights (nothing at step 0).
  void on_step_start(models::SegmentationModel& model, int step) const;

  // The weighted loss of one batch. student: the model's forward with forward_options(step)
  // (logits (N,H,W,C_tot), body (N,h,w,C_body) for the de term); teacher: the teacher's forward
  // with the same options (logits (N,H,W,C_old), body), required when needs_teacher(step), else
  // may be null; labels (N,H,W) after the step's label table; old_channels = C_old of the step.
  // Throws when the teacher or a map a term needs is missing, and the losses' own errors.
  LossBreakdown loss(const models::ForwardResult& student, const models::ForwardResult* teacher,
                     const Tensor& labels, int64_t old_channels, int step) const;

  // EWC/PI/RW: builds the step's importance accumulators once `model` (on the step's device) holds
  // its starting weights; at step >= 1 `previous_weights` and `previous` are the step t-1
  // checkpoint's model and method side, `source` its path (incremental/regularizer.h's errors).
  // Nothing for the other methods.
  void start_step(models::SegmentationModel& model, int step, const TensorMap* previous_weights,
                  const PreviousMethod& previous, const std::string& source);
  bool has_regularizer() const { return regularizer_ != nullptr; }
  // After the loss's backward, before SGD's step: EWC/PI/RW's importance update from the loss's
  // gradients, then at steps >= 1 the "reg" term's gradient added to them (fused_losses: one fused
  // kernel per parameter; else penalty() as an autograd op and its own backward, as train.py).
  // Returns reg_importance · Σ ŵ(θ − θ_old)², detached on the step's device, or undefined (step 0,
  // no regulariser). Reads nothing back to the host.
  Tensor regularize();

  // Method state for the step checkpoint (tensor names without prefix): the regulariser's
  // (incremental/regularizer.h) and PLOP's pseudo-label thresholds ("pseudo_*",
  // incremental/pseudo_labels.h); empty for the other methods.
  TensorMap state() const;
  // Restores state() from a checkpoint of this step written after `iteration` iterations; state this
  // method does not carry is an error naming it (a checkpoint of another method resumed under this one).
  void load_state(const TensorMap& state, const std::string& source, int64_t iteration);

 private:
  // The terms `active` (no auxiliary one) on `student`'s logits, fused or not.
  LossBreakdown terms_loss(const std::vector<LossTerm>& active, const models::ForwardResult& student,
                           const models::ForwardResult* teacher, const Tensor& labels, int64_t old_channels,
                           int step) const;
  LossBreakdown fused_loss(const std::vector<LossTerm>& active, const models::ForwardResult& student,
                           const models::ForwardResult* teacher, const Tensor& labels, int64_t old_channels,
                           int step) const;
  Tensor feature_distillation_term(const models::ForwardResult& student, const models::ForwardResult* teacher,
                                   int step) const;
  Tensor fused_distillation(const LossTerm& term, const models::ForwardResult& student, const Tensor& teacher_logits,
                            const Tensor& labels) const;
  // PLOP's pseudo-labels and adaptive factor for this batch (engine/ops/pseudo_labels.h).
  PseudoLabels pseudo_labels(const models::ForwardResult& student, const models::ForwardResult* teacher,
                             const Tensor& labels, int step) const;
  Tensor local_pod_term(const models::ForwardResult& student, const models::ForwardResult* teacher,
                        int64_t old_channels, int step) const;

  MethodConfig config_;
  std::unique_ptr<WeightRegularizer> regularizer_;
  std::optional<PseudoLabelThresholds> thresholds_;
  mutable Tensor thresholds_on_device_;  // thresholds_ as the op reads them, uploaded once
};

}  // namespace strata::incremental
