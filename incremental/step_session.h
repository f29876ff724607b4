// One step's training state (SPEC-continual.md §4): the student, the frozen teacher, the method,
// SGD and the poly schedule, and train_iteration(), exactly one training iteration:
//
//   images u8 (N,H,W,3), labels u8 (N,H,W) (after the step's training table), on any device
//     -> moved to the step's device, normalised (engine/ops/normalize.h)
//     -> teacher forward (no graph)   [the last R rows replayed: their labels from the teacher]
//     -> student forward (train mode)   -> Method::loss
//     -> backward                     -> with a world of ranks: gradients averaged over them
//                                     -> EWC/PI/RW: importance update, penalty and its backward
//     -> SGD step and schedule step
//
// Each phase runs inside an engine/profiler.h scope named by step_phase_name(), so a profile's
// total time per name is that phase's time. Nothing in the iteration reads a value back to the
// host: the loss and its terms come back as device tensors (IterationStats) for the caller to
// accumulate and read when it logs.
//
// Replayed rows (incremental/replay.h, StepSetup::replay): the teacher runs on the whole batch when
// the method uses it (its low-resolution logits then asked for too), else on the replayed rows
// alone, inside the "step: teacher forward" scope, which also gives those rows their labels.
//
// Errors (strata::Error): a step outside the task; step >= 1 without the previous step's weights,
// or weights that do not match the model (naming `source`); replayed rows at step 0, without
// StepSetup::replay, or as many as the batch; the method's and the ops' own errors.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/device.h"
#include "engine/distributed/data_parallel.h"
#include "engine/optim/sgd.h"
#include "engine/safetensors.h"
#include "engine/tensor.h"
#include "incremental/checkpoint.h"
#include "incremental/method.h"
#include "incremental/pseudo_labels.h"
#include "incremental/recipe.h"
#include "incremental/task.h"
#include "incremental/teacher.h"
#include "models/segmentation_model.h"

namespace strata::incremental {

// One step's resolved configuration.
struct StepSetup {
  int step = 0;
  models::ModelConfig model;  // classes per step up to `step`
  MethodConfig method;
  Recipe recipe;              // with the run's overrides applied
  Device device;
  uint64_t seed = 0;          // model initialisation and loader randomness of this step
  TeacherForward teacher_forward = TeacherForward::folded;  // how the teacher runs (incremental/teacher.h)
  bool detect_anomaly = false;  // every op's output and gradient checked (engine/autograd.h AnomalyModeGuard)
  // Replay (incremental/replay.h), steps >= 1: the teacher is loaded whatever the method, and
  // replay_rows of every batch of recipe.batch_size are replayed images.
  bool replay = false;
  int replay_rows = 0;
  // Data parallelism (engine/distributed), with a world of more than one rank: the student's norms
  // compute their statistics over every rank (sync_bn: SyncBN / InPlaceABNSync, as MiB and PLOP on
  // several GPUs), rank 0's parameters and buffers are broadcast when the session starts, and every
  // iteration averages the gradients over the ranks between backward and the regularizer and
  // optimizer (DistributedDataParallel). The teacher needs no communication (eval mode, same weights).
  distributed::Communicator* world = nullptr;
  bool sync_bn = true;
  // CUDA graphs for the step (incremental/step_graph.h; --no-cuda-graphs turns them off). They apply
  // on CUDA to methods without a regularizer, without detect_anomaly, to models without dropout, and
  // to one process (not with a world of several ranks, whose host collectives a graph would skip).
  bool cuda_graphs = false;
};

// What the model looks like after an iteration: read from health_probe()'s values.
struct ModelHealth {
  double gradient_norm = 0;  // the global L2 norm of the parameters' gradients
  bool parameters_finite = true;
  bool statistics_finite = true;                              // the buffers: batch-norm running statistics
  static ModelHealth from(const std::vector<double>& probe);  // health_probe()'s three values
};

// The phases of one training iteration, in the order they run.
enum class StepPhase { teacher_forward, student_forward, losses, backward, regularizer, optimizer_step };
inline constexpr StepPhase kStepPhases[] = {StepPhase::teacher_forward, StepPhase::student_forward,
                                            StepPhase::losses,          StepPhase::backward,
                                            StepPhase::regularizer,     StepPhase::optimizer_step};
// The profiler scope of a phase: "step: teacher forward", "step: student forward", "step: losses",
// "step: backward", "step: regularizer" (EWC/PI/RW's importance update, penalty and its backward),
// "step: optimizer step" (SGD and the schedule).
const char* step_phase_name(StepPhase phase);

// What one iteration did. The loss values are device tensors, detached, in the logits' dtype on the
// step's device: reading them is a host synchronisation left to the caller.
struct IterationStats {
  Tensor loss;                     // scalar: the total
  std::vector<std::string> names;  // the method's active terms, as LossBreakdown
  Tensor terms;                    // (K): each weighted term, in `names` order
  double lr = 0;                   // the lr this iteration used
  int64_t images = 0;
};

class StepGraph;

class StepSession {
 public:
  // previous_weights: the step t-1 model's state dict (required at step >= 1, ignored at 0);
  // `source` names them in messages. initial_weights: step 0's backbone weights file (or empty).
  // max_iterations: the poly schedule's length. previous_method: the step t-1 checkpoint's method
  // state and name (the importance EWC, PI and RW penalise with at step t >= 1).
  StepSession(const StepSetup& setup, const Task& task, const TensorMap* previous_weights, const std::string& source,
              const std::string& initial_weights, int64_t max_iterations, const PreviousMethod& previous_method = {});
  ~StepSession();

  // One training iteration on a loader batch (see the file comment); its last `replayed` rows are
  // replayed images whose labels hold only the void mark (data::Batch::replayed). With CUDA graphs,
  // after warm-up, a replay of the captured iteration (incremental/step_graph.h).
  IterationStats train_iteration(const Tensor& images, const Tensor& labels, int64_t replayed = 0);
  // The CUDA graphs of the step, or nullptr when they do not apply (StepSetup::cuda_graphs).
  const StepGraph* graph() const { return graph_.get(); }

  // The model's health after the last iteration, queued on the step's device and not read: (3) f64,
  // the squared global norm of the gradients, then the non-finite markers (engine/finite.h) of the
  // parameters and of the buffers. The caller folds it into a read it makes anyway.
  Tensor health_probe() const;
  // The first parameter, gradient ("<parameter>.grad") or buffer holding a NaN or an Inf, in that
  // order, or "": the failure path's read, which names what health_probe() found.
  std::string first_nonfinite_tensor() const;

  // PLOP's pass before a step trains (Method::needs_pseudo_thresholds): the teacher over every batch
  // next() yields (the step's training data, labels after its table), its entropy histogram
  // accumulated on the device and read once, and the method's thresholds set from it
  // (incremental/pseudo_labels.h). progress(batches done) after each batch.
  void compute_pseudo_label_thresholds(const NextThresholdBatch& next, const ThresholdProgress& progress = {});

  // Restores model, momentum buffers, schedule position and method state from a checkpoint of
  // this step (already checked by the caller).
  void restore(const Checkpoint& checkpoint);

  models::SegmentationModel& model() { return *model_; }
  const models::SegmentationModel& model() const { return *model_; }
  optim::SGD& optimizer() { return *optimizer_; }
  optim::PolyLR& schedule() { return *schedule_; }
  const Method& method() const { return method_; }
  Method& method() { return method_; }
  Teacher* teacher() { return teacher_ ? teacher_.get() : nullptr; }
  int64_t old_channels() const { return old_channels_; }

 private:
  void build_optimizer(int64_t max_iterations);
  IterationStats eager_iteration(const Tensor& images, const Tensor& labels, int64_t replayed);

  StepSetup setup_;
  Method method_;
  int64_t old_channels_ = 0;
  std::shared_ptr<models::SegmentationModel> model_;
  std::unique_ptr<Teacher> teacher_;
  std::unique_ptr<optim::SGD> optimizer_;
  std::unique_ptr<optim::PolyLR> schedule_;
  Tensor accept_all_;  // replay: (C_old) +inf, each teacher class's pseudo-label threshold
  std::unique_ptr<distributed::DataParallel> data_parallel_;  // StepSetup::world of more than one rank
  std::unique_ptr<StepGraph> graph_;
};

}  // namespace strata::incremental
