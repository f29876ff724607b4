// Elementwise ops and reductions: finite-difference gradients (f64) and PyTorch parity (f32).
#include <catch2/catch.hpp>

#include "engine/ops/elementwise.h"
#include "engine/ops/reduce.h"
#include "tests/engine/elementwise_cases.h"
#include "tests/support/gradcheck.h"
#include "tests/support/torch_reference.h"

using namespace strata;
using strata::test::check_torch_case;

TEST_CASE("elementwise ops: finite-difference gradients of every case", "[gradcheck]") {
  test::check_gradients(test::elementwise_cases());
}

TEST_CASE("reductions: finite-difference gradients of every case", "[gradcheck]") {
  test::check_gradients(test::reduction_cases());
}

TEST_CASE("add, sub and mul match PyTorch", "[torch]") {
  for (const char* name : {"add", "sub", "mul"}) {
    for (const char* kind : {"_same", "_channel", "_spatial"}) {
      std::string op = name;
      check_torch_case("elementwise", op + kind, {"a", "b"}, [op](const std::vector<Tensor>& in, const auto&) {
        if (op == "add") return add(in[0], in[1]);
        if (op == "sub") return sub(in[0], in[1]);
        return mul(in[0], in[1]);
      });
    }
  }
}

TEST_CASE("scale, square, pow, relu, leaky_relu and sigmoid match PyTorch", "[torch]") {
  check_torch_case("elementwise", "scale", {"x"}, [](const auto& in, const auto& c) { return scale(in[0], c.param("s")); });
  check_torch_case("elementwise", "square", {"x"}, [](const auto& in, const auto&) { return square(in[0]); });
  check_torch_case("elementwise", "pow", {"x"}, [](const auto& in, const auto& c) { return pow(in[0], c.param("p")); });
  check_torch_case("elementwise", "relu", {"x"}, [](const auto& in, const auto&) { return relu(in[0]); });
  check_torch_case("elementwise", "leaky_relu", {"x"},
                   [](const auto& in, const auto& c) { return leaky_relu(in[0], c.param("slope")); });
  check_torch_case("elementwise", "sigmoid", {"x"},
                   [](const auto& in, const auto&) { return sigmoid(scale(in[0], 4)); });
}

TEST_CASE("abs, log and clamp match PyTorch", "[torch]") {
  check_torch_case("elementwise", "abs", {"x"}, [](const auto& in, const auto&) { return abs(in[0]); });
  check_torch_case("elementwise", "log", {"x"}, [](const auto& in, const auto&) { return log(in[0]); });
  check_torch_case("elementwise", "clamp", {"x"},
                   [](const auto& in, const auto& c) { return clamp(in[0], c.param("lo"), c.param("hi")); });
}

TEST_CASE("sum and mean match PyTorch", "[torch]") {
  check_torch_case("elementwise", "sum", {"x"}, [](const auto& in, const auto&) { return sum(in[0]); });
  check_torch_case("elementwise", "mean", {"x"}, [](const auto& in, const auto&) { return mean(in[0]); });
  check_torch_case("elementwise", "sum_spatial", {"x"}, [](const auto& in, const auto&) { return sum_spatial(in[0]); });
  check_torch_case("elementwise", "mean_spatial", {"x"}, [](const auto& in, const auto&) { return mean_spatial(in[0]); });
  check_torch_case("elementwise", "sum_channels", {"x"}, [](const auto& in, const auto&) { return sum_channels(in[0]); });
  check_torch_case("elementwise", "mean_channels", {"x"},
                   [](const auto& in, const auto&) { return mean_channels(in[0]); });
}

TEST_CASE("elementwise ops reject bad input clearly", "[cpu]") {
  Tensor a = Tensor::zeros({2, 3, 4, 5});
  CHECK_THROWS_WITH(add(a, Tensor::zeros({3})), Catch::Contains("add") && Catch::Contains("(C) or (N,1,1,C)"));
  CHECK_THROWS_WITH(add(a, Tensor::zeros({2, 3, 4, 5}, DType::f64)), Catch::Contains("dtypes must match"));
  CHECK_THROWS_WITH(mul(a, Tensor::zeros({2, 3, 4, 5}, DType::i32)), Catch::Contains("f32 or f64"));
  CHECK_THROWS_WITH(leaky_relu(a, -0.1), Catch::Contains("negative_slope"));
  CHECK_THROWS_WITH(sum_spatial(Tensor::zeros({2, 3})), Catch::Contains("rank 4"));
  CHECK_THROWS_WITH(add(a, Tensor()), Catch::Contains("undefined"));
  CHECK_THROWS_WITH(clamp(a, 1, -1), Catch::Contains("clamp") && Catch::Contains("lo <= hi"));
}
