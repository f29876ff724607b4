// conv2d and linear: gradients by finite differences (f64) on every case of their table
// (tests/engine/conv2d_cases.h), parity with PyTorch, im2col chunking, and bad input; the inference
// convolution conv2d_activation against the composition it replaces.
#include <catch2/catch.hpp>

#include "engine/autograd.h"
#include "engine/ops/conv2d.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/linear.h"
#include "tests/engine/conv2d_cases.h"
#include "tests/support/compare.h"
#include "tests/support/gradcheck.h"
#include "tests/support/torch_reference.h"

using namespace strata;

TEST_CASE("conv2d gradcheck: pointwise, strided, padded, dilated, stem, with and without bias", "[gradcheck]") {
  test::check_gradients(test::conv2d_cases());
}

TEST_CASE("linear gradcheck", "[gradcheck]") { test::check_gradients(test::linear_cases()); }

TEST_CASE("conv2d matches PyTorch", "[torch]") {
  for (const char* name : {"pointwise", "pointwise_strided", "3x3", "3x3_stride2", "3x3_dilation2",
                           "3x3_dilation3_pad0", "7x7_stem", "5x3_rect"}) {
    std::string case_name = std::string("conv2d_") + name;
    test::TorchCase probe("conv", case_name);
    std::vector<std::string> inputs = {"x", "weight"};
    if (probe.has("bias")) inputs.push_back("bias");
    test::check_torch_case("conv", case_name, inputs, [](const std::vector<Tensor>& in, const test::TorchCase& c) {
      auto stride = static_cast<int64_t>(c.param("stride"));
      auto pad = static_cast<int64_t>(c.param("pad"));
      auto dilation = static_cast<int64_t>(c.param("dilation"));
      return conv2d(in[0], in[1], in.size() > 2 ? in[2] : Tensor(), Conv2dParams::same(stride, pad, dilation));
    });
  }
}

TEST_CASE("linear matches PyTorch", "[torch]") {
  test::check_torch_case("conv", "linear", {"x", "weight", "bias"},
                         [](const auto& in, const auto&) { return linear(in[0], in[1], in[2]); });
  test::check_torch_case("conv", "linear_rank3_nobias", {"x", "weight"},
                         [](const auto& in, const auto&) { return linear(in[0], in[1], Tensor()); });
}

TEST_CASE("conv2d results do not depend on the number of images per im2col chunk", "[cpu]") {
  // A batch large enough to be split into several chunks equals the per-image results.
  Generator g(23);
  Tensor x = Tensor::randn({5, 40, 40, 16}, g);
  Tensor w = Tensor::randn({8, 3, 3, 16}, g);
  Tensor y = conv2d(x, w, Tensor(), Conv2dParams::same(1, 1));
  for (int64_t n = 0; n < 5; ++n) {
    std::vector<float> all = x.to_vector<float>();
    std::vector<float> one(all.begin() + n * 40 * 40 * 16, all.begin() + (n + 1) * 40 * 40 * 16);
    Tensor yn = conv2d(Tensor::from_vector(one, {1, 40, 40, 16}), w, Tensor(), Conv2dParams::same(1, 1));
    std::vector<float> ya = y.to_vector<float>(), yb = yn.to_vector<float>();
    REQUIRE(std::equal(yb.begin(), yb.end(), ya.begin() + n * 40 * 40 * 8));
  }
}

TEST_CASE("conv2d_activation is the activation of conv2d plus the residual, in one op", "[cpu]") {
  uint64_t seed = 260;
  for (const test::ConvActivationConfig& a : test::conv2d_activation_configs()) {
    const test::OpCase c = test::conv2d_activation_case(a, seed++);
    INFO(c.name);
    const std::vector<Tensor> in = test::case_inputs(c);
    for (DType dtype : {DType::f64, DType::f32}) {
      INFO(dtype_name(dtype));
      std::vector<Tensor> typed;
      for (const Tensor& t : in) typed.push_back(t.defined() ? t.to(dtype) : Tensor());
      // The composition it replaces: conv2d with the bias, the residual added (per pixel or per
      // image), then leaky_relu (relu at slope 0, nothing at slope 1).
      const Conv2dParams p = Conv2dParams::same(a.conv.stride, a.conv.pad, a.conv.dilation);
      Tensor expected = conv2d(typed[0], typed[1], typed[2], p);
      if (typed[3].defined()) expected = add(expected, typed[3]);
      if (a.slope != 1.0) expected = leaky_relu(expected, a.slope);
      CHECK_CLOSE(c.f(typed), expected);
    }
  }
}

TEST_CASE("conv2d_activation refuses inputs that need a gradient and bad residuals", "[cpu]") {
  Tensor x = Tensor::ones({1, 4, 4, 2}), w = Tensor::ones({3, 1, 1, 2});
  Tensor trained = w.clone();
  trained.set_requires_grad(true);
  CHECK_THROWS_WITH(conv2d_activation(x, trained, Tensor(), Tensor(), 0.0), Catch::Contains("records no graph"));
  {
    autograd::NoGradGuard no_grad;  // without grad mode nothing would be recorded anyway
    CHECK(conv2d_activation(x, trained, Tensor(), Tensor(), 0.0).shape() == Shape{1, 4, 4, 3});
  }
  CHECK_THROWS_WITH(conv2d_activation(x, w, Tensor(), Tensor::zeros({1, 4, 4, 2}), 0.0),
                    Catch::Contains("must be the output's (N,P,Q,K) = (1,4,4,3) or (N,1,1,K)"));
  CHECK_THROWS_WITH(conv2d_activation(x, w, Tensor(), Tensor(), 2.0), Catch::Contains("negative_slope"));
}

TEST_CASE("conv2d and linear reject bad input clearly", "[cpu]") {
  Tensor x = Tensor::zeros({1, 5, 5, 3});
  CHECK_THROWS_WITH(conv2d(x, Tensor::zeros({4, 3, 3, 2}), Tensor()), Catch::Contains("expects 2 input channels"));
  CHECK_THROWS_WITH(conv2d(Tensor::zeros({5, 5, 3}), Tensor::zeros({4, 3, 3, 3}), Tensor()),
                    Catch::Contains("rank 4 (N,H,W,C)"));
  CHECK_THROWS_WITH(conv2d(x, Tensor::zeros({4, 3, 3, 3}), Tensor::zeros({5})), Catch::Contains("bias"));
  CHECK_THROWS_WITH(conv2d(x, Tensor::zeros({4, 7, 7, 3}), Tensor()), Catch::Contains("does not fit"));
  CHECK_THROWS_WITH(conv2d(x, Tensor::zeros({4, 3, 3, 3}), Tensor(), Conv2dParams::same(0, 1)),
                    Catch::Contains("stride"));
  CHECK_THROWS_WITH(conv2d(x, Tensor::zeros({4, 3, 3, 3}, DType::f64), Tensor()), Catch::Contains("dtypes must match"));
  CHECK_THROWS_WITH(linear(Tensor::zeros({2, 4}), Tensor::zeros({3, 5}), Tensor()),
                    Catch::Contains("expects 5 input features"));
}
