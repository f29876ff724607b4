#include "models/deeplabv3plus.h"

#include <string>
#include <vector>

#include "engine/nn/init.h"
#include "engine/ops/channels.h"
#include "engine/ops/dropout.h"
#include "engine/ops/pooling.h"
#include "engine/ops/upsample.h"

namespace strata::models {

namespace {

Shape with_channels(const Shape& s, int64_t channels) { return {s[0], s[1], s[2], channels}; }

// The ASPP output brought to the low-level features' size (the reference: align_corners true).
Tensor upsample_to(const Tensor& x, const Tensor& like) {
  return upsample_bilinear(x, like.size(1), like.size(2), true);
}

}  // namespace

DeepLabV3PlusHead::DeepLabV3PlusHead(int64_t in_channels, int64_t low_level_channels, std::array<int64_t, 3> rates,
                                     Norm norm, bool initialize, uint64_t seed, Generator& generator, int64_t channels)
    : channels_(channels), norm_(norm), dropout_generator_(seed) {
  check(channels >= 1, "DeepLabV3PlusHead: channels must be >= 1, got ", channels);
  auto aspp = register_module("aspp", std::make_shared<NamedModules>());
  for (int i = 0; i < 4; ++i) {
    const int64_t rate = i == 0 ? 1 : rates[static_cast<size_t>(i - 1)];
    branch_convs_[i] = make_conv(in_channels, channels, i == 0 ? 1 : 3, 1, rate, generator);
    branch_norms_[i] = make_norm(norm, channels, true);
    auto branch = aspp->add(cat("aspp", i + 1), std::make_shared<NamedModules>());
    branch->add("atrous_conv", branch_convs_[i]);
    branch->add("bn", branch_norms_[i]);
  }
  pool_conv_ = make_conv(in_channels, channels, 1, 1, 1, generator);
  pool_norm_ = make_norm(norm, channels, true);
  auto pooling = aspp->add("global_avg_pool", std::make_shared<NamedModules>());
  pooling->add("1", pool_conv_);
  pooling->add("2", pool_norm_);
  project_conv_ = aspp->add("conv1", make_conv(5 * channels, channels, 1, 1, 1, generator));
  project_norm_ = aspp->add("bn1", make_norm(norm, channels, true));

  auto decoder = register_module("decoder", std::make_shared<NamedModules>());
  low_conv_ = decoder->add("conv1", make_conv(low_level_channels, kLowLevelChannels, 1, 1, 1, generator));
  low_norm_ = decoder->add("bn1", make_norm(norm, kLowLevelChannels, true));
  auto last = decoder->add("last_conv", std::make_shared<NamedModules>());
  conv1_ = last->add("0", make_conv(channels + kLowLevelChannels, channels, 3, 1, 1, generator));
  norm1_ = last->add("1", make_norm(norm, channels, true));
  conv2_ = last->add("4", make_conv(channels, channels, 3, 1, 1, generator));
  norm2_ = last->add("5", make_norm(norm, channels, true));
  if (initialize) {
    for (const auto& conv : {branch_convs_[0], branch_convs_[1], branch_convs_[2], branch_convs_[3], pool_conv_,
                             project_conv_, low_conv_, conv1_, conv2_}) {
      nn::init::kaiming_normal_(conv->weight(), generator, nn::init::FanMode::fan_in, "leaky_relu", 0.0);
    }
  }
}

void DeepLabV3PlusHead::set_dropout(double aspp, double decoder, double last) {
  for (double p : {aspp, decoder, last})
    check(p >= 0 && p < 1, "DeepLabV3PlusHead: dropout must be in [0, 1), got ", p);
  aspp_dropout_ = aspp;
  decoder_dropout_ = decoder;
  last_dropout_ = last;
}

Tensor DeepLabV3PlusHead::aspp(const Tensor& x) {
  std::vector<Tensor> branches;
  for (int i = 0; i < 4; ++i) branches.push_back(branch_norms_[i]->forward(branch_convs_[i]->forward(x)));
  Tensor pooled = pool_norm_->forward(pool_conv_->forward(global_avg_pool(x)));
  branches.push_back(upsample_bilinear(pooled, x.size(1), x.size(2), true));
  Tensor y = project_norm_->forward(project_conv_->forward(concat(branches)));
  return dropout(y, aspp_dropout_, is_training(), dropout_generator_);
}

Tensor DeepLabV3PlusHead::forward(const Tensor& x, const Tensor& low_level) {
  check(x.dim() == 4 && low_level.dim() == 4 && x.size(0) == low_level.size(0),
        "DeepLabV3PlusHead: expected features (N,h,w,C) and low-level features (N,h1,w1,C1), got ", x.describe(),
        " and ", low_level.describe());
  Tensor low = low_norm_->forward(low_conv_->forward(low_level));
  Tensor y = concat({upsample_to(aspp(x), low), low});
  low = Tensor();
  y = dropout(norm1_->forward(conv1_->forward(y)), decoder_dropout_, is_training(), dropout_generator_);
  return dropout(norm2_->forward(conv2_->forward(y)), last_dropout_, is_training(), dropout_generator_);
}

FoldedDeepLabV3PlusHead DeepLabV3PlusHead::fold(const std::string& prefix) const {
  FoldedDeepLabV3PlusHead out;
  for (int i = 0; i < 4; ++i) {
    out.branches[i] =
        FoldedConv(*branch_convs_[i], fold_norm(*branch_norms_[i], cat(prefix, "aspp.aspp", i + 1, ".bn")));
  }
  out.pooling = FoldedConv(*pool_conv_, fold_norm(*pool_norm_, prefix + "aspp.global_avg_pool.2"));
  out.project = FoldedConv(*project_conv_, fold_norm(*project_norm_, prefix + "aspp.bn1"));
  out.reduce_low = FoldedConv(*low_conv_, fold_norm(*low_norm_, prefix + "decoder.bn1"));
  out.conv1 = FoldedConv(*conv1_, fold_norm(*norm1_, prefix + "decoder.last_conv.1"));
  out.conv2 = FoldedConv(*conv2_, fold_norm(*norm2_, prefix + "decoder.last_conv.5"));
  return out;
}

Tensor FoldedDeepLabV3PlusHead::forward(const Tensor& x, const Tensor& low_level) const {
  std::vector<Tensor> maps;
  for (const FoldedConv& branch : branches) maps.push_back(branch.forward(x));
  maps.push_back(upsample_bilinear(pooling.forward(global_avg_pool(x)), x.size(1), x.size(2), true));
  Tensor y = project.forward(concat(maps));
  maps.clear();
  Tensor low = reduce_low.forward(low_level);
  y = concat({upsample_to(y, low), low});
  low = Tensor();
  return conv2.forward(conv1.forward(y));
}

Shape DeepLabV3PlusHead::trace(const Shape& in, const Shape& low_level, SummaryBuilder& builder) const {
  const std::string norm = norm_name(norm_);
  Shape y;
  {
    SummaryBuilder::Level aspp(builder, "aspp");
    for (int i = 0; i < 4; ++i) {
      SummaryBuilder::Level branch(builder, cat("aspp", i + 1));
      builder.norm("bn", norm, *branch_norms_[i], builder.conv("atrous_conv", *branch_convs_[i], in));
    }
    {
      SummaryBuilder::Level branch(builder, "global_avg_pool");
      Shape p = builder.op("0", "global_avg_pool", {in[0], 1, 1, in[3]});
      builder.norm("2", norm, *pool_norm_, builder.conv("1", *pool_conv_, p));
      builder.op("", "upsample (broadcast)", with_channels(in, channels_));
    }
    y = builder.op("", "concat", with_channels(in, 5 * channels_));
    y = builder.norm("bn1", norm, *project_norm_, builder.conv("conv1", *project_conv_, y));
    y = builder.op("dropout", cat("dropout ", aspp_dropout_), y);
  }
  SummaryBuilder::Level decoder(builder, "decoder");
  Shape low = builder.norm("bn1", norm, *low_norm_, builder.conv("conv1", *low_conv_, low_level));
  builder.op("", "upsample_bilinear (align_corners)", with_channels(low, y[3]));
  y = builder.op("", "concat", with_channels(low, y[3] + low[3]));
  SummaryBuilder::Level last(builder, "last_conv");
  y = builder.norm("1", norm, *norm1_, builder.conv("0", *conv1_, y));
  y = builder.op("3", cat("dropout ", decoder_dropout_), y);
  y = builder.norm("5", norm, *norm2_, builder.conv("4", *conv2_, y));
  return builder.op("7", cat("dropout ", last_dropout_), y);
}

}  // namespace strata::models
