// DeepLabV3 heads (Chen et al. 2017, "Rethinking Atrous Convolution") in the two flavours strata
// mirrors, and torchvision's auxiliary FCN head. All take the backbone's (N,h,w,in) features and
// return (N,h,w,256) features for the classifier (models/classifier.h); the norm and activation
// come from `Norm` (models/blocks.h).
//
// TorchvisionHead (torchvision.models.segmentation.deeplabv3.DeepLabHead without its last conv):
//   ASPP "0":  convs.0 = 1x1 in->256 + norm;  convs.{1,2,3} = 3x3 dilation r_i (padding r_i) + norm;
//              convs.4 = global average pool -> 1x1 in->256 (keys convs.4.1) + norm (convs.4.2),
//              then bilinear interpolation from 1x1 back to h x w (a broadcast);
//              concat (1280) -> project.0 1x1 1280->256 + project.1 norm -> dropout(p)
//   "1" 3x3 256->256 (padding 1) + "2" norm -> output
//   torchvision's rates are 12/24/36 (it always builds output stride 8).
// MiBHead (MiB/PLOP modules/deeplab.py, class DeeplabV3):
//   map_convs.0 = 1x1 in->256, map_convs.{1,2,3} = 3x3 dilation r_i; concat (1024) -> map_bn (one
//   norm over the concatenation) -> red_conv 1x1 1024->256;
//   image branch: mean over h,w -> global_pooling_conv 1x1 in->256 -> global_pooling_bn ->
//   pool_red_conv 1x1 256->256, added by broadcast; -> red_bn = output. No dropout.
//   Rates 6/12/18 at output stride 16, 12/24/32 at 8.
//   Eval-time pooling (MiB's --pooling, default 32): in eval mode the image branch averages over a
//   sliding (min(p,h), min(p,w)) window with stride 1 and replicate-pads back to h x w, then runs
//   its convs on that map and adds it elementwise. When the window covers the whole map this is the
//   global mean, and the head takes the broadcast path (same values, 1x1 instead of h x w convs).
//   pooling_size 0 disables it (global pooling in eval too).
//   Init (MiB's reset_parameters): convs xavier_normal with gain calculate_gain(leaky_relu, 0.01),
//   norms weight 1 bias 0.
// FCNHead (torchvision's auxiliary classifier on stage 3):
//   "0" 3x3 in->256 (padding 1) + "1" norm -> dropout(p) -> "4" 1x1 256->classes with bias.
// The torchvision-flavour heads keep PyTorch's default conv init, as torchvision does.
//
// Folding (models/blocks.h): each head's fold() gives the same eval-mode forward with every norm in its
// convolution. MiB's map_bn normalises the concatenation of the four map_convs, so each map_conv
// takes its slice of map_bn; red_bn normalises red_conv's output plus the image branch, so red_conv
// takes red_bn's scale, shift and activation and adds the image branch in its epilogue (broadcast
// from (N,1,1,256) when pooling is global), and pool_red_conv takes red_bn's scale alone. Dropout is
// the identity in eval mode and disappears.
//
// `channels` (the ASPP branches' and the output's) is 256 in both references; a smaller head for CPU
// demos and tests passes fewer. Shapes below read 256 as `channels`.
#pragma once

#include <array>
#include <memory>

#include "models/blocks.h"
#include "models/summary.h"

namespace strata::models {

struct FoldedTorchvisionHead {
  std::array<FoldedConv, 4> branches;
  FoldedConv pooling, project, conv;
  Tensor forward(const Tensor& x) const;  // as TorchvisionHead::forward in eval mode, no graph
};

struct FoldedMiBHead {
  std::array<FoldedConv, 4> maps;
  FoldedConv reduce, pooling, pooling_reduce;
  int64_t pooling_size = 0;
  Tensor forward(const Tensor& x) const;  // as MiBHead::forward in eval mode, no graph
};

struct FoldedFCNHead {
  FoldedConv conv, classifier;
  Tensor forward(const Tensor& x) const;  // as FCNHead::forward in eval mode, no graph
};

class TorchvisionHead : public nn::Module {
 public:
  TorchvisionHead(int64_t in_channels, std::array<int64_t, 3> rates, Norm norm, double dropout, uint64_t seed,
                  Generator& generator, int64_t channels = kChannels);
  Tensor forward(const Tensor& x);  // (N,h,w,in) -> (N,h,w,channels)
  Shape trace(const Shape& in, SummaryBuilder& builder) const;
  FoldedTorchvisionHead fold(const std::string& prefix) const;  // `prefix`: the state-dict name, for messages
  static constexpr int64_t kChannels = 256;
  int64_t channels() const { return channels_; }

 private:
  int64_t channels_;
  Norm norm_;
  double dropout_;
  Generator dropout_generator_;
  std::array<std::shared_ptr<nn::Conv2d>, 4> branch_convs_;
  std::array<std::shared_ptr<nn::Layer>, 4> branch_norms_;
  std::shared_ptr<nn::Conv2d> pool_conv_, project_conv_, conv_;
  std::shared_ptr<nn::Layer> pool_norm_, project_norm_, norm_layer_;
};

class MiBHead : public nn::Module {
 public:
  // initialize false keeps nn::Conv2d's default init (weights are loaded next).
  MiBHead(int64_t in_channels, std::array<int64_t, 3> rates, Norm norm, int64_t pooling_size, bool initialize,
          Generator& generator, int64_t channels = kChannels);
  Tensor forward(const Tensor& x);  // (N,h,w,in) -> (N,h,w,channels)
  Shape trace(const Shape& in, SummaryBuilder& builder) const;
  FoldedMiBHead fold(const std::string& prefix) const;
  int64_t pooling_size() const { return pooling_size_; }
  static constexpr int64_t kChannels = 256;
  int64_t channels() const { return channels_; }

 private:
  // (N,1,1,channels) broadcast, or (N,h,w,channels) with eval pooling
  Tensor image_branch(const Tensor& x);

  int64_t channels_;
  Norm norm_;
  int64_t pooling_size_;
  std::array<std::shared_ptr<nn::Conv2d>, 4> map_convs_;
  std::shared_ptr<nn::Conv2d> red_conv_, global_pooling_conv_, pool_red_conv_;
  std::shared_ptr<nn::Layer> map_bn_, global_pooling_bn_, red_bn_;
};

class FCNHead : public nn::Module {
 public:
  FCNHead(int64_t in_channels, int64_t classes, Norm norm, double dropout, uint64_t seed, Generator& generator);
  Tensor forward(const Tensor& x);  // (N,h,w,in) -> (N,h,w,classes)
  Shape trace(const Shape& in, SummaryBuilder& builder) const;
  FoldedFCNHead fold(const std::string& prefix) const;

 private:
  Norm norm_;
  double dropout_;
  Generator dropout_generator_;
  std::shared_ptr<nn::Conv2d> conv_, classifier_;
  std::shared_ptr<nn::Layer> norm_layer_;
};

}  // namespace strata::models
