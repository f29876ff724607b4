// Stochastic gradient descent with momentum, Nesterov and weight decay over parameter groups,
// exactly torch.optim.SGD's update (kernels/cpu/sgd.h), and the per-iteration polynomial
// learning-rate schedule of MiB/PLOP:
//   lr = max(initial_lr * (1 - iteration / max_iterations)^power, min_lr)
// Both save and restore their state (momentum buffers, step and iteration counters) so a run
// resumed from a checkpoint continues bit for bit.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "engine/nn/module.h"
#include "engine/safetensors.h"

namespace strata::optim {

struct ParamGroup {
  std::string name;           // e.g. "body", "head", "classifier" (MiB's three groups)
  nn::NamedTensors params;    // parameter names are the keys of the optimizer state
  double lr = 0.01;
  double momentum = 0;
  double weight_decay = 0;
  bool nesterov = false;
  double dampening = 0;
  double initial_lr = -1;     // set to lr at construction when negative; the schedule scales it
};

class SGD {
 public:
  // Throws if a parameter appears twice, is not floating, Nesterov is asked without momentum or
  // with dampening (PyTorch's rule), or a hyper-parameter is negative.
  explicit SGD(std::vector<ParamGroup> groups);

  // Updates every parameter that has a gradient (parameters without one are skipped, as PyTorch).
  void step();
  void zero_grad();
  // CUDA graphs (incremental/step_graph.h): from now on step() has the kernels read each group's lr
  // from a device scalar instead of taking it as an argument, so a replayed step uses the lr of the
  // replay. write_device_lr() copies the groups' current lrs there; call it before each step() or
  // graph launch, outside any capture (a write captured with the step would replay its lr).
  // note_replayed_step() counts a step a graph made, as step() counts its own.
  void use_device_lr(const Device& device);
  void write_device_lr();
  void note_replayed_step() { ++steps_; }
  int64_t steps() const { return steps_; }
  std::vector<ParamGroup>& groups() { return groups_; }
  const std::vector<ParamGroup>& groups() const { return groups_; }

  // Momentum buffers as "momentum_buffer.<param name>", plus the step count in `metadata`.
  TensorMap state_dict(Metadata& metadata) const;
  // Restores a state written by state_dict; throws naming the key on a shape mismatch or a buffer
  // for an unknown parameter.
  void load_state_dict(const TensorMap& state, const Metadata& metadata);

 private:
  std::vector<ParamGroup> groups_;
  std::map<std::string, Tensor> momentum_buffers_;
  int64_t steps_ = 0;
  std::vector<Tensor> device_lr_;  // (1) f64 per group, when use_device_lr was called
};

class PolyLR {
 public:
  PolyLR(SGD& optimizer, int64_t max_iterations, double power = 0.9, double min_lr = 1e-6);
  void step();                       // after each optimizer step: iteration += 1, lrs updated
  int64_t iteration() const { return iteration_; }
  void set_iteration(int64_t iteration);  // resume
  double lr(size_t group = 0) const;

 private:
  void apply();
  SGD& optimizer_;
  int64_t max_iterations_;
  double power_, min_lr_;
  int64_t iteration_ = 0;
};

}  // namespace strata::optim
