#include "models/resnet.h"

#include <optional>

#include "engine/nn/init.h"
#include "engine/ops/conv2d.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/pooling.h"

namespace strata::models {

namespace {

constexpr int64_t kExpansion = 4;
const Pool2dParams kStemPool{3, 3, 2, 2, 1, 1};

// Stride and dilation of every block of every stage, per layout (see resnet.h).
struct BlockGeometry {
  int64_t stride;
  int64_t dilation;
};

std::array<std::vector<BlockGeometry>, 4> block_geometry(const ResNetConfig& config) {
  check(config.output_stride == 8 || config.output_stride == 16 || config.output_stride == 32,
        "ResNet: output stride must be 8, 16 or 32, got ", config.output_stride);
  std::vector<int> blocks = config.resolved_blocks();
  // Stages 2..4 trade their stride for dilation when the output stride asks for it.
  std::array<bool, 4> dilated = {false, false, config.output_stride == 8, config.output_stride <= 16};
  std::array<std::vector<BlockGeometry>, 4> out;
  int64_t dilation = 1;
  for (int s = 0; s < 4; ++s) {
    int64_t stride = s == 0 ? 1 : 2;
    int64_t previous_dilation = dilation;
    if (dilated[s]) {
      dilation *= stride;
      stride = 1;
    }
    for (int b = 0; b < blocks[s]; ++b) {
      if (config.layout == Layout::torchvision) {
        // torchvision's _make_layer builds the first block with the previous dilation.
        out[s].push_back(b == 0 ? BlockGeometry{stride, previous_dilation} : BlockGeometry{1, dilation});
      } else if (config.layout == Layout::deeplabv3plus && s == 3) {
        // The DeepLabV3+ reference's multi-grid: stage 4's blocks at (1, 2, 4) x the stage's dilation.
        constexpr std::array<int64_t, 3> kMultiGrid = {1, 2, 4};
        out[s].push_back(BlockGeometry{b == 0 ? stride : 1, kMultiGrid[static_cast<size_t>(b) % 3] * dilation});
      } else {
        // MiB's _stride_dilation: every block of the stage at its dilation.
        out[s].push_back(BlockGeometry{b == 0 ? stride : 1, dilation});
      }
    }
  }
  return out;
}

void init_conv(nn::Conv2d& conv, Generator& generator) {
  nn::init::kaiming_normal_(conv.weight(), generator, nn::init::FanMode::fan_out, "relu");
}

}  // namespace

std::vector<int> ResNetConfig::resolved_blocks() const {
  check(width >= 1, "ResNet: width must be >= 1, got ", width);
  if (blocks.empty()) return ResNet::blocks_per_stage(depth);
  check(blocks.size() == 4, "ResNet: blocks must list 4 stages, got ", blocks.size());
  for (int b : blocks) check(b >= 1, "ResNet: every stage needs at least one block, got ", b);
  return blocks;
}

int ResNetConfig::layers() const {
  int total = 0;
  for (int b : resolved_blocks()) total += b;
  return 2 + (bottleneck() ? 3 : 2) * total;
}

ResidualBlock::ResidualBlock(int64_t in_channels, int64_t width, int64_t stride, int64_t dilation, bool bottleneck,
                             Norm norm, Layout layout, bool initialize, Generator& generator)
    : norm_(norm), layout_(layout), stride_(stride), dilation_(dilation) {
  const int64_t out_channels = bottleneck ? width * kExpansion : width;
  if (bottleneck) {
    convs_ = {make_conv(in_channels, width, 1, 1, 1, generator),
              make_conv(width, width, 3, stride, dilation, generator),
              make_conv(width, out_channels, 1, 1, 1, generator)};
  } else {
    convs_ = {make_conv(in_channels, width, 3, stride, dilation, generator),
              make_conv(width, out_channels, 3, 1, dilation, generator)};
  }
  for (size_t i = 0; i < convs_.size(); ++i) {
    norms_.push_back(make_norm(norm, convs_[i]->out_channels(), i + 1 < convs_.size()));
  }
  if (stride != 1 || in_channels != out_channels) {
    proj_conv_ = make_conv(in_channels, out_channels, 1, stride, 1, generator);
    proj_bn_ = make_norm(norm, out_channels, false);
  }
  if (initialize) {
    for (auto& conv : convs_) init_conv(*conv, generator);
    if (proj_conv_) init_conv(*proj_conv_, generator);
  }

  std::shared_ptr<NamedModules> convs;  // MiB's level; torchvision's and semseg's names have none
  if (layout == Layout::mib) convs = register_module("convs", std::make_shared<NamedModules>());
  for (size_t i = 0; i < convs_.size(); ++i) {
    if (convs) {
      convs->add(cat("conv", i + 1), convs_[i]);
      convs->add(cat("bn", i + 1), norms_[i]);
    } else {
      register_module(cat("conv", i + 1), convs_[i]);
      register_module(cat("bn", i + 1), norms_[i]);
    }
  }
  if (proj_conv_ && layout != Layout::mib) {
    auto downsample = register_module("downsample", std::make_shared<NamedModules>());
    downsample->add("0", proj_conv_);
    downsample->add("1", proj_bn_);
  } else if (proj_conv_) {
    register_module("proj_conv", proj_conv_);
    register_module("proj_bn", proj_bn_);
  }
}

Tensor ResidualBlock::forward(const Tensor& x, Tensor* pre_activation) {
  Tensor out = x;
  for (size_t i = 0; i < convs_.size(); ++i) out = norms_[i]->forward(convs_[i]->forward(out));
  Tensor sum = proj_conv_ ? add(out, proj_bn_->forward(proj_conv_->forward(x))) : add(out, x);
  if (pre_activation != nullptr) *pre_activation = sum;
  return activate(norm_, sum);
}

FoldedResidualBlock ResidualBlock::fold(const std::string& prefix) const {
  const std::string convs = prefix + (layout_ == Layout::mib ? "convs." : "");
  FoldedResidualBlock out;
  for (size_t i = 0; i < convs_.size(); ++i) {
    NormFold norm = fold_norm(*norms_[i], cat(convs, "bn", i + 1));
    // The last norm has no activation of its own: the last conv's epilogue adds the shortcut, then
    // applies the block's activation.
    if (i + 1 == convs_.size()) norm.slope = norm_ == Norm::batch_norm ? 0.0 : kLeakySlope;
    out.convs.emplace_back(*convs_[i], norm);
  }
  if (proj_conv_) {
    const std::string proj_bn = prefix + (layout_ == Layout::mib ? "proj_bn" : "downsample.1");
    out.projection = FoldedConv(*proj_conv_, fold_norm(*proj_bn_, proj_bn));
    out.has_projection = true;
  }
  return out;
}

Tensor FoldedResidualBlock::forward(const Tensor& x, Tensor* pre_activation) const {
  // The main branch first, then the projection: its output lives only until the last conv has read it.
  Tensor out = x;
  for (size_t i = 0; i + 1 < convs.size(); ++i) out = convs[i].forward(out);
  Tensor shortcut = has_projection ? projection.forward(x) : x;
  if (pre_activation == nullptr) return convs.back().forward(out, shortcut);
  *pre_activation = convs.back().forward_linear(out, shortcut);
  return leaky_relu(*pre_activation, convs.back().slope());
}

Shape ResidualBlock::trace(const Shape& in, SummaryBuilder& builder) const {
  const bool tv = layout_ != Layout::mib;
  const std::string convs = tv ? "" : "convs.";
  const std::string norm = norm_name(norm_);
  Shape y = in;
  for (size_t i = 0; i < convs_.size(); ++i) {
    y = builder.conv(cat(convs, "conv", i + 1), *convs_[i], y);
    y = builder.norm(cat(convs, "bn", i + 1), i + 1 < convs_.size() ? norm : norm + " (no activation)", *norms_[i], y);
  }
  if (proj_conv_) {
    Shape r = builder.conv(tv ? "downsample.0" : "proj_conv", *proj_conv_, in);
    builder.norm(tv ? "downsample.1" : "proj_bn", norm + " (no activation)", *proj_bn_, r);
  }
  return builder.op("", norm_ == Norm::batch_norm ? "add + relu" : "add + leaky_relu", y);
}

std::vector<int> ResNet::blocks_per_stage(int depth) {
  if (depth == 18) return {2, 2, 2, 2};
  if (depth == 34 || depth == 50) return {3, 4, 6, 3};
  if (depth == 101) return {3, 4, 23, 3};
  throw Error(cat("ResNet: depth must be 18, 34, 50 or 101, got ", depth));
}

std::string ResNet::stage_name(int stage) const {
  return config_.layout == Layout::mib ? cat("mod", stage + 1) : cat("layer", stage);
}

std::string ResNet::stem_prefix() const {
  switch (config_.layout) {
    case Layout::torchvision:
    case Layout::deeplabv3plus: return "";
    case Layout::mib: return "mod1.";
    case Layout::semseg: return "layer0.";
  }
  return "";
}

std::string ResNet::stem_name(size_t i, bool norm) const {
  // semseg's layer0 is Sequential(conv1, bn1, relu, conv2, bn2, relu, conv3, bn3, relu, maxpool).
  if (config_.layout == Layout::semseg) return std::to_string(3 * i + (norm ? 1 : 0));
  return cat(norm ? "bn" : "conv", i + 1);
}

ResNet::ResNet(const ResNetConfig& config, Generator& generator) : config_(config) {
  std::array<std::vector<BlockGeometry>, 4> geometry = block_geometry(config);
  if (config.layout == Layout::semseg) {
    stem_convs_ = {make_conv(3, config.width, 3, 2, 1, generator),
                   make_conv(config.width, config.width, 3, 1, 1, generator),
                   make_conv(config.width, config.stem_channels(), 3, 1, 1, generator)};
  } else {
    stem_convs_ = {make_conv(3, config.width, 7, 2, 1, generator)};
  }
  std::shared_ptr<NamedModules> stem;
  if (config.layout == Layout::mib || config.layout == Layout::semseg) {
    stem = register_module(config.layout == Layout::mib ? "mod1" : "layer0", std::make_shared<NamedModules>());
  }
  for (size_t i = 0; i < stem_convs_.size(); ++i) {
    if (config.initialize) init_conv(*stem_convs_[i], generator);
    stem_norms_.push_back(make_norm(config.norm, stem_convs_[i]->out_channels(), true));
    for (bool norm : {false, true}) {
      std::shared_ptr<nn::Module> module = norm ? std::static_pointer_cast<nn::Module>(stem_norms_[i])
                                                : std::static_pointer_cast<nn::Module>(stem_convs_[i]);
      if (stem) {
        stem->add(stem_name(i, norm), module);
      } else {
        register_module(stem_name(i, norm), module);
      }
    }
  }
  int64_t in_channels = config.stem_channels();
  for (int s = 0; s < 4; ++s) {
    const int64_t block_width = config.width << s;
    auto stage = register_module(stage_name(s + 1), std::make_shared<NamedModules>());
    for (size_t b = 0; b < geometry[s].size(); ++b) {
      auto block = std::make_shared<ResidualBlock>(in_channels, block_width, geometry[s][b].stride,
                                                   geometry[s][b].dilation, config.bottleneck(), config.norm,
                                                   config.layout, config.initialize, generator);
      stage->add(config.layout != Layout::mib ? std::to_string(b) : cat("block", b + 1), block);
      stages_[s].push_back(block);
      in_channels = config.stage_channels(s + 1);
    }
  }
}

ResNet::Output ResNet::forward(const Tensor& x, bool keep_stage3, bool keep_pre_activations, int start_after_stage,
                               int keep_stage_output, bool keep_stage1) {
  check(start_after_stage >= 0 && start_after_stage <= 4 && keep_stage_output >= 0 && keep_stage_output <= 4,
        "ResNet: stages are 1..4, got start_after_stage ", start_after_stage, ", keep_stage_output ",
        keep_stage_output);
  Output output;
  Tensor y;
  if (start_after_stage == 0) {
    check(x.dim() == 4 && x.size(3) == 3, "ResNet: expected normalised images (N,H,W,3), got ", x.describe());
    y = x;
    for (size_t i = 0; i < stem_convs_.size(); ++i) y = stem_norms_[i]->forward(stem_convs_[i]->forward(y));
    y = max_pool2d(y, kStemPool);
  } else {
    check(x.dim() == 4 && x.size(3) == stage_channels(start_after_stage), "ResNet: expected stage ", start_after_stage,
          "'s output (N,h,w,", stage_channels(start_after_stage), ") to start after it, got ", x.describe());
    check(!keep_stage3 || start_after_stage <= 3,
          "ResNet: stage 3's output was computed elsewhere (starting after stage ", start_after_stage, ")");
    check(!keep_stage1 || start_after_stage <= 1,
          "ResNet: stage 1's output was computed elsewhere (starting after stage ", start_after_stage, ")");
    y = x;
    if (start_after_stage == 3 && keep_stage3) output.stage3 = y;
    if (start_after_stage == 1 && keep_stage1) output.stage1 = y;
  }
  for (size_t s = static_cast<size_t>(start_after_stage); s < stages_.size(); ++s) {
    const auto& blocks = stages_[s];
    for (size_t b = 0; b < blocks.size(); ++b) {
      bool last = b + 1 == blocks.size();
      y = blocks[b]->forward(y, keep_pre_activations && last ? &output.pre_activations[s] : nullptr);
    }
    if (s == 0 && keep_stage1) output.stage1 = y;
    if (s == 2 && keep_stage3) output.stage3 = y;
    if (static_cast<int>(s) + 1 == keep_stage_output) output.stage_output = y;
  }
  output.out = y;
  return output;
}

nn::NamedTensors ResNet::parameters_through_stage(int stages) {
  check(stages >= 0 && stages <= 4, "ResNet: stages are 1..4, got ", stages);
  nn::NamedTensors out;
  if (stages == 0) return out;
  const std::string stem = stem_prefix();
  for (auto& [name, parameter] : named_parameters()) {
    bool shared = stem.empty() ? name.rfind("conv1.", 0) == 0 || name.rfind("bn1.", 0) == 0 : name.rfind(stem, 0) == 0;
    for (int s = 1; s <= stages && !shared; ++s) shared = name.rfind(stage_name(s) + ".", 0) == 0;
    if (shared) out.emplace_back(name, parameter);
  }
  return out;
}

FoldedResNet ResNet::fold(const std::string& prefix) const {
  FoldedResNet out;
  for (size_t i = 0; i < stem_convs_.size(); ++i) {
    out.stem.emplace_back(*stem_convs_[i], fold_norm(*stem_norms_[i], prefix + stem_prefix() + stem_name(i, true)));
  }
  for (size_t s = 0; s < stages_.size(); ++s) {
    const bool tv = config_.layout != Layout::mib;
    for (size_t b = 0; b < stages_[s].size(); ++b) {
      const std::string block =
          cat(prefix, stage_name(static_cast<int>(s) + 1), ".", tv ? cat(b) : cat("block", b + 1), ".");
      out.stages[s].push_back(stages_[s][b]->fold(block));
    }
  }
  return out;
}

ResNet::Output FoldedResNet::forward(const Tensor& x, bool keep_stage3, bool keep_pre_activations,
                                     int keep_stage_output, bool keep_stage1) const {
  check(x.dim() == 4 && x.size(3) == 3, "ResNet: expected normalised images (N,H,W,3), got ", x.describe());
  ResNet::Output output;
  Tensor y = x;
  for (const FoldedConv& conv : stem) y = conv.forward(y);
  y = max_pool2d(y, kStemPool);
  for (size_t s = 0; s < stages.size(); ++s) {
    const auto& blocks = stages[s];
    for (size_t b = 0; b < blocks.size(); ++b) {
      bool last = b + 1 == blocks.size();
      y = blocks[b].forward(y, keep_pre_activations && last ? &output.pre_activations[s] : nullptr);
    }
    if (s == 0 && keep_stage1) output.stage1 = y;
    if (s == 2 && keep_stage3) output.stage3 = y;
    if (static_cast<int>(s) + 1 == keep_stage_output) output.stage_output = y;
  }
  output.out = y;
  return output;
}

Shape ResNet::trace(const Shape& in, SummaryBuilder& builder, Shape* stage3, Shape* stage1) const {
  const bool tv = config_.layout != Layout::mib;
  Shape y = in;
  {
    const std::string level = config_.layout == Layout::mib ? "mod1" : "layer0";
    builder.set_stage("stem", stem_prefix().empty() ? "stem (conv1, bn1, maxpool)" : cat("stem (", level, ")"));
    std::optional<SummaryBuilder::Level> stem;
    if (!stem_prefix().empty()) stem.emplace(builder, level);
    for (size_t i = 0; i < stem_convs_.size(); ++i) {
      y = builder.conv(stem_name(i, false), *stem_convs_[i], y);
      y = builder.norm(stem_name(i, true), norm_name(config_.norm), *stem_norms_[i], y);
    }
    Shape pooled = {y[0], conv2d_output_size(y[1], 3, 2, 1, 1), conv2d_output_size(y[2], 3, 2, 1, 1), y[3]};
    const char* pool = stem_prefix().empty() ? "maxpool" : config_.layout == Layout::mib ? "pool1" : "9";
    y = builder.op(pool, "max_pool 3x3/2", pooled);
  }
  for (int s = 0; s < 4; ++s) {
    std::string name = stage_name(s + 1);
    builder.set_stage(cat("layer", s + 1), cat(name, " (", stages_[s].size(), " blocks)"));
    SummaryBuilder::Level stage_level(builder, name);
    for (size_t b = 0; b < stages_[s].size(); ++b) {
      SummaryBuilder::Level block_level(builder, tv ? std::to_string(b) : cat("block", b + 1));
      y = stages_[s][b]->trace(y, builder);
    }
    if (s == 0 && stage1 != nullptr) *stage1 = y;
    if (s == 2 && stage3 != nullptr) *stage3 = y;
  }
  return y;
}

}  // namespace strata::models
