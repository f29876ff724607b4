// The incremental classifier (MiB/PLOP segmentation_module.py, IncrementalSegmentationModule.cls):
// one 1x1 convolution with bias per learning step, named cls.0, cls.1, ... in the state dict; the
// logits are the channel concatenation of every step's output, in class order (step 0's classes,
// background first, then each later step's).
//
//   features (N,h,w,in) -> logits (N,h,w,C), C = sum of the steps' class counts
//
// A step's conv gets PyTorch's default initialisation (the fine-tuning baseline keeps it).
// init_balanced_new_step() is MiB's balanced initialisation of the newest step t >= 1 (SPEC §3.5.3):
// with N_new = that step's class count and (w_bg, b_bg) step 0's background row,
//   w_c <- w_bg, b_c <- b_bg - log(N_new + 1) for every new class c, and b_bg <- b_bg - log(N_new + 1),
// which splits the old model's background probability evenly over the background and the new
// classes (every other logit is unchanged, so p_bg + sum_new p_c equals the old p_bg).
#pragma once

#include <memory>
#include <vector>

#include "engine/nn/layers.h"
#include "models/blocks.h"
#include "models/summary.h"

namespace strata::models {

class IncrementalClassifier : public nn::Module {
 public:
  // classes_per_step: e.g. {16, 1, 1, 1, 1, 1} (VOC 15-1; step 0 includes the background).
  IncrementalClassifier(int64_t in_channels, const std::vector<int64_t>& classes_per_step, Generator& generator);

  Tensor forward(const Tensor& features);  // (N,h,w,in) -> (N,h,w,total_classes())
  Shape trace(const Shape& in, SummaryBuilder& builder) const;
  // Every step's 1x1 convolution stacked into one (total_classes() outputs, in class order): the
  // same logits as forward, in one GEMM and without the concatenation (a frozen model).
  FoldedConv fold() const;

  // Appends the classifier of a new step (classes >= 1), PyTorch-default initialised from `generator`.
  void add_step(int64_t classes, Generator& generator);
  // MiB's balanced initialisation of the newest step (see above); throws with a single step.
  void init_balanced_new_step();

  int64_t steps() const { return static_cast<int64_t>(convs_.size()); }
  int64_t total_classes() const;
  std::vector<int64_t> classes_per_step() const;
  nn::Conv2d& step(int64_t step);
  int64_t in_channels() const { return in_channels_; }

 private:
  int64_t in_channels_;
  std::vector<std::shared_ptr<nn::Conv2d>> convs_;
};

}  // namespace strata::models
