// BiSeNet v1 (Yu et al. 2018, "Bilateral Segmentation Network") as CoinCheung/BiSeNet's v1 builds it
// (the widely used PyTorch reproduction): a context path on a ResNet (ResNet-18 in the paper) at
// output stride 32, a spatial path of three stride-2 convolutions, their fusion at 1/8 of the input,
// and two auxiliary heads on the context path trained with the main loss. Every "ConvBNReLU" below
// is a bias-free convolution with `Norm`'s norm and activation (batch norm + ReLU in the reference).
//
// BiSeNetHead, the images and the backbone's stage-3 and stage-4 outputs -> (N,h8,w8,channels):
//   sp (spatial path): conv1 7x7/2 3->64, conv2 3x3/2, conv3 3x3/2, conv_out 1x1 64->128 (ConvBNReLU)
//   cp (context path): avg = conv_avg(1x1 ConvBNReLU s4->128 of the global mean of stage 4);
//     arm32(stage 4) + avg, nearest-upsampled to stage 3's size -> conv_head32 (3x3 ConvBNReLU) = cp16;
//     arm16(stage 3) + cp16, nearest-upsampled to the spatial path's size -> conv_head16 = cp8
//     arm (attention refinement): feat = conv (3x3 ConvBNReLU in->128); feat x sigmoid(bn_atten(
//       conv_atten 1x1(global mean of feat))), bn_atten without activation
//   ffm (feature fusion): feat = convblk (1x1 ConvBNReLU 256->256) of [sp, cp8];
//     feat x sigmoid(conv2 1x1(relu(conv1 1x1 256->64(global mean of feat)))) + feat
//   out: 3x3 ConvBNReLU 256->channels, then the incremental classifier (the reference's
//     conv_out.conv_out)
// BiSeNetAuxHead (the reference's conv_out16 on cp8 and conv_out32 on cp16): conv 3x3 ConvBNReLU
//   128->64, then its own incremental classifier ("cls"), so a step adds classes to all three.
// All three logits are upsampled to the input size bilinearly with align_corners true; the reference
// trains main + aux16 + aux32 with weight 1 each.
// Differences from the reference, on purpose: the classifiers have a bias (the incremental
// classifier's, which MiB's initialisation needs; tools/convert_weights.py gives converted ones a
// zero bias); the reference's OHEM cross-entropy is the method's classification loss here.
// Names: the reference's cp.resnet.* are backbone.*, cp/sp/ffm are head.cp/head.sp/head.ffm,
// conv_out.conv is head.out, conv_out.conv_out is cls.0, conv_out16/32 are aux16/aux32 (their
// conv_out: aux16.cls.0, aux32.cls.0).
//
// Folding (models/blocks.h): every ConvBNReLU and ARM's conv_atten + bn_atten fold into one
// convolution; the attention products and sums stay ops.
#pragma once

#include <memory>

#include "models/blocks.h"
#include "models/classifier.h"
#include "models/summary.h"

namespace strata::models {

// A bias-free convolution with a norm and the norm's activation: the reference's ConvBNReLU, keys
// conv.*, bn.*.
class ConvNormAct : public nn::Module {
 public:
  ConvNormAct(int64_t in_channels, int64_t out_channels, int64_t kernel, int64_t stride, Norm norm, bool activated,
              Generator& generator);
  Tensor forward(const Tensor& x);
  Shape trace(const Shape& in, SummaryBuilder& builder) const;
  FoldedConv fold(const std::string& prefix) const;
  nn::Conv2d& conv() { return *conv_; }

 private:
  Norm norm_;
  std::shared_ptr<nn::Conv2d> conv_;
  std::shared_ptr<nn::Layer> bn_;
};

struct FoldedBiSeNetHead {
  FoldedConv sp[4];
  FoldedConv arm_conv[2], arm_atten[2];  // [0]: arm16, [1]: arm32
  FoldedConv conv_avg, conv_head32, conv_head16, ffm_block, ffm_conv1, ffm_conv2, out;
  struct Maps {
    Tensor features, context8, context16;
  };
  Maps forward(const Tensor& images, const Tensor& stage3, const Tensor& stage4) const;
};

class BiSeNetHead : public nn::Module {
 public:
  BiSeNetHead(int64_t stage3_channels, int64_t stage4_channels, Norm norm, bool initialize, Generator& generator,
              int64_t channels = kChannels);
  struct Maps {
    Tensor features;   // (N,h8,w8,channels): the classifier's input
    Tensor context8;   // cp8 (N,h8,w8,128): aux16's input
    Tensor context16;  // cp16 (N,h16,w16,128): aux32's input
  };
  Maps forward(const Tensor& images, const Tensor& stage3, const Tensor& stage4);
  // The features' shape for these inputs (and the two context maps'); the builder records every layer.
  Shape trace(const Shape& images, const Shape& stage3, const Shape& stage4, SummaryBuilder& builder, Shape* context8,
              Shape* context16) const;
  FoldedBiSeNetHead fold(const std::string& prefix) const;
  static constexpr int64_t kChannels = 256;
  static constexpr int64_t kContextChannels = 128;
  int64_t channels() const { return channels_; }

 private:
  int64_t channels_;
  std::shared_ptr<ConvNormAct> sp_[4];
  std::shared_ptr<ConvNormAct> arm_conv_[2];
  std::shared_ptr<nn::Conv2d> arm_atten_conv_[2];
  std::shared_ptr<nn::Layer> arm_atten_bn_[2];
  std::shared_ptr<ConvNormAct> conv_avg_, conv_head32_, conv_head16_, ffm_block_, out_;
  std::shared_ptr<nn::Conv2d> ffm_conv1_, ffm_conv2_;
};

struct FoldedBiSeNetAuxHead {
  FoldedConv conv, classifier;
  Tensor forward(const Tensor& x) const;
};

class BiSeNetAuxHead : public nn::Module {
 public:
  BiSeNetAuxHead(int64_t in_channels, const std::vector<int64_t>& classes, Norm norm, bool initialize,
                 Generator& generator);
  Tensor forward(const Tensor& x);  // (N,h,w,in) -> (N,h,w,classes)
  Shape trace(const Shape& in, SummaryBuilder& builder) const;
  FoldedBiSeNetAuxHead fold(const std::string& prefix) const;
  IncrementalClassifier& classifier() { return *classifier_; }
  static constexpr int64_t kChannels = 64;

 private:
  std::shared_ptr<ConvNormAct> conv_;
  std::shared_ptr<IncrementalClassifier> classifier_;
};

}  // namespace strata::models
