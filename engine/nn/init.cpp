#include "engine/nn/init.h"

#include <cmath>

namespace strata::nn::init {

double calculate_gain(const std::string& nonlinearity, double param) {
  if (nonlinearity == "linear" || nonlinearity == "conv2d" || nonlinearity == "sigmoid") return 1.0;
  if (nonlinearity == "relu") return std::sqrt(2.0);
  if (nonlinearity == "leaky_relu") return std::sqrt(2.0 / (1.0 + param * param));
  if (nonlinearity == "tanh") return 5.0 / 3.0;
  throw Error(cat("init::calculate_gain: unknown nonlinearity '", nonlinearity, "'"));
}

int64_t fan(const Tensor& weight, FanMode mode) {
  check(weight.dim() == 2 || weight.dim() == 4, "init: fans need a (out,in) or (K,R,S,C) weight, got ",
        weight.describe());
  int64_t receptive = weight.dim() == 4 ? weight.size(1) * weight.size(2) : 1;
  int64_t in = weight.size(-1) * receptive, out = weight.size(0) * receptive;
  return mode == FanMode::fan_in ? in : out;
}

namespace {

void assign(Tensor& t, const Tensor& values) {
  check(t.defined(), "init: undefined tensor");
  Tensor destination = t.detach();
  destination.copy_(values);
}

}  // namespace

void uniform_(Tensor& t, double low, double high, Generator& generator) {
  assign(t, Tensor::uniform(t.shape(), low, high, generator, DType::f64));
}

void normal_(Tensor& t, double mean, double std, Generator& generator) {
  Tensor z = Tensor::randn(t.shape(), generator, DType::f64);
  double* p = z.data<double>();
  for (int64_t i = 0; i < z.numel(); ++i) p[i] = mean + std * p[i];
  assign(t, z);
}

void kaiming_normal_(Tensor& t, Generator& generator, FanMode mode, const std::string& nonlinearity, double a) {
  normal_(t, 0.0, calculate_gain(nonlinearity, a) / std::sqrt(static_cast<double>(fan(t, mode))), generator);
}

void kaiming_uniform_(Tensor& t, Generator& generator, double a, FanMode mode, const std::string& nonlinearity) {
  double bound = calculate_gain(nonlinearity, a) * std::sqrt(3.0 / static_cast<double>(fan(t, mode)));
  uniform_(t, -bound, bound, generator);
}

void xavier_normal_(Tensor& t, Generator& generator, double gain) {
  double std = gain * std::sqrt(2.0 / static_cast<double>(fan(t, FanMode::fan_in) + fan(t, FanMode::fan_out)));
  normal_(t, 0.0, std, generator);
}

void torch_default_(Tensor& weight, Tensor& bias, Generator& generator) {
  kaiming_uniform_(weight, generator, std::sqrt(5.0));
  if (bias.defined()) {
    double bound = 1.0 / std::sqrt(static_cast<double>(fan(weight, FanMode::fan_in)));
    uniform_(bias, -bound, bound, generator);
  }
}

}  // namespace strata::nn::init
