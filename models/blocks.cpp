#include "models/blocks.h"

#include "engine/ops/elementwise.h"

namespace strata::models {

const char* norm_name(Norm norm) { return norm == Norm::batch_norm ? "batch_norm" : "inplace_abn"; }

Norm parse_norm(const std::string& s) {
  if (s == "batch_norm") return Norm::batch_norm;
  if (s == "inplace_abn") return Norm::inplace_abn;
  throw Error(cat("unknown norm '", s, "' (expected batch_norm or inplace_abn)"));
}

Tensor BatchNormReLU::forward(const Tensor& x) { return relu(nn::BatchNorm2d::forward(x)); }

std::shared_ptr<nn::Layer> make_norm(Norm norm, int64_t channels, bool activated) {
  if (norm == Norm::batch_norm) {
    if (activated) return std::make_shared<BatchNormReLU>(channels);
    return std::make_shared<nn::BatchNorm2d>(channels);
  }
  return std::make_shared<nn::InPlaceABN>(channels, activated ? Activation::leaky_relu : Activation::identity,
                                          kLeakySlope);
}

Tensor activate(Norm norm, const Tensor& x) {
  return norm == Norm::batch_norm ? relu(x) : leaky_relu(x, kLeakySlope);
}

std::shared_ptr<nn::Conv2d> make_conv(int64_t in_channels, int64_t out_channels, int64_t kernel, int64_t stride,
                                      int64_t dilation, Generator& generator) {
  int64_t pad = dilation * (kernel - 1) / 2;
  return std::make_shared<nn::Conv2d>(in_channels, out_channels, kernel, generator,
                                      Conv2dParams::same(stride, pad, dilation), false);
}

}  // namespace strata::models
