// Building blocks shared by the backbones and heads of models/.
//
// Norm: the normalisation + activation a model uses everywhere.
//   batch_norm   BatchNorm2d followed by ReLU (torchvision); state keys weight, bias,
//                running_mean, running_var, num_batches_tracked
//   inplace_abn  In-place ABN with leaky ReLU 0.01 (MiB/PLOP, mapillary/inplace_abn v1); state keys
//                weight, bias, running_mean, running_var; saves only its output for backward
// A norm that ends a residual branch or a projection shortcut has no activation (batch_norm: the
// plain BatchNorm2d; inplace_abn: identity activation); the activation of the block follows the
// residual sum instead: ReLU for batch_norm, leaky ReLU 0.01 for inplace_abn.
//
// NamedModules: a Module with nothing but named children, for state-dict levels that hold no
// computation of their own (torchvision's "downsample", MiB's "convs", a Sequential's "0", "1" ...).
#pragma once

#include <memory>
#include <string>

#include "engine/nn/layers.h"
#include "engine/nn/normalization.h"

namespace strata::models {

enum class Norm { batch_norm, inplace_abn };

const char* norm_name(Norm norm);      // "batch_norm" / "inplace_abn"
Norm parse_norm(const std::string& s);  // throws naming the accepted values

// The leaky ReLU slope of In-place ABN in MiB/PLOP.
inline constexpr double kLeakySlope = 0.01;

// BatchNorm2d then ReLU, as torchvision's Sequential(BatchNorm2d, ReLU): one state-dict level, the
// BatchNorm2d's (the ReLU has no state).
class BatchNormReLU : public nn::BatchNorm2d {
 public:
  explicit BatchNormReLU(int64_t channels) : nn::BatchNorm2d(channels) {}
  Tensor forward(const Tensor& x) override;  // (N,H,W,C) -> (N,H,W,C)
};

// A norm layer of `channels` channels; `activated` selects the norm's activation (ReLU or leaky
// ReLU 0.01) or none.
std::shared_ptr<nn::Layer> make_norm(Norm norm, int64_t channels, bool activated);

// The activation of `norm` applied on its own (after a residual sum, on the head's added branches).
Tensor activate(Norm norm, const Tensor& x);

class NamedModules : public nn::Module {
 public:
  template <class M>
  std::shared_ptr<M> add(const std::string& name, std::shared_ptr<M> module) {
    return register_module(name, std::move(module));
  }
};

// A bias-free convolution with square kernel, as every conv of the backbones and heads but the
// classifier: padding = dilation * (kernel - 1) / 2 keeps the size at stride 1.
std::shared_ptr<nn::Conv2d> make_conv(int64_t in_channels, int64_t out_channels, int64_t kernel, int64_t stride,
                                      int64_t dilation, Generator& generator);

}  // namespace strata::models
