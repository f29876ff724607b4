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
  if (loss_kd > 0) parts.push_back(cat(unkd ? "unkd x" : "kd x", number(loss_kd)));
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
}

std::vector<std::string> method_names() { return {"FT", "LwF", "LwF-MC", "ILT", "EWC", "PI", "RW", "MiB"}; }

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
  if (overrides.freeze_old_classifier) config.freeze_old_classifier = *overrides.freeze_old_classifier;
  config.validate();
  const bool regularizer = r.kind != RegularizerKind::none;
  const std::string method = cat("--method ", config.name.substr(0, config.name.find('+')));
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

TensorMap Method::state() const { return regularizer_ ? regularizer_->state() : TensorMap(); }

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
  return out;
}

bool Method::step0_is_fine_tuning() const {
  const std::vector<LossTerm> step0 = terms(0);
  return step0.size() == 1 && step0[0].kind == LossKind::cross_entropy &&
         config_.regularizer.kind == RegularizerKind::none;
}

bool Method::needs_teacher(int step) const {
  const bool icarl_teacher = config_.icarl && (config_.icarl_disjoint || config_.icarl_importance > 0);
  return step >= 1 && (config_.loss_kd > 0 || config_.loss_de > 0 || icarl_teacher);
}

models::ForwardOptions Method::forward_options(int step) const {
  models::ForwardOptions options;
  options.body = step >= 1 && config_.loss_de > 0;
  options.upsample = !config_.fused_losses;
  return options;
}

void Method::on_step_start(models::SegmentationModel& model, int step) const {
  if (step == 0) return;
  if (config_.init_balanced) model.classifier().init_balanced_new_step();
  if (config_.freeze_backbone) {
    for (auto& [name, parameter] : model.backbone().named_parameters()) parameter.set_requires_grad(false);
  }
  if (config_.freeze_old_classifier) {
    for (int64_t k = 0; k < model.classifier().steps() - 1; ++k) {
      for (auto& [name, parameter] : model.classifier().step(k).named_parameters()) parameter.set_requires_grad(false);
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
    case LossKind::feature_distillation: break;
  }
  throw Error("pixel_loss: feature_distillation is not a logit term");
}

}  // namespace

// The logit terms in one fused op, the de term on its own; the values in the terms' order.
LossBreakdown Method::fused_loss(const std::vector<LossTerm>& active, const models::ForwardResult& student,
                                 const models::ForwardResult* teacher, const Tensor& labels, int64_t old_channels,
                                 int step) const {
  check(student.low_res_logits.defined(), "method ", config_.describe(),
        ": the fused losses need the student's low-resolution logits (ForwardOptions::upsample = false)");
  std::vector<FusedLossTerm> logit_terms;
  for (const LossTerm& term : active) {
    if (term.kind != LossKind::feature_distillation) {
      logit_terms.push_back({pixel_loss(term.kind), term.weight, Reduction::mean_all});
    }
  }
  FusedLossOptions options;
  options.old_channels = old_channels;
  options.alpha = config_.alpha;
  const Tensor teacher_logits = teacher ? teacher->low_res_logits : Tensor();
  const Tensor logit_values = fused_losses(student.low_res_logits, teacher_logits, labels, logit_terms, options);
  LossBreakdown out;
  out.total = sum(logit_values);
  std::vector<Tensor> values = {logit_values.detach()};
  for (const LossTerm& term : active) {
    if (term.kind == LossKind::feature_distillation) {
      Tensor weighted = scale(feature_distillation_term(student, teacher, step), term.weight);
      values.push_back(weighted.detach().reshape({1}));
      out.total = add(out.total, weighted);
    }
  }
  // The de term is always last (terms()), so the names keep their order.
  for (const LossTerm& term : active) out.names.emplace_back(term.name);
  out.values = values.size() == 1 ? values[0] : concat(values);
  return out;
}

Tensor Method::feature_distillation_term(const models::ForwardResult& student, const models::ForwardResult* teacher,
                                         int step) const {
  check(student.body.defined() && teacher->body.defined(), "method ", config_.describe(), ": step ", step,
        " needs the backbone output of the student and the teacher (ForwardOptions::body)");
  return feature_distillation(student.body, teacher->body, Reduction::mean_all);
}

LossBreakdown Method::loss(const models::ForwardResult& student, const models::ForwardResult* teacher,
                           const Tensor& labels, int64_t old_channels, int step) const {
  const std::vector<LossTerm> active = terms(step);
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
        value = knowledge_distillation(student.logits, teacher->logits, Reduction::mean_all, config_.alpha);
        break;
      case LossKind::unbiased_knowledge_distillation:
        value = unbiased_knowledge_distillation_from_log_probs(student_log_probs(), teacher->logits,
                                                               Reduction::mean_all, config_.alpha);
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
    }
    Tensor weighted = term.weight == 1.0 ? value : scale(value, term.weight);
    out.names.emplace_back(term.name);
    values.push_back(weighted.detach().reshape({1}));
    out.total = out.total.defined() ? add(out.total, weighted) : weighted;
  }
  out.values = concat(values);
  return out;
}

void Method::load_state(const TensorMap& state, const std::string& source, int64_t iteration) {
  if (regularizer_) {
    regularizer_->load_state(state, source, iteration);
    return;
  }
  if (state.empty()) return;
  throw Error(cat(source, ": the checkpoint carries method state (", state.begin()->first, ", ", state.size(),
                  " tensors) that ", config_.describe(), " does not use; it was written by another method"));
}

}  // namespace strata::incremental
