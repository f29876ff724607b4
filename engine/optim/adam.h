// Adam over parameter groups, exactly torch.optim.Adam's update (kernels/common/adam.h): betas, eps,
// L2 weight decay added to the gradient (not AdamW's decoupled decay), bias correction with a step
// count per parameter (a parameter skipped for lack of a gradient does not advance, as in PyTorch),
// and optional AMSGrad. DeepInversion (Yin et al., CVPR 2020) optimises its input images with it.
// The state (both moments, AMSGrad's maximum, the step counts) saves and restores so a resumed
// optimisation continues bit for bit.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "engine/nn/module.h"
#include "engine/safetensors.h"

namespace strata::optim {

struct AdamGroup {
  std::string name;
  nn::NamedTensors params;  // parameter names are the keys of the optimizer state
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0;
  bool amsgrad = false;
};

class Adam {
 public:
  // Throws if a parameter appears twice or is not f32/f64, lr, eps or weight_decay is negative, or a
  // beta is outside [0, 1) (PyTorch's checks).
  explicit Adam(std::vector<AdamGroup> groups);

  // Updates every parameter that has a gradient (parameters without one are skipped, as PyTorch).
  // Throws naming the parameter if its gradient's shape or device differs from it.
  void step();
  void zero_grad();
  std::vector<AdamGroup>& groups() { return groups_; }
  const std::vector<AdamGroup>& groups() const { return groups_; }

  // "exp_avg.<param>", "exp_avg_sq.<param>" (and "max_exp_avg_sq.<param>" with AMSGrad) as tensors,
  // "adam.step.<param>" in `metadata`.
  TensorMap state_dict(Metadata& metadata) const;
  // Restores a state written by state_dict; throws naming the key on a shape mismatch, a buffer for an
  // unknown parameter, or a parameter whose buffers or step are incomplete.
  void load_state_dict(const TensorMap& state, const Metadata& metadata);

 private:
  struct ParamState {
    Tensor exp_avg, exp_avg_sq, max_exp_avg_sq;
    int64_t step = 0;
  };
  std::vector<AdamGroup> groups_;
  std::map<std::string, ParamState> state_;
};

}  // namespace strata::optim
