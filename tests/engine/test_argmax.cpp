// argmax over channels: PyTorch parity (including exact ties), NaN, no graph, bad input.
#include <catch2/catch.hpp>
#include <limits>

#include "engine/ops/argmax.h"
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
  const float nan = std::numeric_limits<float>::quiet_NaN();
  Tensor x = Tensor::from_vector<float>({1,   3,   3,  0,    //
                                         5,   5,   5,  5,    //
                                         -2,  -1,  -1, -3,   //
                                         0,   nan, 9,  nan,  //
                                         nan, 1,   2,  3},
                                        {5, 4});
  CHECK(argmax(x).to_vector<int64_t>() == std::vector<int64_t>{1, 0, 1, 1, 0});
  Tensor rank1 = argmax(Tensor::from_vector<double>({0.5, 2.0, -1.0}, {3}));
  CHECK(rank1.shape() == Shape{});
  CHECK(rank1.item() == 1.0);
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
