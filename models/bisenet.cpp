#include "models/bisenet.h"

#include <string>

#include "engine/nn/init.h"
#include "engine/ops/channels.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/pooling.h"
#include "engine/ops/upsample.h"

namespace strata::models {

namespace {

// The reference's init of every head convolution: kaiming_normal(a=1), i.e. std = 1/sqrt(fan_in).
void init_head_conv(nn::Conv2d& conv, Generator& generator) {
  nn::init::kaiming_normal_(conv.weight(), generator, nn::init::FanMode::fan_in, "leaky_relu", 1.0);
}

Shape with_size(const Shape& s, int64_t h, int64_t w) { return {s[0], h, w, s[3]}; }

}  // namespace

ConvNormAct::ConvNormAct(int64_t in_channels, int64_t out_channels, int64_t kernel, int64_t stride, Norm norm,
                         bool activated, Generator& generator)
    : norm_(norm) {
  conv_ = register_module("conv", make_conv(in_channels, out_channels, kernel, stride, 1, generator));
  bn_ = register_module("bn", make_norm(norm, out_channels, activated));
}

Tensor ConvNormAct::forward(const Tensor& x) { return bn_->forward(conv_->forward(x)); }

Shape ConvNormAct::trace(const Shape& in, SummaryBuilder& builder) const {
  return builder.norm("bn", norm_name(norm_), *bn_, builder.conv("conv", *conv_, in));
}

FoldedConv ConvNormAct::fold(const std::string& prefix) const {
  return FoldedConv(*conv_, fold_norm(*bn_, prefix + "bn"));
}

BiSeNetHead::BiSeNetHead(int64_t stage3_channels, int64_t stage4_channels, Norm norm, bool initialize,
                         Generator& generator, int64_t channels)
    : channels_(channels) {
  check(channels >= 1, "BiSeNetHead: channels must be >= 1, got ", channels);
  const int64_t ctx = kContextChannels;
  auto cp = register_module("cp", std::make_shared<NamedModules>());
  const int64_t arm_in[2] = {stage3_channels, stage4_channels};
  for (int i = 0; i < 2; ++i) {
    auto arm = cp->add(i == 0 ? "arm16" : "arm32", std::make_shared<NamedModules>());
    arm_conv_[i] = arm->add("conv", std::make_shared<ConvNormAct>(arm_in[i], ctx, 3, 1, norm, true, generator));
    arm_atten_conv_[i] = arm->add("conv_atten", make_conv(ctx, ctx, 1, 1, 1, generator));
    arm_atten_bn_[i] = arm->add("bn_atten", make_norm(norm, ctx, false));
  }
  conv_head32_ = cp->add("conv_head32", std::make_shared<ConvNormAct>(ctx, ctx, 3, 1, norm, true, generator));
  conv_head16_ = cp->add("conv_head16", std::make_shared<ConvNormAct>(ctx, ctx, 3, 1, norm, true, generator));
  conv_avg_ = cp->add("conv_avg", std::make_shared<ConvNormAct>(stage4_channels, ctx, 1, 1, norm, true, generator));
  auto sp = register_module("sp", std::make_shared<NamedModules>());
  sp_[0] = sp->add("conv1", std::make_shared<ConvNormAct>(3, 64, 7, 2, norm, true, generator));
  sp_[1] = sp->add("conv2", std::make_shared<ConvNormAct>(64, 64, 3, 2, norm, true, generator));
  sp_[2] = sp->add("conv3", std::make_shared<ConvNormAct>(64, 64, 3, 2, norm, true, generator));
  sp_[3] = sp->add("conv_out", std::make_shared<ConvNormAct>(64, ctx, 1, 1, norm, true, generator));
  auto ffm = register_module("ffm", std::make_shared<NamedModules>());
  ffm_block_ = ffm->add("convblk", std::make_shared<ConvNormAct>(2 * ctx, 256, 1, 1, norm, true, generator));
  ffm_conv1_ = ffm->add("conv1", make_conv(256, 64, 1, 1, 1, generator));
  ffm_conv2_ = ffm->add("conv2", make_conv(64, 256, 1, 1, 1, generator));
  out_ = register_module("out", std::make_shared<ConvNormAct>(256, channels, 3, 1, norm, true, generator));
  if (initialize) {
    for (auto* c : {sp_[0].get(), sp_[1].get(), sp_[2].get(), sp_[3].get(), arm_conv_[0].get(), arm_conv_[1].get(),
                    conv_head32_.get(), conv_head16_.get(), conv_avg_.get(), ffm_block_.get(), out_.get()}) {
      init_head_conv(c->conv(), generator);
    }
    for (auto* c : {arm_atten_conv_[0].get(), arm_atten_conv_[1].get(), ffm_conv1_.get(), ffm_conv2_.get()}) {
      init_head_conv(*c, generator);
    }
  }
}

BiSeNetHead::Maps BiSeNetHead::forward(const Tensor& images, const Tensor& stage3, const Tensor& stage4) {
  Tensor spatial = images;
  for (auto& conv : sp_) spatial = conv->forward(spatial);
  auto refine = [&](int i, const Tensor& x) {
    Tensor feat = arm_conv_[i]->forward(x);
    Tensor atten = sigmoid(arm_atten_bn_[i]->forward(arm_atten_conv_[i]->forward(global_avg_pool(feat))));
    return mul(feat, atten);
  };
  Maps maps;
  Tensor avg = conv_avg_->forward(global_avg_pool(stage4));
  Tensor sum32 = add(refine(1, stage4), avg);
  maps.context16 = conv_head32_->forward(upsample_nearest(sum32, stage3.size(1), stage3.size(2)));
  Tensor sum16 = add(refine(0, stage3), maps.context16);
  maps.context8 = conv_head16_->forward(upsample_nearest(sum16, spatial.size(1), spatial.size(2)));
  Tensor feat = ffm_block_->forward(concat({spatial, maps.context8}));
  Tensor atten = sigmoid(ffm_conv2_->forward(relu(ffm_conv1_->forward(global_avg_pool(feat)))));
  maps.features = out_->forward(add(mul(feat, atten), feat));
  return maps;
}

FoldedBiSeNetHead BiSeNetHead::fold(const std::string& prefix) const {
  FoldedBiSeNetHead out;
  const char* sp_names[4] = {"conv1", "conv2", "conv3", "conv_out"};
  for (int i = 0; i < 4; ++i) out.sp[i] = sp_[i]->fold(cat(prefix, "sp.", sp_names[i], "."));
  for (int i = 0; i < 2; ++i) {
    const std::string arm = cat(prefix, "cp.", i == 0 ? "arm16." : "arm32.");
    out.arm_conv[i] = arm_conv_[i]->fold(arm + "conv.");
    out.arm_atten[i] = FoldedConv(*arm_atten_conv_[i], fold_norm(*arm_atten_bn_[i], arm + "bn_atten"));
  }
  out.conv_avg = conv_avg_->fold(prefix + "cp.conv_avg.");
  out.conv_head32 = conv_head32_->fold(prefix + "cp.conv_head32.");
  out.conv_head16 = conv_head16_->fold(prefix + "cp.conv_head16.");
  out.ffm_block = ffm_block_->fold(prefix + "ffm.convblk.");
  out.ffm_conv1 = FoldedConv(*ffm_conv1_);
  out.ffm_conv2 = FoldedConv(*ffm_conv2_);
  out.out = out_->fold(prefix + "out.");
  return out;
}

FoldedBiSeNetHead::Maps FoldedBiSeNetHead::forward(const Tensor& images, const Tensor& stage3,
                                                   const Tensor& stage4) const {
  Tensor spatial = images;
  for (const FoldedConv& conv : sp) spatial = conv.forward(spatial);
  auto refine = [&](int i, const Tensor& x) {
    Tensor feat = arm_conv[i].forward(x);
    return mul(feat, sigmoid(arm_atten[i].forward(global_avg_pool(feat))));
  };
  Maps maps;
  Tensor sum32 = add(refine(1, stage4), conv_avg.forward(global_avg_pool(stage4)));
  maps.context16 = conv_head32.forward(upsample_nearest(sum32, stage3.size(1), stage3.size(2)));
  Tensor sum16 = add(refine(0, stage3), maps.context16);
  maps.context8 = conv_head16.forward(upsample_nearest(sum16, spatial.size(1), spatial.size(2)));
  Tensor feat = ffm_block.forward(concat({spatial, maps.context8}));
  Tensor atten = sigmoid(ffm_conv2.forward(relu(ffm_conv1.forward(global_avg_pool(feat)))));
  maps.features = out.forward(add(mul(feat, atten), feat));
  return maps;
}

Shape BiSeNetHead::trace(const Shape& images, const Shape& stage3, const Shape& stage4, SummaryBuilder& builder,
                         Shape* context8, Shape* context16) const {
  Shape spatial = images;
  {
    SummaryBuilder::Level level(builder, "sp");
    const char* names[4] = {"conv1", "conv2", "conv3", "conv_out"};
    for (int i = 0; i < 4; ++i) {
      SummaryBuilder::Level conv(builder, names[i]);
      spatial = sp_[i]->trace(spatial, builder);
    }
  }
  Shape c16, c8;
  {
    SummaryBuilder::Level level(builder, "cp");
    auto refine = [&](int i, const Shape& x) {
      SummaryBuilder::Level arm(builder, i == 0 ? "arm16" : "arm32");
      Shape feat;
      {
        SummaryBuilder::Level conv(builder, "conv");
        feat = arm_conv_[i]->trace(x, builder);
      }
      Shape pooled = builder.op("", "global_avg_pool", with_size(feat, 1, 1));
      pooled = builder.norm("bn_atten", "norm (no activation)", *arm_atten_bn_[i],
                            builder.conv("conv_atten", *arm_atten_conv_[i], pooled));
      return builder.op("", "sigmoid x", feat);
    };
    {
      SummaryBuilder::Level avg(builder, "conv_avg");
      conv_avg_->trace(with_size(stage4, 1, 1), builder);
    }
    Shape sum32 = refine(1, stage4);
    {
      SummaryBuilder::Level head(builder, "conv_head32");
      c16 = conv_head32_->trace(with_size(sum32, stage3[1], stage3[2]), builder);
    }
    refine(0, stage3);
    SummaryBuilder::Level head(builder, "conv_head16");
    c8 = conv_head16_->trace(with_size(c16, spatial[1], spatial[2]), builder);
  }
  Shape f;
  {
    SummaryBuilder::Level level(builder, "ffm");
    {
      SummaryBuilder::Level block(builder, "convblk");
      f = ffm_block_->trace({spatial[0], spatial[1], spatial[2], spatial[3] + c8[3]}, builder);
    }
    Shape a = builder.conv("conv1", *ffm_conv1_, with_size(f, 1, 1));
    builder.conv("conv2", *ffm_conv2_, a);
    f = builder.op("", "sigmoid x + ", f);
  }
  {
    SummaryBuilder::Level level(builder, "out");
    f = out_->trace(f, builder);
  }
  *context8 = c8;
  *context16 = c16;
  return f;
}

BiSeNetAuxHead::BiSeNetAuxHead(int64_t in_channels, const std::vector<int64_t>& classes, Norm norm, bool initialize,
                               Generator& generator) {
  conv_ = register_module("conv", std::make_shared<ConvNormAct>(in_channels, kChannels, 3, 1, norm, true, generator));
  if (initialize) init_head_conv(conv_->conv(), generator);
  classifier_ = register_module("cls", std::make_shared<IncrementalClassifier>(kChannels, classes, generator));
}

Tensor BiSeNetAuxHead::forward(const Tensor& x) { return classifier_->forward(conv_->forward(x)); }

Shape BiSeNetAuxHead::trace(const Shape& in, SummaryBuilder& builder) const {
  Shape y;
  {
    SummaryBuilder::Level level(builder, "conv");
    y = conv_->trace(in, builder);
  }
  SummaryBuilder::Level level(builder, "cls");
  return classifier_->trace(y, builder);
}

FoldedBiSeNetAuxHead BiSeNetAuxHead::fold(const std::string& prefix) const {
  return {conv_->fold(prefix + "conv."), classifier_->fold()};
}

Tensor FoldedBiSeNetAuxHead::forward(const Tensor& x) const { return classifier.forward(conv.forward(x)); }

}  // namespace strata::models
