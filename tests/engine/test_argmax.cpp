// argmax over channels: PyTorch parity (including exact ties), the definition on the cases of
// tests/engine/argmax_cases.h (ties, NaN), no graph, bad input.
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>

#include "engine/ops/argmax.h"
#include "tests/engine/argmax_cases.h"
#include "tests/support/torch_reference.h"

using namespace strata;
using strata::test::check_torch_case;

TEST_CASE("argmax matches torch.argmax(dim=1), ties included", "[torch]") {
  for (const char* name : {"argmax_nchw", "argmax_ties", "argmax_rank2_ties", "argmax_one_channel"}) {
    check_torch_case("losses", name, {"x"}, [](const auto& in, const auto&) {
      Tensor index = argmax(in[0]);
      CHECK(index.dtype() == DType::i64);
      return index;
    });
  }
}

TEST_CASE("argmax returns the first maximal channel and treats NaN as the maximum", "[cpu]") {
  const test::OpCases cases = test::argmax_cases();
  const test::OpCase& with_nan = cases.back();
  REQUIRE(with_nan.name == "argmax with NaNs");
  CHECK(argmax(test::case_inputs(with_nan)[0]).to_vector<int64_t>() == std::vector<int64_t>{1, 0, 1, 2, 0});
  Tensor rank1 = argmax(Tensor::from_vector<double>({0.5, 2.0, -1.0}, {3}));
  CHECK(rank1.shape() == Shape{});
  CHECK(rank1.item() == 1.0);
}

TEST_CASE("argmax is the first channel holding the maximum, a NaN counting as the maximum, on every case", "[cpu]") {
  for (const test::OpCase& c : test::argmax_cases()) {
    INFO(c.name);
    Tensor x = test::case_inputs(c)[0];
    Tensor index = c.f({x});
    const int64_t channels = x.size(-1);
    std::vector<double> v = x.to_vector<double>();
    std::vector<int64_t> got = index.to_vector<int64_t>();
    REQUIRE(static_cast<int64_t>(got.size()) * channels == x.numel());
    for (size_t p = 0; p < got.size(); ++p) {
      const double* row = v.data() + p * static_cast<size_t>(channels);
      int64_t expected = 0;
      for (int64_t k = 1; k < channels && !std::isnan(row[expected]); ++k) {
        if (std::isnan(row[k]) || row[k] > row[expected]) expected = k;
      }
      CHECK(got[p] == expected);
    }
  }
}

TEST_CASE("argmax of NHWC logits has shape (N,H,W) and no graph", "[cpu]") {
  Generator g(301);
  Tensor x = Tensor::randn({2, 3, 5, 4}, g, DType::f64);
  x.set_requires_grad(true);
  Tensor index = argmax(x);
  CHECK(index.shape() == Shape{2, 3, 5});
  CHECK(index.dtype() == DType::i64);
  CHECK_FALSE(index.requires_grad());
  CHECK(index.grad_fn() == nullptr);
  std::vector<double> v = x.to_vector<double>();
  std::vector<int64_t> idx = index.to_vector<int64_t>();
  for (size_t p = 0; p < idx.size(); ++p) {
    for (size_t c = 0; c < 4; ++c) CHECK(v[p * 4 + c] <= v[p * 4 + static_cast<size_t>(idx[p])]);
  }
}

TEST_CASE("argmax rejects bad input clearly", "[cpu]") {
  CHECK_THROWS_WITH(argmax(Tensor::zeros({2, 3}, DType::i64)),
                    Catch::Contains("argmax") && Catch::Contains("f32 or f64") && Catch::Contains("i64[2,3]"));
  CHECK_THROWS_WITH(argmax(Tensor::scalar(2.0)), Catch::Contains("argmax") && Catch::Contains("(..., C)"));
  CHECK_THROWS_WITH(argmax(Tensor::zeros({2, 3, 0})), Catch::Contains("C >= 1") && Catch::Contains("f32[2,3,0]"));
  CHECK_THROWS_WITH(argmax(Tensor()), Catch::Contains("undefined"));
}
