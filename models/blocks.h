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
//
// Folding (a frozen model: the continual-learning teacher). In eval mode a norm is a per-channel
// affine map followed by its activation, norm(v) = act(v * scale + shift), with
//   scale = gamma / sqrt(running_var + eps),  shift = beta - running_mean * scale,
//   gamma = weight (batch norm) or |weight| + eps (In-place ABN), beta = bias,
//   act = ReLU (BatchNormReLU), leaky ReLU with the layer's slope (In-place ABN), identity otherwise.
// The affine map of a norm that follows a convolution folds into that convolution once:
//   w'[k] = w[k] * scale[k],  b'[k] = shift[k] + b[k] * scale[k]
// and the activation becomes the convolution's epilogue (engine/ops/conv2d.h, conv2d_activation), so
// a frozen conv + norm + activation is one op and one output tensor. Folding is computed in double
// on the host, then stored in the weights' dtype on their device. A norm in training mode normalises
// with batch statistics, which no fixed weights reproduce: folding it is an error.
#pragma once

#include <memory>
#include <string>
#include <vector>

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

// A norm in eval mode as the affine map and activation of the file comment (per channel, in double).
struct NormFold {
  std::vector<double> scale, shift;
  double slope = 1;  // of the activation: 0 ReLU, 1 identity, else leaky ReLU

  // Channels [offset, offset + count): a norm over a concatenation, folded into one of its branches.
  NormFold slice(int64_t offset, int64_t count) const;
  // The scale alone, identity activation: for the second of two convolutions whose sum the norm
  // normalises (the first takes the shift and the activation).
  NormFold scale_only() const;
};

// `norm`: nn::BatchNorm2d, BatchNormReLU or nn::InPlaceABN, in eval mode; throws strata::Error
// naming `name` for a norm in training mode or another layer type.
NormFold fold_norm(const nn::Layer& norm, const std::string& name);

// Throws strata::Error naming the first norm (by its state-dict name under `prefix`) of `root` that
// is in training mode: what every model's fold() checks first.
void check_foldable(const nn::Module& root, const std::string& prefix = "");

// A convolution with the norm after it folded in and the norm's activation as its epilogue; see the
// file comment. Holds its own weight (K,R,S,C) and bias (K) in the convolution's dtype and device.
class FoldedConv {
 public:
  FoldedConv() = default;
  explicit FoldedConv(const nn::Conv2d& conv);  // no norm: the convolution and its bias as they are
  FoldedConv(const nn::Conv2d& conv, const NormFold& norm);
  // Convolutions of the same input geometry side by side (the classifier's steps): their outputs
  // concatenated along channels, as one convolution; all with the same activation.
  static FoldedConv concat_outputs(const std::vector<FoldedConv>& convs);

  // x (N,H,W,C) -> act(conv(x) + bias + residual) (N,P,Q,K); residual as conv2d_activation takes it.
  Tensor forward(const Tensor& x, const Tensor& residual = Tensor()) const;
  // The same without the activation (a pre-activation map asked for).
  Tensor forward_linear(const Tensor& x, const Tensor& residual = Tensor()) const;

  double slope() const { return slope_; }
  const Tensor& weight() const { return weight_; }
  const Tensor& bias() const { return bias_; }
  int64_t bytes() const;  // of the weight and bias

 private:
  Tensor weight_, bias_;
  Conv2dParams params_;
  double slope_ = 1;
};

// A bias-free convolution with square kernel, as every conv of the backbones and heads but the
// classifier: padding = dilation * (kernel - 1) / 2 keeps the size at stride 1.
std::shared_ptr<nn::Conv2d> make_conv(int64_t in_channels, int64_t out_channels, int64_t kernel, int64_t stride,
                                      int64_t dilation, Generator& generator);

}  // namespace strata::models
