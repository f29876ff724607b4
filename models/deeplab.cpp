#include "models/deeplab.h"

#include <algorithm>
#include <string>

#include "engine/nn/init.h"
#include "engine/ops/channels.h"
#include "engine/ops/conv2d.h"
#include "engine/ops/dropout.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/pad.h"
#include "engine/ops/pooling.h"
#include "engine/ops/upsample.h"

namespace strata::models {

namespace {

Shape with_channels(const Shape& s, int64_t channels) { return {s[0], s[1], s[2], channels}; }

// The replicate padding that brings a stride-1 pooled map of window `window` back to the input
// size: (window - 1) split with the extra pixel after (MiB's _global_pooling).
std::pair<int64_t, int64_t> pooling_pad(int64_t window) {
  int64_t before = (window - 1) / 2;
  int64_t after = window % 2 == 1 ? before : before + 1;
  return {before, after};
}

// The image branch's pooling: global (N,1,1,C), or with a window smaller than the map (`window` > 0,
// eval mode) the sliding average replicate-padded back to (N,h,w,C).
Tensor pool_image(const Tensor& x, int64_t window) {
  const int64_t h = x.size(1), w = x.size(2);
  if (window == 0 || (window >= h && window >= w)) return global_avg_pool(x);
  const int64_t window_h = std::min(window, h), window_w = std::min(window, w);
  auto [top, bottom] = pooling_pad(window_h);
  auto [left, right] = pooling_pad(window_w);
  return pad_replicate(avg_pool2d(x, Pool2dParams{window_h, window_w, 1, 1}), top, bottom, left, right);
}

}  // namespace

// ---- torchvision -------------------------------------------------------------------------------

TorchvisionHead::TorchvisionHead(int64_t in_channels, std::array<int64_t, 3> rates, Norm norm, double dropout,
                                 uint64_t seed, Generator& generator, int64_t channels)
    : channels_(channels), norm_(norm), dropout_(dropout), dropout_generator_(seed) {
  check(dropout >= 0 && dropout < 1, "TorchvisionHead: dropout must be in [0, 1), got ", dropout);
  check(channels >= 1, "TorchvisionHead: channels must be >= 1, got ", channels);
  const int64_t aspp_channels = channels;
  auto aspp = register_module("0", std::make_shared<NamedModules>());
  auto convs = aspp->add("convs", std::make_shared<NamedModules>());
  for (int i = 0; i < 4; ++i) {
    int64_t rate = i == 0 ? 1 : rates[i - 1];
    branch_convs_[i] = make_conv(in_channels, aspp_channels, i == 0 ? 1 : 3, 1, rate, generator);
    branch_norms_[i] = make_norm(norm, aspp_channels, true);
    auto branch = convs->add(std::to_string(i), std::make_shared<NamedModules>());
    branch->add("0", branch_convs_[i]);
    branch->add("1", branch_norms_[i]);
  }
  pool_conv_ = make_conv(in_channels, aspp_channels, 1, 1, 1, generator);
  pool_norm_ = make_norm(norm, aspp_channels, true);
  auto pooling = convs->add("4", std::make_shared<NamedModules>());
  pooling->add("1", pool_conv_);
  pooling->add("2", pool_norm_);
  project_conv_ = make_conv(5 * aspp_channels, aspp_channels, 1, 1, 1, generator);
  project_norm_ = make_norm(norm, aspp_channels, true);
  auto project = aspp->add("project", std::make_shared<NamedModules>());
  project->add("0", project_conv_);
  project->add("1", project_norm_);
  conv_ = register_module("1", make_conv(aspp_channels, channels, 3, 1, 1, generator));
  norm_layer_ = register_module("2", make_norm(norm, channels, true));
}

Tensor TorchvisionHead::forward(const Tensor& x) {
  const int64_t h = x.size(1), w = x.size(2);
  std::vector<Tensor> branches;
  for (int i = 0; i < 4; ++i) branches.push_back(branch_norms_[i]->forward(branch_convs_[i]->forward(x)));
  Tensor pooled = pool_norm_->forward(pool_conv_->forward(global_avg_pool(x)));
  branches.push_back(upsample_bilinear(pooled, h, w, false));
  Tensor y = project_norm_->forward(project_conv_->forward(concat(branches)));
  branches.clear();
  y = dropout(y, dropout_, is_training(), dropout_generator_);
  return norm_layer_->forward(conv_->forward(y));
}

FoldedTorchvisionHead TorchvisionHead::fold(const std::string& prefix) const {
  FoldedTorchvisionHead out;
  for (int i = 0; i < 4; ++i) {
    out.branches[i] = FoldedConv(*branch_convs_[i], fold_norm(*branch_norms_[i], cat(prefix, "0.convs.", i, ".1")));
  }
  out.pooling = FoldedConv(*pool_conv_, fold_norm(*pool_norm_, prefix + "0.convs.4.2"));
  out.project = FoldedConv(*project_conv_, fold_norm(*project_norm_, prefix + "0.project.1"));
  out.conv = FoldedConv(*conv_, fold_norm(*norm_layer_, prefix + "2"));
  return out;
}

Tensor FoldedTorchvisionHead::forward(const Tensor& x) const {
  const int64_t h = x.size(1), w = x.size(2);
  std::vector<Tensor> maps;
  for (const FoldedConv& branch : branches) maps.push_back(branch.forward(x));
  maps.push_back(upsample_bilinear(pooling.forward(global_avg_pool(x)), h, w, false));
  Tensor y = project.forward(concat(maps));
  maps.clear();
  return conv.forward(y);
}

Shape TorchvisionHead::trace(const Shape& in, SummaryBuilder& builder) const {
  const std::string norm = norm_name(norm_);
  const int64_t aspp_channels = channels_;
  Shape y;
  {
    SummaryBuilder::Level aspp(builder, "0");
    for (int i = 0; i < 4; ++i) {
      SummaryBuilder::Level branch(builder, cat("convs.", i));
      y = builder.norm("1", norm, *branch_norms_[i], builder.conv("0", *branch_convs_[i], in));
    }
    {
      SummaryBuilder::Level branch(builder, "convs.4");
      Shape p = builder.op("0", "global_avg_pool", {in[0], 1, 1, in[3]});
      p = builder.norm("2", norm, *pool_norm_, builder.conv("1", *pool_conv_, p));
      builder.op("", "upsample (broadcast)", with_channels(in, aspp_channels));
    }
    y = builder.op("", "concat", with_channels(in, 5 * aspp_channels));
    SummaryBuilder::Level project(builder, "project");
    y = builder.norm("1", norm, *project_norm_, builder.conv("0", *project_conv_, y));
    y = builder.op("3", cat("dropout ", dropout_), y);
  }
  return builder.norm("2", norm, *norm_layer_, builder.conv("1", *conv_, y));
}

// ---- MiB ---------------------------------------------------------------------------------------

MiBHead::MiBHead(int64_t in_channels, std::array<int64_t, 3> rates, Norm norm, int64_t pooling_size,
                 bool initialize, Generator& generator, int64_t channels)
    : channels_(channels), norm_(norm), pooling_size_(pooling_size) {
  check(pooling_size >= 0, "MiBHead: pooling_size must be >= 0 (0 = always global pooling), got ", pooling_size);
  check(channels >= 1, "MiBHead: channels must be >= 1, got ", channels);
  const int64_t aspp_channels = channels;
  auto map_convs = register_module("map_convs", std::make_shared<NamedModules>());
  for (int i = 0; i < 4; ++i) {
    map_convs_[i] = map_convs->add(std::to_string(i),
                                   make_conv(in_channels, aspp_channels, i == 0 ? 1 : 3, 1,
                                             i == 0 ? 1 : rates[i - 1], generator));
  }
  map_bn_ = register_module("map_bn", make_norm(norm, 4 * aspp_channels, true));
  red_conv_ = register_module("red_conv", make_conv(4 * aspp_channels, channels, 1, 1, 1, generator));
  global_pooling_conv_ =
      register_module("global_pooling_conv", make_conv(in_channels, aspp_channels, 1, 1, 1, generator));
  global_pooling_bn_ = register_module("global_pooling_bn", make_norm(norm, aspp_channels, true));
  pool_red_conv_ = register_module("pool_red_conv", make_conv(aspp_channels, channels, 1, 1, 1, generator));
  red_bn_ = register_module("red_bn", make_norm(norm, channels, true));

  if (!initialize) return;
  const double gain = nn::init::calculate_gain("leaky_relu", kLeakySlope);
  for (nn::Conv2d* conv : {map_convs_[0].get(), map_convs_[1].get(), map_convs_[2].get(), map_convs_[3].get(),
                           red_conv_.get(), global_pooling_conv_.get(), pool_red_conv_.get()}) {
    nn::init::xavier_normal_(conv->weight(), generator, gain);
  }
}

Tensor MiBHead::image_branch(const Tensor& x) {
  Tensor pooled = pool_image(x, is_training() ? 0 : pooling_size_);
  return pool_red_conv_->forward(global_pooling_bn_->forward(global_pooling_conv_->forward(pooled)));
}

Tensor MiBHead::forward(const Tensor& x) {
  std::vector<Tensor> maps;
  for (auto& conv : map_convs_) maps.push_back(conv->forward(x));
  Tensor y = red_conv_->forward(map_bn_->forward(concat(maps)));
  maps.clear();
  return red_bn_->forward(add(y, image_branch(x)));
}

FoldedMiBHead MiBHead::fold(const std::string& prefix) const {
  FoldedMiBHead out;
  out.pooling_size = pooling_size_;
  const NormFold map_bn = fold_norm(*map_bn_, prefix + "map_bn");
  for (int i = 0; i < 4; ++i) {
    const int64_t k = map_convs_[i]->out_channels();
    out.maps[i] = FoldedConv(*map_convs_[i], map_bn.slice(i * k, k));
  }
  const NormFold red_bn = fold_norm(*red_bn_, prefix + "red_bn");
  out.reduce = FoldedConv(*red_conv_, red_bn);
  out.pooling = FoldedConv(*global_pooling_conv_, fold_norm(*global_pooling_bn_, prefix + "global_pooling_bn"));
  out.pooling_reduce = FoldedConv(*pool_red_conv_, red_bn.scale_only());
  return out;
}

Tensor FoldedMiBHead::forward(const Tensor& x) const {
  std::vector<Tensor> branches;
  for (const FoldedConv& map : maps) branches.push_back(map.forward(x));
  Tensor concatenated = concat(branches);
  branches.clear();
  // The image branch after the maps are freed: MiBHead::image_branch in eval mode.
  Tensor image = pooling_reduce.forward(pooling.forward(pool_image(x, pooling_size)));
  return reduce.forward(concatenated, image);
}

Shape MiBHead::trace(const Shape& in, SummaryBuilder& builder) const {
  const std::string norm = norm_name(norm_);
  const int64_t aspp_channels = channels_;
  Shape y;
  for (int i = 0; i < 4; ++i) y = builder.conv(cat("map_convs.", i), *map_convs_[i], in);
  y = builder.op("", "concat", with_channels(in, 4 * aspp_channels));
  y = builder.norm("map_bn", norm, *map_bn_, y);
  y = builder.conv("red_conv", *red_conv_, y);
  // The summary counts the training-mode image branch (global pooling), which is also the
  // eval-mode one whenever the pooling window covers the feature map.
  Shape p = builder.op("", "global_avg_pool", {in[0], 1, 1, in[3]});
  p = builder.conv("global_pooling_conv", *global_pooling_conv_, p);
  p = builder.norm("global_pooling_bn", norm, *global_pooling_bn_, p);
  builder.conv("pool_red_conv", *pool_red_conv_, p);
  y = builder.op("", "add (broadcast)", y);
  return builder.norm("red_bn", norm, *red_bn_, y);
}

// ---- FCN (aux) ---------------------------------------------------------------------------------

FCNHead::FCNHead(int64_t in_channels, int64_t classes, Norm norm, double dropout, uint64_t seed,
                 Generator& generator)
    : norm_(norm), dropout_(dropout), dropout_generator_(seed) {
  check(dropout >= 0 && dropout < 1, "FCNHead: dropout must be in [0, 1), got ", dropout);
  check(classes >= 1, "FCNHead: classes must be >= 1, got ", classes);
  const int64_t mid = in_channels / 4;
  conv_ = register_module("0", make_conv(in_channels, mid, 3, 1, 1, generator));
  norm_layer_ = register_module("1", make_norm(norm, mid, true));
  classifier_ = register_module("4", std::make_shared<nn::Conv2d>(mid, classes, 1, generator));
}

Tensor FCNHead::forward(const Tensor& x) {
  Tensor y = norm_layer_->forward(conv_->forward(x));
  return classifier_->forward(dropout(y, dropout_, is_training(), dropout_generator_));
}

FoldedFCNHead FCNHead::fold(const std::string& prefix) const {
  return FoldedFCNHead{FoldedConv(*conv_, fold_norm(*norm_layer_, prefix + "1")), FoldedConv(*classifier_)};
}

Tensor FoldedFCNHead::forward(const Tensor& x) const { return classifier.forward(conv.forward(x)); }

Shape FCNHead::trace(const Shape& in, SummaryBuilder& builder) const {
  Shape y = builder.norm("1", norm_name(norm_), *norm_layer_, builder.conv("0", *conv_, in));
  y = builder.op("3", cat("dropout ", dropout_), y);
  return builder.conv("4", *classifier_, y);
}

}  // namespace strata::models
