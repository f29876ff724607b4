#include "incremental/method.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <sstream>

#include "engine/ops/channels.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/fused_losses.h"
#include "engine/ops/losses.h"
#include "engine/ops/reduce.h"
#include "engine/ops/softmax.h"
#include "incremental/losses.h"
#include "incremental/recipe.h"

namespace strata::incremental {

namespace {

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
  return text;
}

std::string number(double value) {
  std::ostringstream out;
  out << value;
  return out.str();
}

}  // namespace

std::string MethodConfig::describe() const {
  std::vector<std::string> parts;
  if (unce) parts.push_back("unce");
  if (icarl) {
    parts.push_back("bce");
    if (icarl_disjoint) {
      parts.push_back(icarl_bkg ? "icarl disjoint bkg" : "icarl disjoint");
    } else if (icarl_importance > 0) {
      parts.push_back(cat("icarl x", number(icarl_importance)));
    }
  }
  if (loss_kd > 0) {
    std::string term = cat(unkd ? "unkd x" : "kd x", number(loss_kd));
    if (kd.loss != DistillationLoss::cross_entropy) term += cat(" ", distillation_loss_name(kd.loss));
    if (kd.temperature != 1.0) term += cat(" T", number(kd.temperature));
    if (!kd.include_background) term += " no background";
    parts.push_back(term);
  }
  if (loss_de > 0) parts.push_back(cat("de x", number(loss_de)));
  if (init_balanced) parts.push_back("init_balanced");
  if (alpha != 1.0) parts.push_back(cat("alpha ", number(alpha)));
  const RegularizerSettings& r = regularizer;
  if (r.kind != RegularizerKind::none) {
    std::string reg = cat(lower(regularizer_name(r.kind)), " x", number(r.importance));
    if (r.kind != RegularizerKind::pi) reg += cat(" alpha ", number(r.alpha));
    if (r.kind == RegularizerKind::rw) reg += cat(" every ", r.iterations);
    if (!r.normalize) reg += " unnormalized";
    parts.push_back(reg);
  }
  if (pseudo) {
    parts.push_back(
        cat("pseudo-labels (", to_string(pseudo_median), " median, threshold >= ", number(pseudo_threshold), ")"));
  }
  if (classif_adaptive_factor) parts.push_back("classif_adaptive_factor");
  if (pod) {
    parts.push_back(pod_logits ? cat("local pod x", number(pod_factor), ", logits x", number(pod_logits_factor))
                               : cat("local pod x", number(pod_factor)));
  }
  if (share_stages > 0) parts.push_back(cat("stages 1-", share_stages, " shared"));
  if (freeze_backbone) parts.push_back("backbone frozen");
  if (freeze_old_classifier) parts.push_back("old classifier frozen");
  if (parts.empty()) parts.push_back("ce only");
  std::string out = name + " (";
  for (size_t i = 0; i < parts.size(); ++i) out += (i ? ", " : "") + parts[i];
  return out + ")";
}

void MethodConfig::validate() const {
  check(std::isfinite(loss_kd) && loss_kd >= 0, "method ", name, ": --loss-kd must be >= 0, got ", loss_kd);
  check(std::isfinite(loss_de) && loss_de >= 0, "method ", name, ": --loss-de must be >= 0, got ", loss_de);
  check(std::isfinite(alpha) && alpha > 0, "method ", name, ": --alpha must be > 0, got ", alpha);
  check(std::isfinite(kd.temperature) && kd.temperature > 0, "method ", name, ": --kd-temperature must be > 0, got ",
        kd.temperature);
  check(!(unkd && kd.loss == DistillationLoss::l2), "method ", name,
        ": --unkd (MiB's unbiased KD) folds the new classes into background inside a cross-entropy and has no L2 "
        "form; --kd-loss l2 needs the plain KD (drop --unkd or choose --kd-loss ce or kl)");
  check(!(unkd && !kd.include_background), "method ", name,
        ": --unkd distils background folded with the new classes; --kd-exclude-background would drop exactly "
        "that channel: choose one");
  check(std::isfinite(icarl_importance) && icarl_importance >= 0, "method ", name,
        ": --icarl-importance must be >= 0, got ", icarl_importance);
  check(!(icarl && unce), "method ", name,
        ": --unce and --icarl (LwF-MC) both replace the classification loss (unbiased CE, one-hot BCE); MiB's code "
        "silently keeps only the BCE, so choose one");
  check(!icarl_disjoint || icarl, "method ", name,
        ": --icarl-disjoint selects a variant of LwF-MC's distillation and needs --icarl (or --method LwF-MC)");
  check(!icarl_bkg || icarl_disjoint, "method ", name,
        ": --icarl-bkg changes the targets of --icarl-disjoint's BCE only and needs --icarl-disjoint");
  check(std::isfinite(regularizer.importance) && regularizer.importance >= 0, "method ", name,
        ": --reg-importance must be >= 0, got ", regularizer.importance);
  check(std::isfinite(regularizer.alpha) && regularizer.alpha > 0 && regularizer.alpha <= 1, "method ", name,
        ": --reg-alpha (the Fisher EMA's weight of g^2) must be in (0, 1], got ", regularizer.alpha);
  check(regularizer.iterations >= 1, "method ", name, ": --reg-iterations must be >= 1, got ", regularizer.iterations);
  check(std::isfinite(pod_factor) && pod_factor >= 0, "method ", name, ": --pod-factor must be >= 0, got ", pod_factor);
  check(std::isfinite(pod_logits_factor) && pod_logits_factor >= 0, "method ", name,
        ": --pod-logits-factor must be >= 0, got ", pod_logits_factor);
  check(std::isfinite(pseudo_threshold) && pseudo_threshold >= 0 && pseudo_threshold < 1, "method ", name,
        ": --threshold (the pseudo-label entropy thresholds' floor) must be in [0, 1), got ", pseudo_threshold);
  check(!pod_logits || pod, "method ", name,
        ": --pod-logits adds the logits to Local POD's maps and needs --pod local");
  check(!classif_adaptive_factor || pseudo, "method ", name,
        ": --classif-adaptive-factor weighs each image by its share of pseudo-labelled background and needs "
        "--pseudo entropy");
  check(!(pseudo && unce), "method ", name,
        ": --pseudo and --unce both redefine the background pixels' target (the teacher's class, or the old "
        "classes merged into background); choose one");
  check(share_stages >= 0 && share_stages <= 4, "method ", name,
        ": --share-stages is a number of ResNet stages, 0 to 4, got ", share_stages);
  check(share_stages == 0 || uses_teacher(), "method ", name,
        ": --share-stages shares the first stages between the teacher and the student, and this method runs no "
        "teacher; --freeze-backbone freezes the backbone without one");
  check(!(pseudo && icarl), "method ", name,
        ": --pseudo labels background pixels for the cross-entropy, which --icarl (LwF-MC) replaces by a BCE; "
        "choose one");
}

std::vector<std::string> method_names() { return {"FT", "LwF", "LwF-MC", "ILT", "EWC", "PI", "RW", "MiB", "PLOP"}; }

MethodConfig method_preset(const std::string& name, const Task& task, Convention convention) {
  MethodConfig config;
  const std::string key = lower(name);
  if (key == "ft") {
    config.name = "FT";
  } else if (key == "lwf") {
    config.name = "LwF";
    config.loss_kd = 100;
  } else if (key == "lwf-mc") {
    config.name = "LwF-MC";
    config.icarl = true;
    config.icarl_importance = 10;
  } else if (key == "ilt") {
    config.name = "ILT";
    config.loss_kd = 100;
    config.loss_de = 100;
  } else if (key == "mib") {
    config.name = "MiB";
    config.unce = true;
    config.unkd = true;
    config.init_balanced = true;
    config.loss_kd = mib_kd_weight(task);
  } else if (key == "ewc" || key == "pi" || key == "rw") {
    // MiB's argparser; the PLOP repository's lowers EWC's and PI's reg_importance to 100.
    RegularizerSettings& r = config.regularizer;
    if (key == "ewc") {
      config.name = "EWC";
      r.kind = RegularizerKind::ewc;
      r.importance = convention == Convention::plop ? 100 : 500;
    } else if (key == "pi") {
      config.name = "PI";
      r.kind = RegularizerKind::pi;
      r.importance = convention == Convention::plop ? 100 : 500;
    } else {
      config.name = "RW";
      r.kind = RegularizerKind::rw;
      r.importance = 100;
    }
    r.alpha = 0.9;
    r.iterations = 10;
  } else if (key == "plop") {
    // --method PLOP in PLOP's argparser (VOC); PLOP's ADE scripts set the pod factors themselves.
    config.name = "PLOP";
    const bool ade = task.labels().kind == data::DatasetKind::ade20k;
    config.pod = true;
    config.pod_factor = ade ? 0.001 : 0.01;
    config.pod_logits = true;
    config.pod_logits_factor = ade ? 0.00001 : 0.0005;
    config.pseudo = true;
    config.pseudo_median = convention == Convention::plop ? PseudoMedian::reference : PseudoMedian::fixed;
    config.pseudo_threshold = kPlopMinimumThreshold;
    config.classif_adaptive_factor = true;
    config.init_balanced = true;
  } else {
    std::string names;
    for (const std::string& n : method_names()) names += (names.empty() ? "" : ", ") + n;
    throw Error(cat("unknown method '", name, "' (expected one of ", names, "; case-insensitive)"));
  }
  return config;
}

MethodConfig apply_overrides(MethodConfig config, const MethodOverrides& overrides) {
  if (overrides.any()) config.name += "+";
  if (overrides.loss_kd) config.loss_kd = *overrides.loss_kd;
  if (overrides.loss_de) config.loss_de = *overrides.loss_de;
  if (overrides.alpha) config.alpha = *overrides.alpha;
  if (overrides.kd_temperature) config.kd.temperature = *overrides.kd_temperature;
  if (overrides.kd_loss) config.kd.loss = *overrides.kd_loss;
  if (overrides.kd_exclude_background) config.kd.include_background = !*overrides.kd_exclude_background;
  if (overrides.unce) config.unce = *overrides.unce;
  if (overrides.unkd) config.unkd = *overrides.unkd;
  if (overrides.init_balanced) config.init_balanced = *overrides.init_balanced;
  if (overrides.icarl) config.icarl = *overrides.icarl;
  if (overrides.icarl_importance) config.icarl_importance = *overrides.icarl_importance;
  if (overrides.icarl_disjoint) config.icarl_disjoint = *overrides.icarl_disjoint;
  if (overrides.icarl_bkg) config.icarl_bkg = *overrides.icarl_bkg;
  RegularizerSettings& r = config.regularizer;
  if (overrides.reg_importance) r.importance = *overrides.reg_importance;
  if (overrides.reg_alpha) r.alpha = *overrides.reg_alpha;
  if (overrides.reg_iterations) r.iterations = *overrides.reg_iterations;
  if (overrides.reg_no_normalize) r.normalize = !*overrides.reg_no_normalize;
  if (overrides.freeze_backbone) config.freeze_backbone = *overrides.freeze_backbone;
  if (overrides.share_stages) config.share_stages = *overrides.share_stages;
  if (overrides.freeze_old_classifier) config.freeze_old_classifier = *overrides.freeze_old_classifier;
  if (overrides.pod) config.pod = *overrides.pod;
  if (overrides.pod_factor) config.pod_factor = *overrides.pod_factor;
  if (overrides.pod_logits) config.pod_logits = *overrides.pod_logits;
  if (overrides.pod_logits_factor) config.pod_logits_factor = *overrides.pod_logits_factor;
  if (overrides.pseudo) config.pseudo = *overrides.pseudo;
  if (overrides.pseudo_median) config.pseudo_median = *overrides.pseudo_median;
  if (overrides.pseudo_threshold) config.pseudo_threshold = *overrides.pseudo_threshold;
  if (overrides.classif_adaptive_factor) config.classif_adaptive_factor = *overrides.classif_adaptive_factor;
  config.validate();
  check(!overrides.pod_factor || config.pod, "method ", config.name,
        ": --pod-factor weighs Local POD and needs --pod local (or --method PLOP)");
  check(!overrides.pod_logits_factor || config.pod_logits, "method ", config.name,
        ": --pod-logits-factor weighs Local POD on the logits and needs --pod-logits (or --method PLOP)");
  check(!overrides.pseudo_median || config.pseudo, "method ", config.name,
        ": --pseudo-median chooses how the pseudo-label thresholds are read and needs --pseudo entropy (or --method "
        "PLOP)");
  check(!overrides.pseudo_threshold || config.pseudo, "method ", config.name,
        ": --threshold floors the pseudo-label thresholds and needs --pseudo entropy (or --method PLOP)");
  const bool regularizer = r.kind != RegularizerKind::none;
  const std::string method = cat("--method ", config.name.substr(0, config.name.find('+')));
  for (const auto& [set, flag] : {std::pair{overrides.kd_temperature.has_value(), "--kd-temperature"},
                                  std::pair{overrides.kd_loss.has_value(), "--kd-loss"},
                                  std::pair{overrides.kd_exclude_background.has_value(), "--kd-exclude-background"}}) {
    check(!set || config.loss_kd > 0, "method ", config.name, ": ", flag,
          " changes the output distillation (kd or unkd), which ", method,
          " does not have: add --loss-kd (or use LwF, ILT or MiB)");
  }
  check(!overrides.reg_importance || regularizer, "method ", config.name,
        ": --reg-importance weighs the penalty of a weight regulariser and needs --method EWC, PI or RW, not ", method);
  check(!overrides.reg_no_normalize || regularizer, "method ", config.name,
        ": --reg-no-normalize changes a weight regulariser's importance and needs --method EWC, PI or RW, not ",
        method);
  check(!overrides.reg_alpha || r.kind == RegularizerKind::ewc || r.kind == RegularizerKind::rw, "method ", config.name,
        ": --reg-alpha weighs the Fisher estimate of EWC and RW; ", method,
        " has none, so it would be ignored: drop one");
  check(!overrides.reg_iterations || r.kind == RegularizerKind::rw, "method ", config.name,
        ": --reg-iterations sets how often RW's path score updates; ", method,
        " has no such update, so it would be ignored: drop one");
  if (overrides.icarl_importance) {
    check(config.icarl, "method ", config.name,
          ": --icarl-importance weighs LwF-MC's distillation and needs --icarl (or --method LwF-MC)");
    check(!config.icarl_disjoint, "method ", config.name,
          ": --icarl-importance has no effect with --icarl-disjoint, whose single BCE has no weight (MiB ignores it "
          "there); drop one");
  }
  return config;
}

Method::Method(MethodConfig config) : config_(std::move(config)) { config_.validate(); }

void Method::start_step(models::SegmentationModel& model, int step, const TensorMap* previous_weights,
                        const PreviousMethod& previous, const std::string& source) {
  regularizer_.reset();
  if (config_.regularizer.kind == RegularizerKind::none) return;
  regularizer_ = std::make_unique<WeightRegularizer>(config_.regularizer, model.named_parameters(), step,
                                                     previous_weights, previous, source);
}

Tensor Method::regularize() {
  if (!regularizer_) return Tensor();
  if (config_.fused_losses) return regularizer_->update_and_penalize();
  regularizer_->update();
  Tensor penalty = regularizer_->penalty();
  if (!penalty.defined()) return penalty;
  penalty.backward();
  return penalty.detach();
}

TensorMap Method::state() const {
  TensorMap out = regularizer_ ? regularizer_->state() : TensorMap();
  if (thresholds_) {
    for (auto& [name, tensor] : thresholds_->state()) out.emplace(name, tensor);
  }
  return out;
}

std::vector<LossTerm> Method::terms(int step) const {
  std::vector<LossTerm> out;
  const bool icarl_disjoint = step >= 1 && config_.icarl && config_.icarl_disjoint;
  if (icarl_disjoint) {
    out.push_back(config_.icarl_bkg ? LossTerm{LossKind::icarl_disjoint_bkg, "icarl_disjoint", 1.0}
                                    : LossTerm{LossKind::icarl_disjoint, "icarl_disjoint", 1.0});
  } else if (config_.icarl) {
    out.push_back({LossKind::icarl_bce, "bce", 1.0});
  } else if (step >= 1 && config_.unce) {
    out.push_back({LossKind::unbiased_cross_entropy, "unce", 1.0});
  } else if (step >= 1 && config_.pseudo) {
    out.push_back({LossKind::pseudo_cross_entropy, "pseudo_ce", 1.0});
  } else {
    out.push_back({LossKind::cross_entropy, "ce", 1.0});
  }
  if (step >= 1 && config_.loss_kd > 0) {
    out.push_back(config_.unkd ? LossTerm{LossKind::unbiased_knowledge_distillation, "unkd", config_.loss_kd}
                               : LossTerm{LossKind::knowledge_distillation, "kd", config_.loss_kd});
  }
  if (step >= 1 && config_.icarl && !config_.icarl_disjoint && config_.icarl_importance > 0) {
    out.push_back({LossKind::icarl_distillation, "icarl", config_.icarl_importance});
  }
  if (step >= 1 && config_.loss_de > 0) out.push_back({LossKind::feature_distillation, "de", config_.loss_de});
  // Its factors are inside the term (one per map).
  if (step >= 1 && config_.pod) out.push_back({LossKind::local_pod, "pod", 1.0});
  if (config_.loss_aux > 0) out.push_back({LossKind::auxiliary, "aux", config_.loss_aux});
  return out;
}

bool Method::step0_is_fine_tuning() const {
  const std::vector<LossTerm> step0 = terms(0);
  return step0.size() == 1 && step0[0].kind == LossKind::cross_entropy &&
         config_.regularizer.kind == RegularizerKind::none;
}

void MethodConfig::adapt_to(const models::ModelConfig& model) {
  // semseg's --aux_weight for PSPNet (loss = main + 0.4 x aux); CoinCheung/BiSeNet's
  // loss = main + aux16 + aux32.
  switch (model.arch) {
    case models::Architecture::pspnet: loss_aux = 0.4; break;
    case models::Architecture::bisenet: loss_aux = 1.0; break;
    case models::Architecture::deeplabv3:
    case models::Architecture::deeplabv3plus: loss_aux = 0; break;
  }
  align_corners = model.align_corners();
}

bool MethodConfig::uses_teacher() const {
  const bool icarl_teacher = icarl && (icarl_disjoint || icarl_importance > 0);
  return loss_kd > 0 || loss_de > 0 || icarl_teacher || pod || pseudo;
}

bool Method::needs_teacher(int step) const { return step >= 1 && config_.uses_teacher(); }

models::ForwardOptions Method::forward_options(int step) const {
  models::ForwardOptions options;
  options.body = step >= 1 && config_.loss_de > 0;
  options.upsample = !config_.fused_losses;
  if (step >= 1 && config_.pod) {
    options.stage_pre_activations = true;
    options.head = true;
    options.low_res_logits = options.low_res_logits || config_.pod_logits;
  }
  // The pseudo-labels read the teacher's low-resolution logits on either path.
  if (step >= 1 && config_.pseudo) options.low_res_logits = true;
  if (step >= 1) options.shared_stages = config_.share_stages;
  options.aux_logits = config_.loss_aux > 0;
  return options;
}

void Method::set_pseudo_thresholds(PseudoLabelThresholds thresholds) {
  check(config_.pseudo, "method ", config_.describe(), ": pseudo-label thresholds given to a method without --pseudo");
  check(thresholds.median == config_.pseudo_median, "method ", config_.describe(), ": pseudo-label thresholds of the ",
        to_string(thresholds.median), " median given to a method using the ", to_string(config_.pseudo_median), " one");
  thresholds_ = std::move(thresholds);
  thresholds_on_device_ = Tensor();
}

void Method::on_step_start(models::SegmentationModel& model, int step) const {
  if (step == 0) return;
  const std::vector<models::IncrementalClassifier*> aux_classifiers = model.aux_classifiers();
  if (config_.init_balanced) {
    model.classifier().init_balanced_new_step();
    for (models::IncrementalClassifier* aux : aux_classifiers) aux->init_balanced_new_step();
  }
  if (config_.freeze_backbone) {
    for (auto& [name, parameter] : model.backbone().named_parameters()) parameter.set_requires_grad(false);
  }
  for (auto& [name, parameter] : model.backbone().parameters_through_stage(config_.share_stages)) {
    parameter.set_requires_grad(false);
  }
  if (config_.freeze_old_classifier) {
    for (int64_t k = 0; k < model.classifier().steps() - 1; ++k) {
      for (auto& [name, parameter] : model.classifier().step(k).named_parameters()) parameter.set_requires_grad(false);
      for (models::IncrementalClassifier* aux : aux_classifiers) {
        for (auto& [name, parameter] : aux->step(k).named_parameters()) parameter.set_requires_grad(false);
      }
    }
  }
}

namespace {

// The fused op's term for a logit term of the method.
PixelLoss pixel_loss(LossKind kind) {
  switch (kind) {
    case LossKind::cross_entropy: return PixelLoss::cross_entropy;
    case LossKind::unbiased_cross_entropy: return PixelLoss::unbiased_cross_entropy;
    case LossKind::knowledge_distillation: return PixelLoss::knowledge_distillation;
    case LossKind::unbiased_knowledge_distillation: return PixelLoss::unbiased_knowledge_distillation;
    case LossKind::icarl_bce: return PixelLoss::icarl_bce;
    case LossKind::icarl_distillation: return PixelLoss::icarl_distillation;
    case LossKind::icarl_disjoint: return PixelLoss::icarl_disjoint;
    case LossKind::icarl_disjoint_bkg: return PixelLoss::icarl_disjoint_bkg;
    case LossKind::pseudo_cross_entropy: return PixelLoss::cross_entropy;
    case LossKind::feature_distillation:
    case LossKind::local_pod:
    case LossKind::auxiliary: break;
  }
  throw Error("pixel_loss: feature_distillation, local_pod and auxiliary are not logit terms");
}

bool is_logit_term(LossKind kind) {
  return kind != LossKind::feature_distillation && kind != LossKind::local_pod &&
         kind != LossKind::pseudo_cross_entropy && kind != LossKind::auxiliary;
}

}  // namespace

// The logit terms in one fused op; PLOP's pseudo-label CE in its own (its labels and image weights
// are its alone), and so kd or unkd under the kd knobs; the de and pod terms on their own. The values
// in the terms' order.
LossBreakdown Method::fused_loss(const std::vector<LossTerm>& active, const models::ForwardResult& student,
                                 const models::ForwardResult* teacher, const Tensor& labels, int64_t old_channels,
                                 int step) const {
  check(student.low_res_logits.defined(), "method ", config_.describe(),
        ": the fused losses need the student's low-resolution logits (ForwardOptions::upsample = false)");
  FusedLossOptions options;
  options.old_channels = old_channels;
  options.alpha = config_.alpha;
  options.align_corners = config_.align_corners;
  const Tensor teacher_logits = teacher ? teacher->low_res_logits : Tensor();
  // The kd and unkd terms under non-default knobs run on their own inputs (distillation_inputs).
  const bool kd_alone = !config_.kd.references();
  auto distils = [](LossKind kind) {
    return kind == LossKind::knowledge_distillation || kind == LossKind::unbiased_knowledge_distillation;
  };
  std::vector<FusedLossTerm> logit_terms;
  std::vector<std::string> logit_names;
  for (const LossTerm& term : active) {
    if (is_logit_term(term.kind) && !(kd_alone && distils(term.kind))) {
      logit_terms.push_back({pixel_loss(term.kind), term.weight, Reduction::mean_all});
      logit_names.emplace_back(term.name);
    }
  }
  LossBreakdown out;
  std::vector<Tensor> values;
  // The weighted values of the terms `names`, in the calls' order.
  auto append = [&](const Tensor& weighted, const std::vector<std::string>& names) {
    values.push_back(weighted.detach().reshape({weighted.numel()}));
    out.names.insert(out.names.end(), names.begin(), names.end());
    out.total = out.total.defined() ? add(out.total, sum(weighted)) : sum(weighted);
  };
  // terms() puts the classification term first, so the pseudo-label CE precedes the logit terms.
  for (const LossTerm& term : active) {
    if (term.kind != LossKind::pseudo_cross_entropy) continue;
    const PseudoLabels pseudo = pseudo_labels(student, teacher, labels, step);
    FusedLossOptions weighted = options;
    if (config_.classif_adaptive_factor) weighted.image_weights = pseudo.image_weights;
    append(fused_losses(student.low_res_logits, Tensor(), pseudo.labels,
                        {{PixelLoss::cross_entropy, term.weight, Reduction::mean_all}}, weighted),
           {term.name});
  }
  if (!logit_terms.empty()) {
    append(fused_losses(student.low_res_logits, teacher_logits, labels, logit_terms, options), logit_names);
  }
  for (const LossTerm& term : active) {
    if (kd_alone && distils(term.kind)) append(fused_distillation(term, student, teacher_logits, labels), {term.name});
  }
  // de and pod come last in terms(), in this order.
  for (const LossTerm& term : active) {
    if (term.kind == LossKind::feature_distillation) {
      append(scale(feature_distillation_term(student, teacher, step), term.weight), {term.name});
    } else if (term.kind == LossKind::local_pod) {
      append(scale(local_pod_term(student, teacher, old_channels, step), term.weight), {term.name});
    }
  }
  out.values = values.size() == 1 ? values[0] : concat(values);
  // Back to the terms' order where a kd term under the knobs came after a later logit term (icarl).
  std::vector<std::string> ordered;
  for (const LossTerm& term : active) ordered.emplace_back(term.name);
  if (out.names != ordered) {
    std::vector<Tensor> pieces;
    for (const std::string& name : ordered) {
      const auto at = std::find(out.names.begin(), out.names.end(), name) - out.names.begin();
      pieces.push_back(slice(out.values, at, at + 1));
    }
    out.values = concat(pieces);
    out.names = std::move(ordered);
  }
  return out;
}

// The kd or unkd term under the kd knobs, fused on the knobs' inputs (incremental/losses.h's
// distillation_inputs: low-resolution logits sliced and scaled, which commutes with the upsampling);
// the KL divergence is the soft cross-entropy less the teacher's entropy, a second fused call on the
// teacher's logits alone with no gradient. Neither call reads a label, and their channels are not the
// labels' classes (C_tot − 1 without background, C_old for the entropy), so they get a map of the
// labels' size whose every pixel is ignore_index: one byte per pixel, filled on the device. The value
// is the term's weighted loss, shape (1).
Tensor Method::fused_distillation(const LossTerm& term, const models::ForwardResult& student,
                                  const Tensor& teacher_logits, const Tensor& labels) const {
  const DistillationInputs in = distillation_inputs(student.low_res_logits, teacher_logits, config_.alpha, config_.kd);
  FusedLossOptions options;
  options.old_channels = in.old_channels;
  options.alpha = in.alpha;
  options.align_corners = config_.align_corners;
  const double weight = term.weight * in.factor;
  const Tensor unlabelled =
      Tensor::full(labels.shape(), static_cast<double>(options.ignore_index), DType::u8, labels.device());
  PixelLoss kind = term.kind == LossKind::unbiased_knowledge_distillation ? PixelLoss::unbiased_knowledge_distillation
                                                                          : PixelLoss::knowledge_distillation;
  if (config_.kd.loss == DistillationLoss::l2) kind = PixelLoss::knowledge_distillation_l2;
  Tensor value = fused_losses(in.logits, in.teacher_logits, unlabelled, {{kind, weight, Reduction::mean_all}}, options);
  if (config_.kd.loss != DistillationLoss::kl_divergence) return value;
  const Tensor scaled_teacher = scale(in.teacher_logits.detach(), in.alpha);
  FusedLossOptions entropy = options;
  entropy.alpha = 1.0;
  return sub(value, fused_losses(scaled_teacher, scaled_teacher, unlabelled,
                                 {{PixelLoss::knowledge_distillation, weight, Reduction::mean_all}}, entropy));
}

PseudoLabels Method::pseudo_labels(const models::ForwardResult& student, const models::ForwardResult* teacher,
                                   const Tensor& labels, int step) const {
  check(thresholds_.has_value(), "method ", config_.describe(), ": step ", step,
        " needs PLOP's pseudo-label thresholds, computed over the step's training data before it trains "
        "(StepSession::compute_pseudo_label_thresholds) or restored from the step's checkpoint");
  check(teacher != nullptr && teacher->low_res_logits.defined(), "method ", config_.describe(), ": step ", step,
        " needs the teacher's low-resolution logits for its pseudo-labels");
  const Tensor& logits = teacher->low_res_logits;
  if (!thresholds_on_device_.defined() || thresholds_on_device_.dtype() != logits.dtype() ||
      !(thresholds_on_device_.device() == logits.device())) {
    thresholds_on_device_ = thresholds_->tensor(logits.dtype(), logits.device());
  }
  PseudoLabelOptions options;
  options.total_channels = student.low_res_logits.defined() ? student.low_res_logits.size(3) : student.logits.size(3);
  options.median = config_.pseudo_median;
  options.align_corners = config_.align_corners;
  return entropy_pseudo_labels(logits, labels, thresholds_on_device_, options);
}

Tensor Method::local_pod_term(const models::ForwardResult& student, const models::ForwardResult* teacher,
                              int64_t old_channels, int step) const {
  check(teacher != nullptr && student.head.defined() && teacher->head.defined() &&
            student.stage_pre_activations[0].defined() && teacher->stage_pre_activations[0].defined(),
        "method ", config_.describe(), ": step ", step,
        " needs the stage pre-activations and head outputs of the student and the teacher (ForwardOptions)");
  std::vector<Tensor> teacher_maps, student_maps;
  std::vector<double> factors;
  for (size_t i = 0; i < student.stage_pre_activations.size(); ++i) {
    teacher_maps.push_back(teacher->stage_pre_activations[i]);
    student_maps.push_back(student.stage_pre_activations[i]);
    factors.push_back(config_.pod_factor);
  }
  teacher_maps.push_back(teacher->head);
  student_maps.push_back(student.head);
  factors.push_back(config_.pod_factor);
  if (config_.pod_logits) {
    check(student.low_res_logits.defined() && teacher->low_res_logits.defined(), "method ", config_.describe(),
          ": step ", step, " needs the low-resolution logits of the student and the teacher for --pod-logits");
    teacher_maps.push_back(teacher->low_res_logits);
    student_maps.push_back(student.low_res_logits);
    factors.push_back(config_.pod_logits_factor);
  }
  const int64_t total = (student.low_res_logits.defined() ? student.low_res_logits : student.logits).size(3);
  // The smallest map: the head's at the output stride for DeepLabV3, stage 4's for a backbone at a
  // coarser stride than the head (BiSeNet's at 32 against its head's 8).
  const char* map_names[] = {"stage 1", "stage 2", "stage 3", "stage 4", "the head's output", "the logits"};
  size_t smallest = 0;
  for (size_t i = 1; i < student_maps.size(); ++i) {
    if (student_maps[i].size(1) * student_maps[i].size(2) <
        student_maps[smallest].size(1) * student_maps[smallest].size(2)) {
      smallest = i;
    }
  }
  const Tensor& map = student_maps[smallest];
  check(map.size(1) >= 4 && map.size(2) >= 4, "method ", config_.describe(),
        ": Local POD's windows at scale 4 need feature maps of at least 4x4 pixels, but ", map_names[smallest], " is ",
        map.size(1), "x", map.size(2), ": use a crop of at least 4 times the stride of that map");
  return local_pod(teacher_maps, student_maps, factors, pod_schedule_factor(total, total - old_channels));
}

Tensor Method::feature_distillation_term(const models::ForwardResult& student, const models::ForwardResult* teacher,
                                         int step) const {
  check(student.body.defined() && teacher->body.defined(), "method ", config_.describe(), ": step ", step,
        " needs the backbone output of the student and the teacher (ForwardOptions::body)");
  return feature_distillation(student.body, teacher->body, Reduction::mean_all);
}

LossBreakdown Method::loss(const models::ForwardResult& student, const models::ForwardResult* teacher,
                           const Tensor& labels, int64_t old_channels, int step) const {
  std::vector<LossTerm> active = terms(step);
  if (active.back().kind != LossKind::auxiliary)
    return terms_loss(active, student, teacher, labels, old_channels, step);
  // PSPNet's auxiliary loss: the step's classification term (active's first) on the aux head's logits,
  // as if they were the model's (low-resolution ones when fused), weighted loss_aux.
  const LossTerm aux = active.back();
  active.pop_back();
  check(!student.aux_logits.empty(), "method ", config_.describe(), ": the auxiliary loss needs the aux heads' ",
        "logits (ForwardOptions::aux_logits)");
  LossBreakdown out = terms_loss(active, student, teacher, labels, old_channels, step);
  LossTerm classification = active.front();
  classification.name = aux.name;
  classification.weight = aux.weight;
  // One "aux" value: the sum over the aux heads (BiSeNet has two).
  Tensor total, value;
  for (const Tensor& logits : student.aux_logits) {
    models::ForwardResult aux_view;
    aux_view.logits = logits;
    aux_view.low_res_logits = logits;
    const LossBreakdown head = terms_loss({classification}, aux_view, teacher, labels, old_channels, step);
    total = total.defined() ? add(total, head.total) : head.total;
    value = value.defined() ? add(value, head.values) : head.values;
  }
  out.total = add(out.total, total);
  out.names.emplace_back(aux.name);
  out.values = concat({out.values, value});
  return out;
}

LossBreakdown Method::terms_loss(const std::vector<LossTerm>& active, const models::ForwardResult& student,
                                 const models::ForwardResult* teacher, const Tensor& labels, int64_t old_channels,
                                 int step) const {
  const bool teacher_needed = needs_teacher(step);
  const bool teacher_logits =
      teacher != nullptr && (config_.fused_losses ? teacher->low_res_logits : teacher->logits).defined();
  check(!teacher_needed || teacher_logits, "method ", config_.describe(), ": step ", step,
        " needs the teacher's logits");
  if (config_.fused_losses) return fused_loss(active, student, teacher, labels, old_channels, step);
  // log_softmax of the student's logits over all C_tot channels: computed on first use, then shared.
  Tensor log_probs;
  auto student_log_probs = [&]() -> const Tensor& {
    if (!log_probs.defined()) log_probs = log_softmax(student.logits);
    return log_probs;
  };
  LossBreakdown out;
  std::vector<Tensor> values;
  for (const LossTerm& term : active) {
    Tensor value;
    switch (term.kind) {
      case LossKind::cross_entropy:
        value = cross_entropy(student.logits, labels, Reduction::mean_all);
        break;
      case LossKind::unbiased_cross_entropy:
        value = unbiased_cross_entropy_from_log_probs(student_log_probs(), labels, old_channels, Reduction::mean_all);
        break;
      case LossKind::knowledge_distillation:
        value =
            config_.kd.references()
                ? knowledge_distillation(student.logits, teacher->logits, Reduction::mean_all, config_.alpha)
                : distillation(student.logits, teacher->logits, Reduction::mean_all, config_.alpha, config_.kd, false);
        break;
      case LossKind::unbiased_knowledge_distillation:
        value = config_.kd.references() ? unbiased_knowledge_distillation_from_log_probs(
                                              student_log_probs(), teacher->logits, Reduction::mean_all, config_.alpha)
                                        : distillation(student.logits, teacher->logits, Reduction::mean_all,
                                                       config_.alpha, config_.kd, true);
        break;
      case LossKind::icarl_bce: value = icarl_bce(student.logits, labels, Reduction::mean_all); break;
      case LossKind::icarl_distillation:
        value = icarl_distillation(student.logits, teacher->logits, Reduction::mean_all);
        break;
      case LossKind::icarl_disjoint:
      case LossKind::icarl_disjoint_bkg:
        value = icarl_disjoint(student.logits, teacher->logits, labels, Reduction::mean_all,
                               term.kind == LossKind::icarl_disjoint_bkg);
        break;
      case LossKind::feature_distillation: value = feature_distillation_term(student, teacher, step); break;
      case LossKind::local_pod: value = local_pod_term(student, teacher, old_channels, step); break;
      case LossKind::auxiliary: throw Error("Method::terms_loss: the auxiliary term is Method::loss's");
      case LossKind::pseudo_cross_entropy: {
        const PseudoLabels pseudo = pseudo_labels(student, teacher, labels, step);
        if (!config_.classif_adaptive_factor) {
          value = cross_entropy(student.logits, pseudo.labels, Reduction::mean_all);
          break;
        }
        // PLOP: each image's per-pixel CE times its γ, then the mean over all B·H·W pixels.
        const Tensor per_pixel = cross_entropy(student.logits, pseudo.labels, Reduction::none);
        const int64_t n = per_pixel.size(0);
        value = mean(mul(per_pixel.reshape({n, per_pixel.size(1), per_pixel.size(2), 1}),
                         pseudo.image_weights.reshape({n, 1, 1, 1})));
        break;
      }
    }
    Tensor weighted = term.weight == 1.0 ? value : scale(value, term.weight);
    out.names.emplace_back(term.name);
    values.push_back(weighted.detach().reshape({1}));
    out.total = out.total.defined() ? add(out.total, weighted) : weighted;
  }
  out.values = concat(values);
  return out;
}

void Method::load_state(const TensorMap& full_state, const std::string& source, int64_t iteration) {
  // PLOP's thresholds ("pseudo_*") to this method, the rest to the regulariser.
  TensorMap state, pseudo;
  for (const auto& [name, tensor] : full_state) (name.rfind("pseudo_", 0) == 0 ? pseudo : state).emplace(name, tensor);
  if (!pseudo.empty()) {
    check(config_.pseudo, source, ": the checkpoint carries pseudo-label thresholds (", pseudo.begin()->first,
          ") that ", config_.describe(), " does not use; it was written by another method");
    set_pseudo_thresholds(PseudoLabelThresholds::from_state(pseudo, source));
  }
  if (regularizer_) {
    regularizer_->load_state(state, source, iteration);
    return;
  }
  if (state.empty()) return;
  throw Error(cat(source, ": the checkpoint carries method state (", state.begin()->first, ", ", state.size(),
                  " tensors) that ", config_.describe(), " does not use; it was written by another method"));
}

}  // namespace strata::incremental
