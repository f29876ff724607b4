#include "engine/nn/layers.h"

#include "engine/nn/init.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/linear.h"

namespace strata::nn {

Conv2d::Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel, Generator& generator,
               const Conv2dParams& params, bool bias)
    : Conv2d(in_channels, out_channels, kernel, kernel, generator, params, bias) {}

Conv2d::Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel_h, int64_t kernel_w, Generator& generator,
               const Conv2dParams& params, bool bias)
    : params_(params) {
  check(in_channels > 0 && out_channels > 0 && kernel_h > 0 && kernel_w > 0, "nn::Conv2d: invalid sizes in=",
        in_channels, " out=", out_channels, " kernel=", kernel_h, "x", kernel_w);
  weight_ = register_parameter("weight", Tensor::empty({out_channels, kernel_h, kernel_w, in_channels}));
  if (bias) bias_ = register_parameter("bias", Tensor::empty({out_channels}));
  init::torch_default_(weight_, bias_, generator);
}

Tensor Conv2d::forward(const Tensor& x) { return conv2d(x, weight_, bias_, params_); }

Linear::Linear(int64_t in_features, int64_t out_features, Generator& generator, bool bias) {
  check(in_features > 0 && out_features > 0, "nn::Linear: invalid sizes in=", in_features, " out=", out_features);
  weight_ = register_parameter("weight", Tensor::empty({out_features, in_features}));
  if (bias) bias_ = register_parameter("bias", Tensor::empty({out_features}));
  init::torch_default_(weight_, bias_, generator);
}

Tensor Linear::forward(const Tensor& x) { return linear(x, weight_, bias_); }

Tensor ReLU::forward(const Tensor& x) { return relu(x); }

Tensor LeakyReLU::forward(const Tensor& x) { return leaky_relu(x, negative_slope_); }

}  // namespace strata::nn
