// ResNet-50 / ResNet-101 backbones for segmentation (He et al. 2016, torchvision's v1.5 bottleneck:
// the stride sits on the 3x3 conv), in the two layouts strata's references use.
//
//   stem     7x7/2 conv 3->64 (no bias), norm + activation, 3x3/2 max pool (padding 1)
//   stage i  (i = 1..4) blocks of the bottleneck below, mid channels 64*2^(i-1), out 4x that;
//            ResNet-50: 3,4,6,3 blocks; ResNet-101: 3,4,23,3
//   block    y = act(bn3(conv3 1x1(a(bn2(conv2 3x3/s d(a(bn1(conv1 1x1(x)))))))) + shortcut(x))
//            shortcut = bn(conv 1x1/s (x)) when the stride or the channel count changes, else x;
//            bn3 and the shortcut's bn have no activation; `act` is the norm's (models/blocks.h)
//
// Output stride (input size / feature size): 32 (no dilation), 16 (stage 4 runs at stride 1,
// dilated 2) or 8 (stages 3 and 4 at stride 1, dilated 2 and 4). The layouts differ in names and
// in the dilation of a dilated stage's first block:
//   torchvision  torchvision.models.resnet with replace_stride_with_dilation: keys backbone.conv1,
//                backbone.bn1, backbone.layer{1..4}.{i}.{conv1,bn1,conv2,bn2,conv3,bn3},
//                backbone.layer{k}.0.downsample.{0,1}. The first block of a dilated stage keeps the
//                previous stage's dilation (OS16: layer4.0 d1, layer4.1+ d2; OS8: layer3.0 d1,
//                layer3.1+ d2, layer4.0 d2, layer4.1+ d4).
//   mib          MiB/PLOP's models/resnet.py + modules/residual.py: keys body.mod1.{conv1,bn1},
//                body.mod{2..5}.block{1..n}.convs.{conv1,bn1,conv2,bn2,conv3,bn3},
//                body.mod{k}.block1.{proj_conv,proj_bn}. Every block of a stage uses the stage's
//                dilation (OS16: [1,1,1,2], OS8: [1,1,2,4] for mod2..mod5).
// Stage i is "layer{i}" in torchvision's names and "mod{i+1}" in MiB's.
//
// Folding (models/blocks.h): fold() turns a backbone in eval mode into FoldedResNet, the same forward
// with every norm folded into its convolution: a block is conv1 and conv2 with their activations,
// then conv3 whose epilogue adds the shortcut (the folded projection or the input) and applies the
// block's activation, so a block writes three tensors (four with a projection) where the unfolded
// one writes seven or more.
//
// Initialisation (torchvision's): convolutions kaiming_normal(fan_out, relu), norms weight 1 bias 0.
//
// Size: the references use width 64 (stem channels and stage 1's bottleneck width; stage i has
// width*2^(i-1) mid and 4x that output channels, so 2048 out) and the depth's block counts. A
// smaller backbone for CPU demos and tests sets `blocks` and `width` explicitly (e.g. one block per
// stage and width 16: "ResNet-14", 512 output channels); its names and structure are otherwise the
// same, so everything that handles a ResNet handles it.
#pragma once

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "models/blocks.h"
#include "models/summary.h"

namespace strata::models {

enum class Layout { torchvision, mib };

struct ResNetConfig {
  int depth = 101;          // 50 or 101
  int output_stride = 16;   // 8, 16 or 32
  Norm norm = Norm::inplace_abn;
  Layout layout = Layout::mib;
  bool initialize = true;   // false: keep nn::Conv2d's default init (weights are loaded next)
  std::vector<int> blocks = {};  // bottlenecks per stage (4 values >= 1); empty: the depth's (reference)
  int64_t width = 64;       // stem channels and stage 1's bottleneck width (reference: 64)

  std::vector<int> resolved_blocks() const;  // `blocks`, or blocks_per_stage(depth); throws when invalid
  int64_t out_channels() const { return width * 32; }     // stage 4's output channels (2048 at width 64)
  int64_t stage3_channels() const { return width * 16; }  // stage 3's (1024 at width 64)
  int layers() const;  // 2 + 3 * total blocks: 50, 101, or 14 for one block per stage
};

struct FoldedBottleneck {
  FoldedConv conv1, conv2, conv3, projection;
  bool has_projection = false;
  // As Bottleneck::forward, in eval mode, without recording a graph.
  Tensor forward(const Tensor& x, Tensor* pre_activation = nullptr) const;
};

class Bottleneck : public nn::Module {
 public:
  Bottleneck(int64_t in_channels, int64_t mid_channels, int64_t stride, int64_t dilation, Norm norm, Layout layout,
             bool initialize, Generator& generator);

  // x: (N,H,W,in) -> (N,P,Q,4*mid). When pre_activation is given it receives the residual sum
  // before the final activation (PLOP's POD input).
  Tensor forward(const Tensor& x, Tensor* pre_activation = nullptr);
  Shape trace(const Shape& in, SummaryBuilder& builder) const;
  // The block folded (norms in eval mode; `prefix` is the block's state-dict name, for messages).
  FoldedBottleneck fold(const std::string& prefix) const;

  int64_t stride() const { return stride_; }
  int64_t dilation() const { return dilation_; }
  bool has_projection() const { return proj_conv_ != nullptr; }
  const nn::Conv2d& conv2() const { return *conv2_; }

 private:
  Norm norm_;
  Layout layout_;
  int64_t stride_, dilation_;
  std::shared_ptr<nn::Conv2d> conv1_, conv2_, conv3_, proj_conv_;
  std::shared_ptr<nn::Layer> bn1_, bn2_, bn3_, proj_bn_;
};

struct FoldedResNet;

class ResNet : public nn::Module {
 public:
  ResNet(const ResNetConfig& config, Generator& generator);

  struct Output {
    Tensor out;                           // stage 4 output (N,h,w,2048)
    Tensor stage3;                        // stage 3 output (N,h3,w3,1024), when asked for
    std::array<Tensor, 4> pre_activations;  // last block of each stage before its activation, when asked for
    Tensor stage_output;                    // stage keep_stage_output's output, when asked for
  };
  // x: (N,H,W,3) normalised images -> the output above. keep_stage3 / keep_pre_activations decide
  // whether those are returned; nothing else outlives the call (beyond the autograd graph).
  // Stages shared with another network (--share-stages K, the LwF ablation log's share_resK):
  // start_after_stage K (1..4) takes x as stage K's output (N,h_K,w_K,64*4*2^(K-1) at width 64),
  // computed by the other network, and runs stages K+1..4 only (no pre-activations of stages <= K;
  // keep_stage3 then needs K <= 3); keep_stage_output K returns stage K's output in stage_output.
  Output forward(const Tensor& x, bool keep_stage3 = false, bool keep_pre_activations = false,
                 int start_after_stage = 0, int keep_stage_output = 0);
  Shape trace(const Shape& in, SummaryBuilder& builder, Shape* stage3 = nullptr) const;
  // The backbone folded (norms in eval mode; `prefix` is its state-dict name, for messages).
  FoldedResNet fold(const std::string& prefix) const;

  const ResNetConfig& config() const { return config_; }
  static std::vector<int> blocks_per_stage(int depth);  // {3,4,6,3} or {3,4,23,3}; throws otherwise
  std::string stage_name(int stage) const;              // "layer1".."layer4" or "mod2".."mod5"
  const std::vector<std::shared_ptr<Bottleneck>>& stage(int stage) const { return stages_.at(stage - 1); }
  // Output channels of the reference width (64); config().out_channels() for any width.
  static constexpr int64_t kOutChannels = 2048;
  static constexpr int64_t kStage3Channels = 1024;
  int64_t out_channels() const { return config_.out_channels(); }
  int64_t stage3_channels() const { return config_.stage3_channels(); }
  int64_t stage_channels(int stage) const { return config_.width * 4 << (stage - 1); }  // stage 1..4's output
  // The stem's and stages 1..`stages`'s parameters, named as in named_parameters(); none for 0.
  nn::NamedTensors parameters_through_stage(int stages);

 private:
  ResNetConfig config_;
  std::shared_ptr<nn::Conv2d> conv1_;
  std::shared_ptr<nn::Layer> bn1_;
  std::array<std::vector<std::shared_ptr<Bottleneck>>, 4> stages_;
};

struct FoldedResNet {
  FoldedConv stem;
  std::array<std::vector<FoldedBottleneck>, 4> stages;
  // As ResNet::forward from the images, in eval mode, without recording a graph.
  ResNet::Output forward(const Tensor& x, bool keep_stage3 = false, bool keep_pre_activations = false,
                         int keep_stage_output = 0) const;
};

}  // namespace strata::models
