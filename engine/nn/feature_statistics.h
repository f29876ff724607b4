// DeepInversion's feature-distribution regulariser (Yin et al., "Dreaming to Distill", CVPR 2020,
// eq. 4): images x are pushed so that, at every normalisation layer l of a frozen network, the batch
// statistics of the layer's input match the running statistics it stored in training:
//   R_feature(x) = sum_l w_l * ( ||mu_l(x) - running_mean_l||_2 + ||var_l(x) - running_var_l||_2 )
// mu_l and var_l are the per-channel mean and biased variance over N, H and W of layer l's input (as
// NVlabs' DeepInversion code computes them, var with unbiased=False). w_1 = first_layer_weight for the
// first layer the forward reaches (NVlabs' first_bn_multiplier), w_l = 1 for the others.
//
// NormInputRecorder attaches to every nn::BatchNorm2d and nn::InPlaceABN of a module tree (the
// torchvision flavour's batch norms, MiB's In-place ABN) and records each one's input, in the order
// the forward calls them, with its running statistics; the recorded inputs keep their autograd graph,
// so the loss is differentiable w.r.t. the images (a composition of reshape, mean_spatial, sub, square,
// sum and pow).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "engine/nn/module.h"

namespace strata::nn {

struct NormInput {
  std::string layer;    // the norm's state-dict name, e.g. "body.mod1.bn1"
  Tensor input;         // (N,H,W,C)
  Tensor running_mean;  // (C)
  Tensor running_var;   // (C)
};

class NormInputRecorder {
 public:
  // Attaches to every norm of `model`; throws strata::Error when the model has none. The recorder
  // must not outlive the model; it detaches on destruction.
  explicit NormInputRecorder(Module& model);
  ~NormInputRecorder();
  NormInputRecorder(const NormInputRecorder&) = delete;
  NormInputRecorder& operator=(const NormInputRecorder&) = delete;

  // One entry per norm call since construction or the last clear() (a norm run twice appears twice).
  const std::vector<NormInput>& inputs() const { return inputs_; }
  void clear() { inputs_.clear(); }
  size_t layers() const { return detach_.size(); }  // norms attached to

 private:
  std::vector<NormInput> inputs_;
  std::vector<std::function<void()>> detach_;
};

// R_feature above over `inputs` (at least one), a scalar of the inputs' dtype. Throws naming the layer
// when an input is not (N,H,W,C) with C running statistics of its dtype and device.
Tensor feature_statistics_loss(const std::vector<NormInput>& inputs, double first_layer_weight = 1);

}  // namespace strata::nn
