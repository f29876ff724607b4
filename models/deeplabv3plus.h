// DeepLabV3+ (Chen et al. 2018, "Encoder-Decoder with Atrous Separable Convolution") as the
// DeepLabV3+ reference builds it for ResNet (jfzhang95/pytorch-deeplab-xception, modeling/aspp.py and
// decoder.py): the DeepLabV3 ASPP on the backbone's output and a decoder that refines it with the
// stage-1 features, before the incremental classifier (models/classifier.h). Its backbone is
// models/resnet.h's deeplabv3plus layout (multi-grid stage 4); every norm is `Norm`'s (batch norm +
// ReLU in the reference).
//
// DeepLabV3PlusHead, (N,h,w,in) + low-level (N,h1,w1,low) -> (N,h1,w1,channels):
//   aspp.aspp1 = 1x1 in->256, aspp.aspp{2,3,4} = 3x3 at the rates r_i (padding r_i), each
//       "atrous_conv" + "bn"; aspp.global_avg_pool: global mean -> "1" 1x1 in->256 + "2" norm, broadcast
//       back to h x w; concat (1280) -> aspp.conv1 1x1 -> aspp.bn1 -> dropout(0.5)
//   decoder.conv1 1x1 low->48 + decoder.bn1 on the low-level features; the ASPP output upsampled
//       bilinearly to h1 x w1 (align_corners true) and concatenated before them (256 + 48 = 304);
//       decoder.last_conv.0 3x3 304->256 + .1 norm -> dropout(0.5) -> .4 3x3 256->256 + .5 norm ->
//       dropout(0.1) = the output (the reference's last_conv.8, the classifier, is strata's cls.0)
//   rates 6/12/18 at output stride 16, 12/24/36 at 8. 256 reads `channels` (the ASPP's and the
//   decoder's); 48 is fixed.
// Convolutions: kaiming_normal (fan_in), as the reference's _init_weight.
//
// Folding (models/blocks.h): every norm folds into the convolution before it; the image branch is a
// 1x1 map added by broadcast as in the DeepLabV3 heads' fold; dropout is the identity in eval mode.
#pragma once

#include <array>
#include <memory>

#include "models/blocks.h"
#include "models/summary.h"

namespace strata::models {

struct FoldedDeepLabV3PlusHead {
  std::array<FoldedConv, 4> branches;
  FoldedConv pooling, project, reduce_low, conv1, conv2;
  // As DeepLabV3PlusHead::forward in eval mode, no graph.
  Tensor forward(const Tensor& x, const Tensor& low_level) const;
};

class DeepLabV3PlusHead : public nn::Module {
 public:
  DeepLabV3PlusHead(int64_t in_channels, int64_t low_level_channels, std::array<int64_t, 3> rates, Norm norm,
                    bool initialize, uint64_t seed, Generator& generator, int64_t channels = kChannels);
  Tensor forward(const Tensor& x, const Tensor& low_level);
  Shape trace(const Shape& in, const Shape& low_level, SummaryBuilder& builder) const;
  FoldedDeepLabV3PlusHead fold(const std::string& prefix) const;  // `prefix`: the state-dict name
  static constexpr int64_t kChannels = 256;
  static constexpr int64_t kLowLevelChannels = 48;
  static constexpr double kAsppDropout = 0.5, kDecoderDropout = 0.5, kLastDropout = 0.1;
  int64_t channels() const { return channels_; }
  // Dropout probabilities (ASPP, decoder after its first 3x3, after its second); tests set 0.
  void set_dropout(double aspp, double decoder, double last);

 private:
  Tensor aspp(const Tensor& x);

  int64_t channels_;
  Norm norm_;
  double aspp_dropout_ = kAsppDropout, decoder_dropout_ = kDecoderDropout, last_dropout_ = kLastDropout;
  Generator dropout_generator_;
  std::array<std::shared_ptr<nn::Conv2d>, 4> branch_convs_;
  std::array<std::shared_ptr<nn::Layer>, 4> branch_norms_;
  std::shared_ptr<nn::Conv2d> pool_conv_, project_conv_, low_conv_, conv1_, conv2_;
  std::shared_ptr<nn::Layer> pool_norm_, project_norm_, low_norm_, norm1_, norm2_;
};

}  // namespace strata::models
