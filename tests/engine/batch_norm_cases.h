// The one case table of batch_norm and inplace_abn (tests/support/op_cases.h), shared by the CPU
// gradient checks (tests/engine/test_batch_norm.cpp) and the CUDA-vs-CPU comparisons
// (tests/cuda/test_batch_norm.cpp); the PyTorch parity runner both ops' parity tests use; and In-place
// ABN's memory check, run on the CPU and on the CUDA device. The two ops are one computation
// (engine/ops/batch_norm.h), so every setting runs as batch_norm, as In-place ABN with a leaky ReLU and
// as In-place ABN with the identity: training and eval, with and without the affine parameters and the
// running statistics, (N,H,W,C) and (N,C) inputs, a weight without a gradient (batch_norm then keeps
// no x).
//
// Every case's inputs are {x, weight, bias, running_mean, running_var}; x is shifted and scaled away
// from N(0, 1), as activations are; weights have both signs and stay away from 0, where In-place ABN's
// |weight| has its kink.
#pragma once

#include <catch2/catch.hpp>
#include <functional>
#include <string>
#include <vector>

#include "engine/allocator.h"
#include "engine/ops/batch_norm.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/inplace_abn.h"
#include "tests/support/compare.h"
#include "tests/support/leaves.h"
#include "tests/support/op_cases.h"
#include "tests/support/torch_reference.h"

namespace strata::test {

// A normalisation layer applied to {x, weight, bias, running_mean, running_var}.
using NormLayer = std::function<Tensor(const std::vector<Tensor>& in, bool training, double eps)>;

struct NamedNormLayer {
  std::string name;
  NormLayer apply;
};

inline NamedNormLayer batch_norm_layer() {
  return {"batch_norm", [](const std::vector<Tensor>& in, bool training, double eps) {
            return batch_norm(in[0], in[1], in[2], in[3], in[4], training, 0.1, eps);
          }};
}

inline NamedNormLayer inplace_abn_layer(Activation activation, double slope) {
  const std::string name =
      activation == Activation::identity ? "inplace_abn identity" : "inplace_abn leaky_relu " + std::to_string(slope);
  return {name, [activation, slope](const std::vector<Tensor>& in, bool training, double eps) {
            return inplace_abn(in[0], in[1], in[2], in[3], in[4], training, 0.1, eps, activation, slope);
          }};
}

struct NormSetting {
  std::string name;
  Shape shape;
  bool training;
  bool affine;
  bool running;  // running statistics given
  bool weight_grad = true;
};

struct NormCase {
  OpCase op;
  bool training;  // the running statistics (inputs 3 and 4) are updated
};

inline NormCase norm_case(const NamedNormLayer& layer, const NormSetting& s, uint64_t seed) {
  auto inputs = [s](Generator& g) {
    const int64_t channels = s.shape.back();
    Tensor x = leaf(s.shape, g, 1.5, 0.4);
    Tensor weight, bias, running_mean, running_var;
    if (s.affine) {
      weight = leaf_away_from_zero({channels}, g, 0.3);
      if (!s.weight_grad) weight = weight.detach();
      bias = leaf({channels}, g, 0.5);
    }
    if (s.running) {
      running_mean = Tensor::randn({channels}, g, DType::f64);
      running_var = Tensor::uniform({channels}, 0.5, 2.0, g, DType::f64);
    }
    return std::vector<Tensor>{x, weight, bias, running_mean, running_var};
  };
  // eval divides by the running variance: a larger eps than training's keeps it well away from 0.
  const double eps = s.training ? 1e-5 : 1e-3;
  const NormLayer apply = layer.apply;
  const bool training = s.training;
  return {{layer.name + ", " + s.name, inputs,
           [apply, training, eps](const std::vector<Tensor>& in) { return apply(in, training, eps); }, seed},
          s.training};
}

inline std::vector<NormCase> norm_cases() {
  const std::vector<NormSetting> settings = {
      {"train, affine, running stats, NHWC", {2, 3, 4, 5}, true, true, true},
      {"train, affine, running stats, NHWC, odd sizes", {2, 9, 7, 5}, true, true, true},
      {"train, no affine, running stats, NHWC", {2, 9, 7, 5}, true, false, true},
      {"train, affine, no running stats, NHWC", {3, 5, 4, 6}, true, true, false},
      {"train, no affine, no running stats, NHWC", {2, 3, 4, 5}, true, false, false},
      {"train, affine, running stats, (N,C)", {12, 37}, true, true, true},
      {"train, affine, no running stats, (N,C)", {7, 5}, true, true, false},
      {"train, no affine, no running stats, (N,C)", {5, 3}, true, false, false},
      {"eval, affine, NHWC", {2, 9, 7, 5}, false, true, true},
      {"eval, no affine, NHWC", {2, 6, 5, 40}, false, false, true},
      {"eval, affine, weight without grad (x not kept)", {2, 9, 7, 5}, false, true, true, false},
      {"eval, affine, (N,C)", {4, 33}, false, true, true},
  };
  const NamedNormLayer layers[] = {batch_norm_layer(), inplace_abn_layer(Activation::leaky_relu, 0.1),
                                   inplace_abn_layer(Activation::identity, 0.0)};
  std::vector<NormCase> cases;
  uint64_t seed = 500;
  for (const NamedNormLayer& layer : layers) {
    for (const NormSetting& s : settings) cases.push_back(norm_case(layer, s, seed++));
  }
  // MiB's slope, and a large slope so that the inverse of the activation matters as much as its forward.
  cases.push_back(norm_case(inplace_abn_layer(Activation::leaky_relu, 0.01), settings[0], seed++));
  cases.push_back(
      norm_case(inplace_abn_layer(Activation::leaky_relu, 0.5), {"train", {2, 8, 6, 9}, true, true, true}, seed++));
  return cases;
}

inline OpCases normalization_cases() {
  OpCases cases;
  for (const NormCase& c : norm_cases()) cases.push_back(c.op);
  return cases;
}

// Runs the PyTorch case `name` of group normalization through `layer`, reading which optional
// tensors exist and the op parameters from the case, then checks the updated running statistics.
inline void check_normalization_torch_case(
    const std::string& name, const std::function<Tensor(const std::vector<Tensor>&, const TorchCase&)>& layer) {
  TorchCase c("normalization", name);
  const bool affine = c.param("affine") != 0, running = c.param("running") != 0;
  std::vector<std::string> inputs{"x"};
  if (affine) inputs.insert(inputs.end(), {"weight", "bias"});
  if (running) inputs.insert(inputs.end(), {"running_mean", "running_var"});
  Tensor running_mean, running_var;
  check_torch_case("normalization", name, inputs, [&](const std::vector<Tensor>& in, const TorchCase& tc) {
    size_t k = 1;
    Tensor weight, bias;
    if (affine) {
      weight = in[k++];
      bias = in[k++];
    }
    if (running) {
      running_mean = in[k++];
      running_var = in[k++];
    }
    return layer({in[0], weight, bias, running_mean, running_var}, tc);
  });
  if (running) {
    INFO("PyTorch reference " << c.path());
    CHECK_CLOSE(running_mean, c["running_mean_after"]);
    CHECK_CLOSE(running_var, c["running_var_after"]);
  }
}

// In-place ABN's memory property (engine/ops/inplace_abn.h) on `device`, for a training layer of
// `channels` channels: the bytes still allocated after the layer returns and the caller has dropped its
// input x (a non-leaf activation, as a convolution's output is), while the layer's output and graph
// live, must be one activation plus per-channel statistics (at most `per_channel_slack` bytes), and
// batch_norm + leaky_relu must hold exactly one activation more. Each layer's backward then runs.
inline void check_inplace_abn_holds_one_activation_less(const Device& device, int64_t channels,
                                                        int64_t per_channel_slack) {
  Generator g(33);
  Tensor input = Tensor::randn({2, 16, 16, channels}, g).to(device);
  input.set_requires_grad(true);
  Tensor weight = Tensor::uniform({channels}, 0.5, 1.5, g).to(device), bias = Tensor::randn({channels}, g).to(device);
  weight.set_requires_grad(true);
  bias.set_requires_grad(true);
  Tensor running_mean = Tensor::zeros({channels}, DType::f32, device);
  Tensor running_var = Tensor::ones({channels}, DType::f32, device);
  const int64_t activation = static_cast<int64_t>(input.nbytes());
  auto bytes_held = [&](const std::function<Tensor(const Tensor&)>& layer) {
    int64_t before = memory_stats(device).allocated_bytes;
    Tensor y;
    {
      Tensor x = scale(input, 1.0);
      y = layer(x);
    }
    int64_t held = memory_stats(device).allocated_bytes - before;
    y.backward(Tensor::ones(y.shape(), DType::f32, device));
    CHECK(input.grad().defined());
    input.set_grad(Tensor());
    return held;
  };
  int64_t held_abn = bytes_held([&](const Tensor& x) {
    return inplace_abn(x, weight, bias, running_mean, running_var, true, 0.1, 1e-5, Activation::leaky_relu, 0.01);
  });
  int64_t held_composed = bytes_held(
      [&](const Tensor& x) { return leaky_relu(batch_norm(x, weight, bias, running_mean, running_var, true), 0.01); });
  INFO("activation " << activation << " bytes; held on " << device.str() << ": inplace_abn " << held_abn
                     << ", batch_norm + leaky_relu " << held_composed);
  CHECK(held_abn >= activation);
  CHECK(held_abn < activation + per_channel_slack);
  CHECK(held_composed - held_abn >= activation);
  CHECK(held_composed - held_abn < activation + per_channel_slack);
}

}  // namespace strata::test
