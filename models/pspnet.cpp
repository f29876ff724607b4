#include "models/pspnet.h"

#include <string>

#include "engine/ops/channels.h"
#include "engine/ops/dropout.h"
#include "engine/ops/pooling.h"
#include "engine/ops/upsample.h"

namespace strata::models {

namespace {

// A pyramid branch's output brought back to the feature map's size (semseg: align_corners true).
Tensor upsample_to(const Tensor& y, const Tensor& like) {
  return upsample_bilinear(y, like.size(1), like.size(2), true);
}

}  // namespace

PSPHead::PSPHead(int64_t in_channels, std::vector<int64_t> bins, Norm norm, double dropout, uint64_t seed,
                 Generator& generator, int64_t channels)
    : channels_(channels), bins_(std::move(bins)), norm_(norm), dropout_(dropout), dropout_generator_(seed) {
  check(dropout >= 0 && dropout < 1, "PSPHead: dropout must be in [0, 1), got ", dropout);
  check(channels >= 1, "PSPHead: channels must be >= 1, got ", channels);
  check(!bins_.empty(), "PSPHead: the pyramid needs at least one bin size");
  for (int64_t bin : bins_) check(bin >= 1, "PSPHead: bin sizes must be >= 1, got ", bin);
  const int64_t reduction = in_channels / static_cast<int64_t>(bins_.size());
  check(reduction >= 1, "PSPHead: ", in_channels, " input channels cannot be split over ", bins_.size(), " bins");
  auto ppm = register_module("ppm", std::make_shared<NamedModules>());
  auto features = ppm->add("features", std::make_shared<NamedModules>());
  for (size_t i = 0; i < bins_.size(); ++i) {
    pyramid_convs_.push_back(make_conv(in_channels, reduction, 1, 1, 1, generator));
    pyramid_norms_.push_back(make_norm(norm, reduction, true));
    // semseg's Sequential(AdaptiveAvgPool2d, Conv2d, BatchNorm2d, ReLU): the conv is "1", the norm "2".
    auto branch = features->add(std::to_string(i), std::make_shared<NamedModules>());
    branch->add("1", pyramid_convs_.back());
    branch->add("2", pyramid_norms_.back());
  }
  conv_ = register_module(
      "0", make_conv(in_channels + reduction * static_cast<int64_t>(bins_.size()), channels, 3, 1, 1, generator));
  norm_layer_ = register_module("1", make_norm(norm, channels, true));
}

Tensor PSPHead::pyramid(const Tensor& x) {
  std::vector<Tensor> parts = {x};
  for (size_t i = 0; i < bins_.size(); ++i) {
    Tensor pooled = adaptive_avg_pool2d(x, bins_[i], bins_[i]);
    parts.push_back(upsample_to(pyramid_norms_[i]->forward(pyramid_convs_[i]->forward(pooled)), x));
  }
  return concat(parts);
}

Tensor PSPHead::forward(const Tensor& x) {
  check(x.dim() == 4, "PSPHead: expected features (N,h,w,C), got ", x.describe());
  Tensor y = norm_layer_->forward(conv_->forward(pyramid(x)));
  return dropout2d(y, dropout_, is_training(), dropout_generator_);
}

FoldedPSPHead PSPHead::fold(const std::string& prefix) const {
  FoldedPSPHead out;
  out.bins = bins_;
  for (size_t i = 0; i < bins_.size(); ++i) {
    out.pyramid.emplace_back(*pyramid_convs_[i], fold_norm(*pyramid_norms_[i], cat(prefix, "ppm.features.", i, ".2")));
  }
  out.conv = FoldedConv(*conv_, fold_norm(*norm_layer_, prefix + "1"));
  return out;
}

Tensor FoldedPSPHead::forward(const Tensor& x) const {
  std::vector<Tensor> parts = {x};
  for (size_t i = 0; i < bins.size(); ++i) {
    parts.push_back(upsample_to(pyramid[i].forward(adaptive_avg_pool2d(x, bins[i], bins[i])), x));
  }
  return conv.forward(concat(parts));
}

Shape PSPHead::trace(const Shape& in, SummaryBuilder& builder) const {
  int64_t channels = in[3];
  {
    SummaryBuilder::Level ppm(builder, "ppm");
    SummaryBuilder::Level features(builder, "features");
    for (size_t i = 0; i < bins_.size(); ++i) {
      SummaryBuilder::Level branch(builder, std::to_string(i));
      Shape y = builder.op("0", cat("adaptive_avg_pool ", bins_[i], "x", bins_[i]), {in[0], bins_[i], bins_[i], in[3]});
      y = builder.norm("2", norm_name(norm_), *pyramid_norms_[i], builder.conv("1", *pyramid_convs_[i], y));
      builder.op("", "upsample_bilinear (align_corners)", {in[0], in[1], in[2], y[3]});
      channels += y[3];
    }
  }
  Shape y = builder.op("", "concat", {in[0], in[1], in[2], channels});
  y = builder.norm("1", norm_name(norm_), *norm_layer_, builder.conv("0", *conv_, y));
  return builder.op("2", cat("dropout2d ", dropout_), y);
}

PSPAuxHead::PSPAuxHead(int64_t in_channels, const std::vector<int64_t>& classes, Norm norm, double dropout,
                       uint64_t seed, Generator& generator)
    : norm_(norm), dropout_(dropout), dropout_generator_(seed) {
  check(dropout >= 0 && dropout < 1, "PSPAuxHead: dropout must be in [0, 1), got ", dropout);
  const int64_t mid = in_channels / 4;
  check(mid >= 1, "PSPAuxHead: ", in_channels, " input channels are fewer than 4");
  conv_ = register_module("0", make_conv(in_channels, mid, 3, 1, 1, generator));
  norm_layer_ = register_module("1", make_norm(norm, mid, true));
  classifier_ = register_module("cls", std::make_shared<IncrementalClassifier>(mid, classes, generator));
}

Tensor PSPAuxHead::forward(const Tensor& x) {
  Tensor y = norm_layer_->forward(conv_->forward(x));
  return classifier_->forward(dropout2d(y, dropout_, is_training(), dropout_generator_));
}

FoldedPSPAuxHead PSPAuxHead::fold(const std::string& prefix) const {
  return FoldedPSPAuxHead{FoldedConv(*conv_, fold_norm(*norm_layer_, prefix + "1")), classifier_->fold()};
}

Tensor FoldedPSPAuxHead::forward(const Tensor& x) const { return classifier.forward(conv.forward(x)); }

Shape PSPAuxHead::trace(const Shape& in, SummaryBuilder& builder) const {
  Shape y = builder.norm("1", norm_name(norm_), *norm_layer_, builder.conv("0", *conv_, in));
  y = builder.op("2", cat("dropout2d ", dropout_), y);
  SummaryBuilder::Level level(builder, "cls");
  return classifier_->trace(y, builder);
}

}  // namespace strata::models
