// inplace_abn: finite-difference gradients (f64) through the backward that recomputes from the
// output, parity with a PyTorch composition of the same formula (f32), the memory it saves over
// batch_norm + leaky_relu, and bad input.
#include <catch2/catch.hpp>

#include "engine/allocator.h"
#include "engine/ops/batch_norm.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/inplace_abn.h"
#include "tests/support/compare.h"
#include "tests/support/gradcheck.h"
#include "tests/support/torch_reference.h"

using namespace strata;
using strata::test::check_torch_case;
using strata::test::TorchCase;

namespace {

Tensor leaf(const Shape& shape, Generator& g, double scale_by = 1.0, double shift = 0.0) {
  std::vector<double> v = Tensor::randn(shape, g, DType::f64).to_vector<double>();
  for (double& e : v) e = e * scale_by + shift;
  Tensor t = Tensor::from_vector(v, shape);
  t.set_requires_grad(true);
  return t;
}

// Weights of both signs bounded away from 0, where |w| has its kink.
Tensor weight_leaf(int64_t channels, Generator& g) {
  std::vector<double> v = Tensor::randn({channels}, g, DType::f64).to_vector<double>();
  for (double& e : v) e = e >= 0 ? e + 0.3 : e - 0.3;
  Tensor t = Tensor::from_vector(v, {channels});
  t.set_requires_grad(true);
  return t;
}

Activation activation_of(const TorchCase& c) {
  return c.text("activation") == "identity" ? Activation::identity : Activation::leaky_relu;
}

void check_inplace_abn_case(const std::string& name) {
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
    return inplace_abn(in[0], weight, bias, running_mean, running_var, tc.param("training") != 0,
                       tc.param("momentum"), tc.param("eps"), activation_of(tc), tc.param("slope"));
  });
  if (running) {
    INFO("PyTorch reference " << c.path());
    CHECK_CLOSE(running_mean, c["running_mean_after"]);
    CHECK_CLOSE(running_var, c["running_var_after"]);
  }
}

}  // namespace

TEST_CASE("inplace_abn gradcheck in training: leaky_relu and identity, x, weight, bias", "[gradcheck]") {
  Generator g(31);
  Tensor x = leaf({2, 3, 4, 5}, g, 1.5, 0.4);
  Tensor weight = weight_leaf(5, g), bias = leaf({5}, g, 0.5);
  Tensor running_mean = Tensor::zeros({5}, DType::f64), running_var = Tensor::ones({5}, DType::f64);
  for (Activation act : {Activation::leaky_relu, Activation::identity}) {
    INFO("activation " << (act == Activation::identity ? "identity" : "leaky_relu"));
    CHECK_GRADCHECK(
        [act](const std::vector<Tensor>& in) {
          return inplace_abn(in[0], in[1], in[2], in[3], in[4], true, 0.1, 1e-5, act, 0.2);
        },
        {x, weight, bias, running_mean, running_var});
  }
  CHECK_GRADCHECK(
      [](const std::vector<Tensor>& in) {
        return inplace_abn(in[0], Tensor(), Tensor(), Tensor(), Tensor(), true, 0.1, 1e-5, Activation::leaky_relu, 0.01);
      },
      {x});
}

TEST_CASE("inplace_abn gradcheck in eval: leaky_relu and identity, x, weight, bias", "[gradcheck]") {
  Generator g(32);
  Tensor x = leaf({2, 3, 4, 5}, g, 1.5, 0.4);
  Tensor weight = weight_leaf(5, g), bias = leaf({5}, g, 0.5);
  Tensor running_mean = Tensor::randn({5}, g, DType::f64);
  Tensor running_var = Tensor::uniform({5}, 0.5, 2.0, g, DType::f64);
  for (Activation act : {Activation::leaky_relu, Activation::identity}) {
    INFO("activation " << (act == Activation::identity ? "identity" : "leaky_relu"));
    CHECK_GRADCHECK(
        [act](const std::vector<Tensor>& in) {
          return inplace_abn(in[0], in[1], in[2], in[3], in[4], false, 0.1, 1e-3, act, 0.1);
        },
        {x, weight, bias, running_mean, running_var});
  }
}

TEST_CASE("inplace_abn matches PyTorch: outputs, gradients and running statistics", "[torch]") {
  for (const char* name : {"inplace_abn_train_leaky", "inplace_abn_train_leaky_slope", "inplace_abn_train_identity",
                           "inplace_abn_train_no_affine", "inplace_abn_train_no_running", "inplace_abn_train_rank2",
                           "inplace_abn_eval_leaky", "inplace_abn_eval_identity"}) {
    SECTION(name) { check_inplace_abn_case(name); }
  }
}

TEST_CASE("inplace_abn holds one activation less than batch_norm + leaky_relu", "[cpu]") {
  Generator g(33);
  const int64_t channels = 8;
  Tensor input = Tensor::randn({2, 16, 16, channels}, g);
  input.set_requires_grad(true);
  Tensor weight = Tensor::uniform({channels}, 0.5, 1.5, g), bias = Tensor::randn({channels}, g);
  weight.set_requires_grad(true);
  bias.set_requires_grad(true);
  Tensor running_mean = Tensor::zeros({channels}), running_var = Tensor::ones({channels});
  const int64_t activation = static_cast<int64_t>(input.nbytes());

  // Bytes still allocated after the layer returns and the caller has dropped its input x (a
  // non-leaf activation, as a convolution's output is), while the layer's output and graph live.
  auto bytes_held = [&](const std::function<Tensor(const Tensor&)>& layer) {
    int64_t before = memory_stats().allocated_bytes;
    Tensor y;
    {
      Tensor x = scale(input, 1.0);
      y = layer(x);
    }
    int64_t held = memory_stats().allocated_bytes - before;
    y.backward(Tensor::ones(y.shape()));
    CHECK(input.grad().defined());
    input.set_grad(Tensor());
    return held;
  };
  int64_t held_abn = bytes_held([&](const Tensor& x) {
    return inplace_abn(x, weight, bias, running_mean, running_var, true, 0.1, 1e-5, Activation::leaky_relu, 0.01);
  });
  int64_t held_composed = bytes_held([&](const Tensor& x) {
    return leaky_relu(batch_norm(x, weight, bias, running_mean, running_var, true), 0.01);
  });
  INFO("activation " << activation << " bytes; held: inplace_abn " << held_abn << ", batch_norm + leaky_relu "
                     << held_composed);
  // Beyond whole activations only per-channel statistics remain (a few C-sized vectors).
  const int64_t per_channel_slack = 16 * channels * static_cast<int64_t>(sizeof(double));
  CHECK(held_abn >= activation);
  CHECK(held_abn < activation + per_channel_slack);
  CHECK(held_composed - held_abn >= activation);
  CHECK(held_composed - held_abn < activation + per_channel_slack);
}

TEST_CASE("inplace_abn rejects bad input clearly", "[cpu]") {
  Tensor x = Tensor::zeros({2, 3, 4, 5});
  Tensor c5 = Tensor::ones({5});
  CHECK_THROWS_WITH(inplace_abn(x, c5, c5, c5, c5, true, 0.1, 1e-5, Activation::leaky_relu, 0.0),
                    Catch::Contains("inplace_abn") && Catch::Contains("negative_slope must be > 0"));
  CHECK_THROWS_WITH(inplace_abn(x, c5, c5, c5, c5, true, 0.1, 1e-5, Activation::leaky_relu, -0.01),
                    Catch::Contains("negative_slope"));
  CHECK_NOTHROW(inplace_abn(x, c5, c5, c5, c5, true, 0.1, 1e-5, Activation::identity, 0.0));
  CHECK_THROWS_WITH(inplace_abn(Tensor::zeros({2, 5, 1}), c5, c5, c5, c5, true),
                    Catch::Contains("inplace_abn") && Catch::Contains("(N,H,W,C) or (N,C)"));
  CHECK_THROWS_WITH(inplace_abn(x, Tensor::ones({5}, DType::f64), Tensor::ones({5}, DType::f64), c5, c5, true),
                    Catch::Contains("inplace_abn") && Catch::Contains("weight") && Catch::Contains("dtypes must match"));
  CHECK_THROWS_WITH(inplace_abn(x, c5, c5, Tensor(), Tensor(), false),
                    Catch::Contains("inplace_abn") && Catch::Contains("running_mean"));
  CHECK_THROWS_WITH(inplace_abn(Tensor::zeros({1, 5}), c5, c5, c5, c5, true),
                    Catch::Contains("inplace_abn") && Catch::Contains("more than one value per channel"));
  CHECK_THROWS_WITH(inplace_abn(x, c5, c5, Tensor::ones({3}), c5, true),
                    Catch::Contains("running_mean") && Catch::Contains("f32[3]"));
}
