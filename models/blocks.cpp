#include "models/blocks.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "engine/ops/elementwise.h"

namespace strata::models {

namespace {

// A contiguous f64 copy on the host, for the folding arithmetic.
Tensor host_f64(const Tensor& t) { return t.to(Device::cpu()).to(DType::f64).contiguous(); }

std::vector<double> values_or(const Tensor& t, int64_t n, double fallback) {
  return t.defined() ? host_f64(t).to_vector<double>() : std::vector<double>(static_cast<size_t>(n), fallback);
}

bool same_geometry(const Conv2dParams& a, const Conv2dParams& b) {
  return a.stride_h == b.stride_h && a.stride_w == b.stride_w && a.pad_h == b.pad_h && a.pad_w == b.pad_w &&
         a.dilation_h == b.dilation_h && a.dilation_w == b.dilation_w;
}

const char* norm_kind(const nn::Module& module) {
  if (dynamic_cast<const nn::InPlaceABN*>(&module) != nullptr) return "inplace_abn";
  if (dynamic_cast<const nn::BatchNorm2d*>(&module) != nullptr) return "batch_norm";
  return nullptr;
}

}  // namespace

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

// ---- folding -----------------------------------------------------------------------------------

NormFold NormFold::slice(int64_t offset, int64_t count) const {
  check(offset >= 0 && count >= 0 && offset + count <= static_cast<int64_t>(scale.size()), "NormFold: channels [",
        offset, ", ", offset + count, ") outside the norm's ", scale.size());
  NormFold out;
  out.scale.assign(scale.begin() + offset, scale.begin() + offset + count);
  out.shift.assign(shift.begin() + offset, shift.begin() + offset + count);
  out.slope = slope;
  return out;
}

NormFold NormFold::scale_only() const {
  NormFold out;
  out.scale = scale;
  out.shift.assign(scale.size(), 0.0);
  return out;
}

NormFold fold_norm(const nn::Layer& norm, const std::string& name) {
  const char* kind = norm_kind(norm);
  check(kind != nullptr, "fold: ", name, " is not a batch norm or In-place ABN layer");
  check(!norm.is_training(), "fold: ", name, " (", kind, ") is in training mode; folding uses the running statistics ",
        "of eval mode (call eval() first)");
  Tensor weight, bias, mean, var;
  double eps = 0, abn_eps = -1;  // abn_eps >= 0: gamma = |weight| + abn_eps
  NormFold out;
  if (const auto* abn = dynamic_cast<const nn::InPlaceABN*>(&norm)) {
    weight = abn->weight(), bias = abn->bias(), mean = abn->running_mean(), var = abn->running_var();
    eps = abn_eps = abn->eps();
    out.slope = abn->activation() == Activation::leaky_relu ? abn->negative_slope() : 1.0;
  } else {
    const auto& bn = dynamic_cast<const nn::BatchNorm2d&>(norm);
    weight = bn.weight(), bias = bn.bias(), mean = bn.running_mean(), var = bn.running_var();
    eps = bn.eps();
    out.slope = dynamic_cast<const BatchNormReLU*>(&norm) != nullptr ? 0.0 : 1.0;
  }
  const int64_t channels = mean.numel();
  const std::vector<double> w = values_or(weight, channels, 1.0), b = values_or(bias, channels, 0.0);
  const std::vector<double> m = host_f64(mean).to_vector<double>(), v = host_f64(var).to_vector<double>();
  out.scale.resize(static_cast<size_t>(channels));
  out.shift.resize(static_cast<size_t>(channels));
  for (size_t c = 0; c < out.scale.size(); ++c) {
    const double gamma = abn_eps >= 0 && weight.defined() ? std::fabs(w[c]) + abn_eps : w[c];
    out.scale[c] = gamma / std::sqrt(v[c] + eps);
    out.shift[c] = b[c] - m[c] * out.scale[c];
  }
  return out;
}

void check_foldable(const nn::Module& root, const std::string& prefix) {
  for (const auto& [name, child] : root.children()) {
    const std::string full = prefix + name;
    if (const char* kind = norm_kind(*child)) {
      check(!child->is_training(), "fold: ", full, " (", kind, ") is in training mode; folding uses the running ",
            "statistics of eval mode (call eval() first)");
    }
    check_foldable(*child, full + ".");
  }
}

FoldedConv::FoldedConv(const nn::Conv2d& conv)
    : weight_(conv.weight().detach().clone()),
      bias_(conv.bias().defined() ? conv.bias().detach().clone() : Tensor()),
      params_(conv.params()) {}

FoldedConv::FoldedConv(const nn::Conv2d& conv, const NormFold& norm) : params_(conv.params()), slope_(norm.slope) {
  const Tensor& w = conv.weight();
  const int64_t K = w.size(0), patch = w.numel() / std::max<int64_t>(K, 1);
  check(static_cast<int64_t>(norm.scale.size()) == K, "fold: a norm of ", norm.scale.size(),
        " channels after a convolution of ", K, " output channels ", w.describe());
  Tensor folded = host_f64(w).clone();
  double* fw = folded.data<double>();
  const std::vector<double> b = values_or(conv.bias(), K, 0.0);
  std::vector<double> folded_bias(static_cast<size_t>(K));
  for (int64_t k = 0; k < K; ++k) {
    const double s = norm.scale[static_cast<size_t>(k)];
    for (int64_t i = 0; i < patch; ++i) fw[k * patch + i] *= s;
    folded_bias[static_cast<size_t>(k)] = norm.shift[static_cast<size_t>(k)] + b[static_cast<size_t>(k)] * s;
  }
  weight_ = folded.to(w.dtype()).to(w.device());
  bias_ = Tensor::from_vector(folded_bias, {K}).to(w.dtype()).to(w.device());
}

FoldedConv FoldedConv::concat_outputs(const std::vector<FoldedConv>& convs) {
  check(!convs.empty(), "FoldedConv::concat_outputs: no convolutions");
  const FoldedConv& first = convs.front();
  const Tensor& w0 = first.weight_;
  int64_t K = 0;
  for (const FoldedConv& c : convs) {
    const Tensor& w = c.weight_;
    check(w.size(1) == w0.size(1) && w.size(2) == w0.size(2) && w.size(3) == w0.size(3) && w.dtype() == w0.dtype() &&
              c.slope_ == first.slope_ && c.bias_.defined() == first.bias_.defined() &&
              same_geometry(c.params_, first.params_),
          "FoldedConv::concat_outputs: ", w.describe(), " does not have the geometry of ", w0.describe());
    K += w.size(0);
  }
  std::vector<Tensor> weights, biases;
  for (const FoldedConv& c : convs) {
    weights.push_back(c.weight_.to(Device::cpu()).contiguous());
    if (c.bias_.defined()) biases.push_back(c.bias_.to(Device::cpu()).contiguous());
  }
  auto stack = [](const std::vector<Tensor>& parts, Shape shape) {
    Tensor out = Tensor::empty(shape, parts.front().dtype());
    char* dst = static_cast<char*>(out.raw_data());
    for (const Tensor& p : parts) {
      std::memcpy(dst, p.raw_data(), p.nbytes());
      dst += p.nbytes();
    }
    return out;
  };
  FoldedConv out;
  out.params_ = first.params_;
  out.slope_ = first.slope_;
  out.weight_ = stack(weights, {K, w0.size(1), w0.size(2), w0.size(3)}).to(w0.device());
  if (!biases.empty()) out.bias_ = stack(biases, {K}).to(w0.device());
  return out;
}

Tensor FoldedConv::forward(const Tensor& x, const Tensor& residual) const {
  return conv2d_activation(x, weight_, bias_, residual, slope_, params_);
}

Tensor FoldedConv::forward_linear(const Tensor& x, const Tensor& residual) const {
  return conv2d_activation(x, weight_, bias_, residual, 1.0, params_);
}

int64_t FoldedConv::bytes() const {
  return static_cast<int64_t>(weight_.nbytes()) + (bias_.defined() ? static_cast<int64_t>(bias_.nbytes()) : 0);
}

}  // namespace strata::models
