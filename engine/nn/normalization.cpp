#include "engine/nn/normalization.h"

#include "engine/ops/batch_norm.h"
#include "engine/ops/dropout.h"

namespace strata::nn {

BatchNorm2d::BatchNorm2d(int64_t channels, double eps, double momentum, bool affine)
    : eps_(eps), momentum_(momentum) {
  check(channels > 0, "nn::BatchNorm2d: channels must be > 0, got ", channels);
  if (affine) {
    weight_ = register_parameter("weight", Tensor::ones({channels}));
    bias_ = register_parameter("bias", Tensor::zeros({channels}));
  }
  running_mean_ = register_buffer("running_mean", Tensor::zeros({channels}));
  running_var_ = register_buffer("running_var", Tensor::ones({channels}));
  num_batches_tracked_ = register_buffer("num_batches_tracked", Tensor::zeros({}, DType::i64));
}

Tensor BatchNorm2d::forward(const Tensor& x) {
  if (input_observer_) input_observer_(x);
  if (is_training()) num_batches_tracked_.data<int64_t>()[0] += 1;
  return batch_norm(x, weight_, bias_, running_mean_, running_var_, is_training(), momentum_, eps_, sync_);
}

InPlaceABN::InPlaceABN(int64_t channels, Activation activation, double negative_slope, double eps, double momentum)
    : activation_(activation), negative_slope_(negative_slope), eps_(eps), momentum_(momentum) {
  check(channels > 0, "nn::InPlaceABN: channels must be > 0, got ", channels);
  weight_ = register_parameter("weight", Tensor::ones({channels}));
  bias_ = register_parameter("bias", Tensor::zeros({channels}));
  running_mean_ = register_buffer("running_mean", Tensor::zeros({channels}));
  running_var_ = register_buffer("running_var", Tensor::ones({channels}));
}

Tensor InPlaceABN::forward(const Tensor& x) {
  if (input_observer_) input_observer_(x);
  return inplace_abn(x, weight_, bias_, running_mean_, running_var_, is_training(), momentum_, eps_, activation_,
                     negative_slope_, sync_);
}

Dropout::Dropout(double p, uint64_t seed) : p_(p), generator_(seed) {
  check(p >= 0 && p < 1, "nn::Dropout: p must be in [0, 1), got ", p);
}

Tensor Dropout::forward(const Tensor& x) { return dropout(x, p_, is_training(), generator_); }

void synchronize_norms(Module& root, distributed::Communicator* world) {
  if (auto* abn = dynamic_cast<InPlaceABN*>(&root)) abn->set_sync(world);
  if (auto* bn = dynamic_cast<BatchNorm2d*>(&root)) bn->set_sync(world);
  for (const auto& [name, child] : root.children()) synchronize_norms(*child, world);
}

}  // namespace strata::nn
