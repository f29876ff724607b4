// Basic layers: Conv2d, Linear, ReLU, LeakyReLU. Parameter names follow PyTorch ("weight",
// "bias"); weights are stored in strata's layouts (Conv2d: (K,R,S,C); Linear: (out,in)) and
// converted from/to PyTorch's at the safetensors boundary. New layers get PyTorch's default
// initialisation from the given generator; models re-initialise as their reference does.
#pragma once

#include "engine/nn/module.h"
#include "engine/ops/conv2d.h"

namespace strata::nn {

class Conv2d : public Layer {
 public:
  // weight (out_channels, kernel, kernel, in_channels); bias (out_channels) when `bias`.
  Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel, Generator& generator,
         const Conv2dParams& params = {}, bool bias = true);
  Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel_h, int64_t kernel_w, Generator& generator,
         const Conv2dParams& params = {}, bool bias = true);
  Tensor forward(const Tensor& x) override;  // (N,H,W,in) -> (N,P,Q,out)

  Tensor& weight() { return weight_; }
  Tensor& bias() { return bias_; }  // undefined without bias
  const Tensor& weight() const { return weight_; }
  const Tensor& bias() const { return bias_; }
  const Conv2dParams& params() const { return params_; }
  int64_t in_channels() const { return weight_.size(3); }
  int64_t out_channels() const { return weight_.size(0); }

 private:
  Tensor weight_, bias_;
  Conv2dParams params_;
};

class Linear : public Layer {
 public:
  Linear(int64_t in_features, int64_t out_features, Generator& generator, bool bias = true);
  Tensor forward(const Tensor& x) override;  // (..., in) -> (..., out)
  Tensor& weight() { return weight_; }
  Tensor& bias() { return bias_; }

 private:
  Tensor weight_, bias_;
};

class ReLU : public Layer {
 public:
  Tensor forward(const Tensor& x) override;
};

class LeakyReLU : public Layer {
 public:
  explicit LeakyReLU(double negative_slope = 0.01) : negative_slope_(negative_slope) {}
  Tensor forward(const Tensor& x) override;

 private:
  double negative_slope_;
};

}  // namespace strata::nn
