// PSPNet (Zhao et al. 2017, "Pyramid Scene Parsing Network") as hszhao/semseg's model/pspnet.py builds
// it, the model of the LwF ablation log (ResNet-50, crop 473): a dilated ResNet (output stride 8,
// semseg layout with the deep stem, models/resnet.h), the pyramid pooling module and a 3x3 head
// before the incremental classifier (models/classifier.h), and an auxiliary head on stage 3 whose
// loss is added with weight 0.4 in training. Every norm is `Norm`'s (batch norm + ReLU in semseg).
//
// PSPHead (semseg's ppm and cls.0-3), (N,h,w,in) -> (N,h,w,channels):
//   ppm.features.{i}: adaptive average pool to bins[i] x bins[i] -> "1" 1x1 in->in/len(bins) + "2"
//       norm -> bilinear upsampling back to h x w with align_corners true; the output is the
//       concatenation [x, pyramid 0, ..., pyramid 3] (2*in channels for the 4 bins of the paper)
//   "0" 3x3 2*in->channels (padding 1) + "1" norm -> channel dropout p (Dropout2d; 0.1 in semseg)
// PSPAuxHead (semseg's aux), (N,h3,w3,in) -> logits (N,h3,w3,C):
//   "0" 3x3 in->in/4 (padding 1) + "1" norm -> channel dropout p -> "cls" incremental classifier
//   (one 1x1 convolution with bias per step, as the main one, so a step adds classes to both)
// semseg's key names map to strata's as tools/convert_weights.py documents (layer* -> backbone.layer*,
// ppm.* -> head.ppm.*, cls.{0,1} -> head.{0,1}, cls.4 -> cls.0, aux.4 -> aux.cls.0).
// Convolutions keep PyTorch's default initialisation, as semseg's head does.
//
// Folding (models/blocks.h): every pyramid branch's norm folds into its 1x1 convolution, the head's
// norm into its 3x3 one and the aux head's into its 3x3 one; dropout is the identity in eval mode.
#pragma once

#include <memory>
#include <vector>

#include "models/blocks.h"
#include "models/classifier.h"
#include "models/summary.h"

namespace strata::models {

struct FoldedPSPHead {
  std::vector<int64_t> bins;
  std::vector<FoldedConv> pyramid;
  FoldedConv conv;
  Tensor forward(const Tensor& x) const;  // as PSPHead::forward in eval mode, no graph
};

struct FoldedPSPAuxHead {
  FoldedConv conv, classifier;
  Tensor forward(const Tensor& x) const;  // as PSPAuxHead::forward in eval mode, no graph
};

class PSPHead : public nn::Module {
 public:
  PSPHead(int64_t in_channels, std::vector<int64_t> bins, Norm norm, double dropout, uint64_t seed,
          Generator& generator, int64_t channels = kChannels);
  Tensor forward(const Tensor& x);  // (N,h,w,in) -> (N,h,w,channels)
  Shape trace(const Shape& in, SummaryBuilder& builder) const;
  FoldedPSPHead fold(const std::string& prefix) const;  // `prefix`: the state-dict name, for messages
  static constexpr int64_t kChannels = 512;
  int64_t channels() const { return channels_; }

 private:
  Tensor pyramid(const Tensor& x);  // the pyramid pooling module's concatenation

  int64_t channels_;
  std::vector<int64_t> bins_;
  Norm norm_;
  double dropout_;
  Generator dropout_generator_;
  std::vector<std::shared_ptr<nn::Conv2d>> pyramid_convs_;
  std::vector<std::shared_ptr<nn::Layer>> pyramid_norms_;
  std::shared_ptr<nn::Conv2d> conv_;
  std::shared_ptr<nn::Layer> norm_layer_;
};

class PSPAuxHead : public nn::Module {
 public:
  PSPAuxHead(int64_t in_channels, const std::vector<int64_t>& classes, Norm norm, double dropout, uint64_t seed,
             Generator& generator);
  Tensor forward(const Tensor& x);  // (N,h,w,in) -> (N,h,w,classes)
  Shape trace(const Shape& in, SummaryBuilder& builder) const;
  FoldedPSPAuxHead fold(const std::string& prefix) const;
  IncrementalClassifier& classifier() { return *classifier_; }

 private:
  Norm norm_;
  double dropout_;
  Generator dropout_generator_;
  std::shared_ptr<nn::Conv2d> conv_;
  std::shared_ptr<nn::Layer> norm_layer_;
  std::shared_ptr<IncrementalClassifier> classifier_;
};

}  // namespace strata::models
