// ResNet-18/34/50/101 backbones for segmentation (He et al. 2016), in the two layouts strata's
// references use. ResNet-50/101 stack bottleneck blocks (torchvision's v1.5: the stride sits on the 3x3
// conv), ResNet-18/34 basic blocks.
//
//   stem        7x7/2 conv 3->64 (no bias), norm + activation, 3x3/2 max pool (padding 1); the semseg
//               layout's deep stem below instead
//   stage i     (i = 1..4) blocks of width 64*2^(i-1); ResNet-18: 2,2,2,2 blocks, ResNet-34 and -50:
//               3,4,6,3, ResNet-101: 3,4,23,3
//   bottleneck  y = act(bn3(conv3 1x1(a(bn2(conv2 3x3/s d(a(bn1(conv1 1x1(x)))))))) + shortcut(x)),
//               output 4x the width (2048 channels out of stage 4)
//   basic       y = act(bn2(conv2 3x3 d(a(bn1(conv1 3x3/s d(x))))) + shortcut(x)), output = the width
//               (512 channels out of stage 4)
//               shortcut = bn(conv 1x1/s (x)) when the stride or the channel count changes, else x;
//               the block's last norm and the shortcut's have no activation; `act` is the norm's
//               (models/blocks.h)
//
// Output stride (input size / feature size): 32 (no dilation), 16 (stage 4 runs at stride 1,
// dilated 2) or 8 (stages 3 and 4 at stride 1, dilated 2 and 4). A dilated block dilates its 3x3
// convolutions (both of a basic block, as MiB's ResidualBlock). The layouts differ in names and
// in the dilation of a dilated stage's first block:
//   torchvision  torchvision.models.resnet with replace_stride_with_dilation: keys backbone.conv1,
//                backbone.bn1, backbone.layer{1..4}.{i}.{conv1,bn1,conv2,bn2[,conv3,bn3]},
//                backbone.layer{k}.0.downsample.{0,1}. The first block of a dilated stage keeps the
//                previous stage's dilation (OS16: layer4.0 d1, layer4.1+ d2; OS8: layer3.0 d1,
//                layer3.1+ d2, layer4.0 d2, layer4.1+ d4). torchvision's own BasicBlock refuses
//                dilation; strata dilates ResNet-18/34 by the same rule as the bottleneck ResNets.
//   mib          MiB/PLOP's models/resnet.py + modules/residual.py: keys body.mod1.{conv1,bn1},
//                body.mod{2..5}.block{1..n}.convs.{conv1,bn1,conv2,bn2[,conv3,bn3]},
//                body.mod{k}.block1.{proj_conv,proj_bn}. Every block of a stage uses the stage's
//                dilation (OS16: [1,1,1,2], OS8: [1,1,2,4] for mod2..mod5).
//   semseg       hszhao/semseg's ResNet with deep_base=True, as its PSPNet uses it (layer0 a Sequential
//                of the stem's modules): a deep stem of three 3x3 convolutions, 3->w (stride 2), w->w,
//                w->2w (w = width: 64, 64, 128 channels), each with norm + activation, then the
//                max pool; keys backbone.layer0.{0,3,6} (convs), backbone.layer0.{1,4,7} (norms), then
//                torchvision's block names under backbone.layer{1..4}. Dilation as MiB's: PSPNet sets
//                every 3x3 conv of a dilated stage (and its projection's stride 1).
//   deeplabv3plus  the DeepLabV3+ reference (jfzhang95/pytorch-deeplab-xception, modeling/backbone/
//                resnet.py): torchvision's stem and names, every block of a stage at the stage's dilation
//                (as MiB's), and stage 4 a multi-grid unit: its blocks at (1, 2, 4) x the stage's dilation
//                (OS16: 2, 4, 8; OS8: 4, 8, 16; a stage of other than 3 blocks repeats the pattern).
// Stage i is "layer{i}" in torchvision's, semseg's and deeplabv3plus's names and "mod{i+1}" in MiB's.
//
// Folding (models/blocks.h): fold() turns a backbone in eval mode into FoldedResNet, the same forward
// with every norm folded into its convolution: a block is its convolutions with their activations,
// the last one's epilogue adding the shortcut (the folded projection or the input) and applying the
// block's activation, so a bottleneck writes three tensors (four with a projection) where the
// unfolded one writes seven or more.
//
// Initialisation (torchvision's): convolutions kaiming_normal(fan_out, relu), norms weight 1 bias 0.
//
// Size: the references use width 64 (stem channels and stage 1's block width; stage i has width
// width*2^(i-1), times 4 at the output of a bottleneck) and the depth's block counts. A smaller
// backbone for CPU demos and tests sets `blocks` and `width` explicitly (e.g. one bottleneck per
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

enum class Layout { torchvision, mib, semseg, deeplabv3plus };

struct ResNetConfig {
  int depth = 101;          // 18, 34 (basic blocks), 50 or 101 (bottlenecks)
  int output_stride = 16;   // 8, 16 or 32
  Norm norm = Norm::inplace_abn;
  Layout layout = Layout::mib;
  bool initialize = true;   // false: keep nn::Conv2d's default init (weights are loaded next)
  std::vector<int> blocks = {};  // blocks per stage (4 values >= 1); empty: the depth's (reference)
  int64_t width = 64;            // stem channels and stage 1's block width (reference: 64)

  bool bottleneck() const { return depth >= 50; }             // else basic blocks
  int64_t expansion() const { return bottleneck() ? 4 : 1; }  // a block's output channels / its width
  std::vector<int> resolved_blocks() const;  // `blocks`, or blocks_per_stage(depth); throws when invalid
  int64_t out_channels() const { return width * 8 * expansion(); }     // stage 4's (2048 for ResNet-50)
  int64_t stage3_channels() const { return width * 4 * expansion(); }  // stage 3's (1024 for ResNet-50)
  int64_t stage_channels(int stage) const { return width * expansion() << (stage - 1); }  // stage 1..4's
  int64_t stem_channels() const { return layout == Layout::semseg ? 2 * width : width; }
  // 2 + convolutions per block * total blocks: 18, 34, 50, 101, or 14 for one bottleneck per stage
  int layers() const;
};

struct FoldedResidualBlock {
  std::vector<FoldedConv> convs;  // the main branch; the last one adds the shortcut in its epilogue
  FoldedConv projection;
  bool has_projection = false;
  // As ResidualBlock::forward, in eval mode, without recording a graph.
  Tensor forward(const Tensor& x, Tensor* pre_activation = nullptr) const;
};

// A bottleneck or basic block (the file comment), as MiB's ResidualBlock with three or two widths.
class ResidualBlock : public nn::Module {
 public:
  ResidualBlock(int64_t in_channels, int64_t width, int64_t stride, int64_t dilation, bool bottleneck, Norm norm,
                Layout layout, bool initialize, Generator& generator);

  // x: (N,H,W,in) -> (N,P,Q,out). When pre_activation is given it receives the residual sum
  // before the final activation (PLOP's POD input).
  Tensor forward(const Tensor& x, Tensor* pre_activation = nullptr);
  Shape trace(const Shape& in, SummaryBuilder& builder) const;
  // The block folded (norms in eval mode; `prefix` is the block's state-dict name, for messages).
  FoldedResidualBlock fold(const std::string& prefix) const;

  int64_t stride() const { return stride_; }
  int64_t dilation() const { return dilation_; }
  bool bottleneck() const { return convs_.size() == 3; }
  bool has_projection() const { return proj_conv_ != nullptr; }
  const nn::Conv2d& conv2() const { return *convs_[1]; }  // a 3x3 convolution in both kinds

 private:
  Norm norm_;
  Layout layout_;
  int64_t stride_, dilation_;
  std::vector<std::shared_ptr<nn::Conv2d>> convs_;  // conv1, conv2[, conv3]
  std::vector<std::shared_ptr<nn::Layer>> norms_;   // bn1, bn2[, bn3]; the last without activation
  std::shared_ptr<nn::Conv2d> proj_conv_;
  std::shared_ptr<nn::Layer> proj_bn_;
};

struct FoldedResNet;

class ResNet : public nn::Module {
 public:
  ResNet(const ResNetConfig& config, Generator& generator);

  struct Output {
    Tensor out;                             // stage 4 output (N,h,w,out_channels())
    Tensor stage3;                          // stage 3 output (N,h3,w3,stage3_channels()), when asked for
    std::array<Tensor, 4> pre_activations;  // last block of each stage before its activation, when asked for
    Tensor stage_output;                    // stage keep_stage_output's output, when asked for
    Tensor stage1;                          // stage 1 output (DeepLabV3+'s low-level features), when asked for
  };
  // x: (N,H,W,3) normalised images -> the output above. keep_stage3 / keep_pre_activations decide
  // whether those are returned; nothing else outlives the call (beyond the autograd graph).
  // Stages shared with another network (--share-stages K, the LwF ablation log's share_resK):
  // start_after_stage K (1..4) takes x as stage K's output (N,h_K,w_K,stage_channels(K)),
  // computed by the other network, and runs stages K+1..4 only (no pre-activations of stages <= K;
  // keep_stage3 then needs K <= 3); keep_stage_output K returns stage K's output in stage_output.
  // keep_stage1 returns stage 1's output (needs start_after_stage 0 or 1).
  Output forward(const Tensor& x, bool keep_stage3 = false, bool keep_pre_activations = false,
                 int start_after_stage = 0, int keep_stage_output = 0, bool keep_stage1 = false);
  Shape trace(const Shape& in, SummaryBuilder& builder, Shape* stage3 = nullptr, Shape* stage1 = nullptr) const;
  // The backbone folded (norms in eval mode; `prefix` is its state-dict name, for messages).
  FoldedResNet fold(const std::string& prefix) const;

  const ResNetConfig& config() const { return config_; }
  // {2,2,2,2}, {3,4,6,3} (34 and 50) or {3,4,23,3}; throws naming the depths otherwise
  static std::vector<int> blocks_per_stage(int depth);
  std::string stage_name(int stage) const;              // "layer1".."layer4" or "mod2".."mod5"
  const std::vector<std::shared_ptr<ResidualBlock>>& stage(int stage) const { return stages_.at(stage - 1); }
  int64_t out_channels() const { return config_.out_channels(); }
  int64_t stage3_channels() const { return config_.stage3_channels(); }
  int64_t stage_channels(int stage) const { return config_.stage_channels(stage); }  // stage 1..4's output
  // The stem's and stages 1..`stages`'s parameters, named as in named_parameters(); none for 0.
  nn::NamedTensors parameters_through_stage(int stages);

 private:
  std::string stem_prefix() const;                   // "", "mod1." or "layer0."
  std::string stem_name(size_t i, bool norm) const;  // "conv1"/"bn1" ..., or semseg's "0"/"1", "3"/"4", "6"/"7"

  ResNetConfig config_;
  std::vector<std::shared_ptr<nn::Conv2d>> stem_convs_;  // one, or the deep stem's three
  std::vector<std::shared_ptr<nn::Layer>> stem_norms_;
  std::array<std::vector<std::shared_ptr<ResidualBlock>>, 4> stages_;
};

struct FoldedResNet {
  std::vector<FoldedConv> stem;
  std::array<std::vector<FoldedResidualBlock>, 4> stages;
  // As ResNet::forward from the images, in eval mode, without recording a graph.
  ResNet::Output forward(const Tensor& x, bool keep_stage3 = false, bool keep_pre_activations = false,
                         int keep_stage_output = 0, bool keep_stage1 = false) const;
};

}  // namespace strata::models
