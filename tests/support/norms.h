// Norm layers with statistics and affine parameters far from their initial values, so that folding
// a norm into its convolution (models/blocks.h) changes the weights: a freshly built model's norms
// (weight 1, bias 0, running mean 0, running variance 1) are the identity up to eps, which a broken
// fold could pass. Every BatchNorm2d (BatchNormReLU included) and InPlaceABN below `root` gets
//   weight U(-1.5, 1.5) (negative values too: In-place ABN uses |weight| + eps), bias U(-0.5, 0.5),
//   running_mean U(-0.5, 0.5), running_var U(0.25, 2)
// drawn from one generator in module order.
#pragma once

#include "engine/nn/module.h"
#include "engine/nn/normalization.h"

namespace strata::test {

inline void randomize_norms(nn::Module& root, Generator& generator) {
  auto set = [&](Tensor& t, double low, double high) {
    if (t.defined()) t.copy_(Tensor::uniform(t.shape(), low, high, generator, t.dtype()));
  };
  auto randomize = [&](Tensor& weight, Tensor& bias, Tensor& mean, Tensor& var) {
    set(weight, -1.5, 1.5);
    set(bias, -0.5, 0.5);
    set(mean, -0.5, 0.5);
    set(var, 0.25, 2.0);
  };
  for (const auto& [name, child] : root.children()) {
    if (auto* bn = dynamic_cast<nn::BatchNorm2d*>(child.get())) {
      randomize(bn->weight(), bn->bias(), bn->running_mean(), bn->running_var());
    } else if (auto* abn = dynamic_cast<nn::InPlaceABN*>(child.get())) {
      randomize(abn->weight(), abn->bias(), abn->running_mean(), abn->running_var());
    }
    randomize_norms(*child, generator);
  }
}

}  // namespace strata::test
