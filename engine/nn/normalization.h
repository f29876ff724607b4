// Normalisation and regularisation layers with PyTorch's state-dict names:
//   BatchNorm2d  weight, bias, running_mean, running_var, num_batches_tracked (as torch.nn.BatchNorm2d)
//   InPlaceABN   weight, bias, running_mean, running_var (as mapillary/inplace_abn's InPlaceABN,
//                the norm of MiB/PLOP; BN + leaky ReLU 0.01 or identity, see engine/ops/inplace_abn.h)
//   Dropout      no state; its mask comes from the layer's own seeded generator
// Training mode uses batch statistics and updates the running ones; eval mode uses the running ones.
// Both norms call an optional input observer with the tensor they normalise, before normalising it
// (DeepInversion's feature statistics, engine/nn/feature_statistics.h, read the inputs this way).
// With set_sync(world) (synchronize_norms below) both norms compute their training statistics over every
// rank of `world` (SyncBatchNorm / InPlaceABNSync, engine/ops/batch_norm.h's sync).
#pragma once

#include <functional>

#include "engine/nn/module.h"
#include "engine/ops/inplace_abn.h"

namespace strata::nn {

class BatchNorm2d : public Layer {
 public:
  explicit BatchNorm2d(int64_t channels, double eps = 1e-5, double momentum = 0.1, bool affine = true);
  Tensor forward(const Tensor& x) override;  // (N,H,W,C) -> (N,H,W,C)
  Tensor& weight() { return weight_; }
  Tensor& bias() { return bias_; }
  Tensor& running_mean() { return running_mean_; }
  Tensor& running_var() { return running_var_; }
  const Tensor& weight() const { return weight_; }
  const Tensor& bias() const { return bias_; }
  const Tensor& running_mean() const { return running_mean_; }
  const Tensor& running_var() const { return running_var_; }
  double eps() const { return eps_; }
  // Called with x, (N,H,W,C), on every forward; an empty function detaches it.
  void set_input_observer(std::function<void(const Tensor& x)> observer) { input_observer_ = std::move(observer); }
  void set_sync(distributed::Communicator* world) { sync_ = world; }  // null: this rank's statistics

 private:
  Tensor weight_, bias_, running_mean_, running_var_, num_batches_tracked_;
  std::function<void(const Tensor&)> input_observer_;
  distributed::Communicator* sync_ = nullptr;
  double eps_, momentum_;
};

class InPlaceABN : public Layer {
 public:
  explicit InPlaceABN(int64_t channels, Activation activation = Activation::leaky_relu, double negative_slope = 0.01,
                      double eps = 1e-5, double momentum = 0.1);
  Tensor forward(const Tensor& x) override;  // (N,H,W,C) -> (N,H,W,C)
  Tensor& weight() { return weight_; }
  Tensor& bias() { return bias_; }
  Tensor& running_mean() { return running_mean_; }
  Tensor& running_var() { return running_var_; }
  const Tensor& weight() const { return weight_; }
  const Tensor& bias() const { return bias_; }
  const Tensor& running_mean() const { return running_mean_; }
  const Tensor& running_var() const { return running_var_; }
  Activation activation() const { return activation_; }
  double negative_slope() const { return negative_slope_; }
  double eps() const { return eps_; }
  // Called with x, (N,H,W,C), on every forward; an empty function detaches it.
  void set_input_observer(std::function<void(const Tensor& x)> observer) { input_observer_ = std::move(observer); }
  void set_sync(distributed::Communicator* world) { sync_ = world; }  // null: this rank's statistics

 private:
  Tensor weight_, bias_, running_mean_, running_var_;
  std::function<void(const Tensor&)> input_observer_;
  distributed::Communicator* sync_ = nullptr;
  Activation activation_;
  double negative_slope_, eps_, momentum_;
};

class Dropout : public Layer {
 public:
  Dropout(double p, uint64_t seed);
  Tensor forward(const Tensor& x) override;
  Generator& generator() { return generator_; }

 private:
  double p_;
  Generator generator_;
};

// Every BatchNorm2d and InPlaceABN under `root` synchronised over `world` (null: none); the
// communicator must outlive the model's training forwards and backwards.
void synchronize_norms(Module& root, distributed::Communicator* world);

}  // namespace strata::nn
