#include "incremental/step_session.h"

#include <cmath>
#include <limits>
#include <utility>

#include "engine/autograd.h"
#include "engine/finite.h"
#include "engine/nn/normalization.h"
#include "engine/ops/channels.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/normalize.h"
#include "engine/profiler.h"
#include "incremental/replay.h"
#include "incremental/step_graph.h"
#include "models/weights.h"

namespace strata::incremental {

const char* step_phase_name(StepPhase phase) {
  switch (phase) {
    case StepPhase::teacher_forward: return "step: teacher forward";
    case StepPhase::student_forward: return "step: student forward";
    case StepPhase::losses: return "step: losses";
    case StepPhase::backward: return "step: backward";
    case StepPhase::regularizer: return "step: regularizer";
    case StepPhase::optimizer_step: return "step: optimizer step";
  }
  return "step: unknown phase";
}

StepSession::StepSession(const StepSetup& setup, const Task& task, const TensorMap* previous_weights,
                         const std::string& source, const std::string& initial_weights, int64_t max_iterations,
                         const PreviousMethod& previous_method)
    : setup_(setup), method_(setup.method) {
  const int step = setup.step;
  task.check_step(step);
  old_channels_ = task.old_channels(step);
  models::ModelConfig config = setup.model;
  // At step >= 1 every parameter but the new classifier is loaded next.
  config.initialize = step == 0;
  model_ = std::make_shared<models::SegmentationModel>(config);
  if (step == 0) {
    if (!initial_weights.empty()) models::load_weights(*model_, initial_weights, models::LoadMode::backbone);
  } else {
    check(previous_weights != nullptr, "step ", step, " of task ", task.name(),
          " needs the previous step's weights (none given)");
    models::load_weights(*model_, *previous_weights, models::LoadMode::previous_step, source);
    method_.on_step_start(*model_, step);
    if (method_.needs_teacher(step) || setup.replay) {
      models::ModelConfig teacher_config = setup.model;
      teacher_config.classes.pop_back();
      teacher_ =
          std::make_unique<Teacher>(teacher_config, *previous_weights, source, setup.device, setup.teacher_forward);
    }
  }
  model_->to(setup.device);
  model_->train();
  if (setup.world != nullptr && setup.world->world_size() > 1) {
    if (setup.sync_bn) nn::synchronize_norms(*model_, setup.world);
    data_parallel_ = std::make_unique<distributed::DataParallel>(*setup.world, model_->parameters());
    std::vector<Tensor> state = model_->parameters();
    for (const auto& [name, buffer] : model_->named_buffers()) state.push_back(buffer);
    data_parallel_->broadcast_from(0, state);
  }
  method_.start_step(*model_, step, step == 0 ? nullptr : previous_weights, previous_method, source);
  build_optimizer(max_iterations);
  const models::ModelConfig& m = setup.model;
  const bool dropout = m.arch == models::Architecture::deeplabv3plus || m.arch == models::Architecture::bisenet ||
                       (m.arch == models::Architecture::pspnet && m.psp_dropout > 0) ||
                       (m.flavour != models::Flavour::mib && (m.aspp_dropout > 0 || (m.aux && m.aux_dropout > 0)));
  // Data parallelism's host collectives cannot be captured (StepSetup::world): several ranks run eagerly.
  if (setup.cuda_graphs && setup.device.is_cuda() && !method_.has_regularizer() && !setup.detect_anomaly && !dropout &&
      !data_parallel_) {
    std::vector<Tensor> parameters;
    for (auto& [name, parameter] : model_->named_parameters()) parameters.push_back(parameter);
    graph_ = std::make_unique<StepGraph>(setup.device, *optimizer_, *schedule_, std::move(parameters),
                                         [this](const Tensor& images, const Tensor& labels, int64_t replayed) {
                                           return eager_iteration(images, labels, replayed);
                                         });
  }
}

StepSession::~StepSession() = default;

void StepSession::build_optimizer(int64_t max_iterations) {
  // MiB's three parameter groups (body, head, classifier), one lr, weight decay on everything.
  std::vector<optim::ParamGroup> groups = {{"body", {}}, {"head", {}}, {"classifier", {}}};
  const std::string body = model_->backbone_prefix();
  const std::string classifier = models::SegmentationModel::kClassifierPrefix;
  for (auto& [name, parameter] : model_->named_parameters()) {
    const size_t group = name.rfind(body, 0) == 0 ? 0 : name.rfind(classifier, 0) == 0 ? 2 : 1;
    groups[group].params.emplace_back(name, parameter);
  }
  for (optim::ParamGroup& g : groups) {
    g.lr = setup_.recipe.lr;
    g.momentum = setup_.recipe.momentum;
    g.nesterov = setup_.recipe.nesterov;
    g.weight_decay = setup_.recipe.weight_decay;
  }
  optimizer_ = std::make_unique<optim::SGD>(std::move(groups));
  schedule_ = std::make_unique<optim::PolyLR>(*optimizer_, max_iterations, setup_.recipe.lr_power);
}

void StepSession::compute_pseudo_label_thresholds(const NextThresholdBatch& next, const ThresholdProgress& progress) {
  check(teacher_ != nullptr, "step ", setup_.step, ": pseudo-label thresholds need the previous step's model");
  PseudoLabelOptions options;
  options.total_channels = model_->classifier().total_classes();
  options.median = setup_.method.pseudo_median;
  models::ForwardOptions maps;
  maps.upsample = false;
  maps.low_res_logits = true;
  const Device device = setup_.device;
  const NextThresholdBatch on_device = [&]() -> std::optional<ThresholdBatch> {
    std::optional<ThresholdBatch> batch = next();
    if (batch) batch->labels = batch->labels.to(device);
    return batch;
  };
  const TeacherLogits logits = [&](const Tensor& images) {
    return teacher_->run(normalize_image(images.to(device)), maps).low_res_logits;
  };
  method_.set_pseudo_thresholds(incremental::compute_pseudo_label_thresholds(on_device, logits, options, progress,
                                                                             setup_.method.pseudo_threshold));
}

IterationStats StepSession::train_iteration(const Tensor& images, const Tensor& labels, int64_t replayed) {
  if (graph_) return graph_->train_iteration(images, labels, replayed);
  return eager_iteration(images, labels, replayed);
}

IterationStats StepSession::eager_iteration(const Tensor& images, const Tensor& labels, int64_t replayed) {
  const int step = setup_.step;
  const int64_t n = images.size(0);
  check(replayed == 0 || (replayed > 0 && replayed < n && teacher_ && setup_.replay), "step ", step, ": ", replayed,
        " replayed rows in a batch of ", n,
        "; replay needs a step >= 1 set up for it (StepSetup::replay) and an image of the step in each batch");
  autograd::AnomalyModeGuard anomaly(setup_.detect_anomaly);
  IterationStats stats;
  stats.lr = schedule_->lr();
  stats.images = n;
  // The previous iteration's gradients go first (as MiB's train.py zeroes them): held through the
  // forward, they would add their whole size to the step's peak memory.
  optimizer_->zero_grad();
  Tensor x = normalize_image(images.to(setup_.device));
  Tensor y = labels.to(setup_.device);
  const models::ForwardOptions maps = method_.forward_options(step);
  const bool method_teacher = teacher_ && method_.needs_teacher(step);
  models::ForwardResult teacher_output;
  if (method_teacher || replayed > 0) {
    profiler::Scope scope(step_phase_name(StepPhase::teacher_forward));
    Tensor replayed_logits;
    if (method_teacher) {
      models::ForwardOptions teacher_maps = maps;
      teacher_maps.aux_logits = false;  // the aux head trains the student only
      teacher_maps.low_res_logits = teacher_maps.low_res_logits || replayed > 0;
      teacher_output = teacher_->run(x, teacher_maps);
      if (replayed > 0) replayed_logits = batch_rows(teacher_output.low_res_logits, n - replayed, n);
    } else {
      // The method reads no teacher: it runs on the replayed rows alone, for their labels.
      models::ForwardOptions logits_only;
      logits_only.upsample = false;
      logits_only.low_res_logits = true;
      replayed_logits = teacher_->run(batch_rows(x, n - replayed, n), logits_only).low_res_logits;
    }
    if (replayed > 0) {
      if (!accept_all_.defined() || accept_all_.dtype() != replayed_logits.dtype()) {
        accept_all_ = Tensor::full({teacher_->channels()}, std::numeric_limits<double>::infinity(),
                                   replayed_logits.dtype(), replayed_logits.device());
      }
      y = with_replayed_labels(y, replayed_logits, accept_all_, model_->classifier().total_classes(),
                               setup_.method.align_corners);
    }
  }
  models::ForwardResult student;
  {
    profiler::Scope scope(step_phase_name(StepPhase::student_forward));
    // With shared stages the student starts from the teacher's output of them.
    student = model_->forward(x, maps, method_teacher && maps.shared_stages > 0 ? &teacher_output : nullptr);
  }
  LossBreakdown loss;
  {
    profiler::Scope scope(step_phase_name(StepPhase::losses));
    loss = method_.loss(student, method_teacher ? &teacher_output : nullptr, y, old_channels_, step);
  }
  // Only the graph keeps what backward needs: the maps themselves go now.
  student = models::ForwardResult();
  teacher_output = models::ForwardResult();
  {
    profiler::Scope scope(step_phase_name(StepPhase::backward));
    // With data parallelism the gradient buckets start while backward still runs.
    autograd::backward(loss.total, Tensor(),
                       data_parallel_ ? data_parallel_->on_gradient_ready() : autograd::LeafReady());
  }
  if (data_parallel_) {
    profiler::Scope scope("step: gradient all-reduce");  // what is left of it after backward
    data_parallel_->finish();
  }
  Tensor penalty;
  if (method_.has_regularizer()) {
    profiler::Scope scope(step_phase_name(StepPhase::regularizer));
    // The importance sees the gradients of the loss terms alone, as MiB's update() before the
    // penalty's own backward into the same gradients.
    penalty = method_.regularize();
  }
  {
    profiler::Scope scope(step_phase_name(StepPhase::optimizer_step));
    optimizer_->step();
    schedule_->step();
  }
  if (setup_.detect_anomaly) {
    // The two updates outside the checked ops: SGD's and the batch-norm statistics' (in place).
    const std::string bad = first_nonfinite_tensor();
    if (!bad.empty()) {
      throw autograd::AnomalyError(cat("detect-anomaly: '", bad,
                                       "' holds a NaN or an Inf after the SGD update and "
                                       "the batch-norm statistics update, while every op's output and gradient was "
                                       "finite"));
    }
  }
  stats.loss = loss.total.detach();
  stats.names = std::move(loss.names);
  stats.terms = std::move(loss.values);
  if (penalty.defined()) {
    stats.loss = add(stats.loss, penalty);
    stats.names.emplace_back("reg");
    stats.terms = concat({stats.terms, penalty.reshape({1})});
  }
  return stats;
}

ModelHealth ModelHealth::from(const std::vector<double>& probe) {
  check(probe.size() == 3, "ModelHealth: expected the 3 values of StepSession::health_probe, got ", probe.size());
  return ModelHealth{std::sqrt(probe[0]), !std::isnan(probe[1]), !std::isnan(probe[2])};
}

Tensor StepSession::health_probe() const {
  autograd::NoGradGuard no_grad;
  std::vector<Tensor> parameters, gradients, buffers;
  for (const auto& [name, parameter] : model_->named_parameters()) {
    parameters.push_back(parameter);
    if (parameter.grad().defined()) gradients.push_back(parameter.grad());
  }
  for (const auto& [name, buffer] : model_->named_buffers()) buffers.push_back(buffer);
  const Device device = setup_.device;
  return concat(
      {squared_norm(gradients, device), nonfinite_marker(parameters, device), nonfinite_marker(buffers, device)});
}

std::string StepSession::first_nonfinite_tensor() const {
  TensorMap parameters, gradients, buffers;
  for (const auto& [name, parameter] : model_->named_parameters()) {
    parameters.emplace(name, parameter);
    if (parameter.grad().defined()) gradients.emplace(name + ".grad", parameter.grad());
  }
  for (const auto& [name, buffer] : model_->named_buffers()) buffers.emplace(name, buffer);
  for (const TensorMap* group : {&parameters, &gradients, &buffers}) {
    std::string bad = first_nonfinite(*group);
    if (!bad.empty()) return bad;
  }
  return "";
}

void StepSession::restore(const Checkpoint& checkpoint) {
  models::load_weights(*model_, checkpoint.model, models::LoadMode::full, checkpoint.path);
  optimizer_->load_state_dict(checkpoint.optimizer, checkpoint.optimizer_metadata);
  schedule_->set_iteration(checkpoint.info.iteration);
  method_.load_state(checkpoint.method_state, checkpoint.path, checkpoint.info.iteration);
  if (graph_) graph_->reset();  // new momentum buffers: a graph would write the old ones
}

}  // namespace strata::incremental
