// Elementwise ops and reductions: finite-difference gradients (f64) and PyTorch parity (f32).
#include <catch2/catch.hpp>

#include "engine/ops/elementwise.h"
#include "engine/ops/reduce.h"
#include "tests/support/gradcheck.h"
#include "tests/support/torch_reference.h"

using namespace strata;
using strata::test::check_torch_case;
using strata::test::gradcheck;

namespace {

Tensor leaf(const Shape& shape, Generator& g) {
  Tensor t = Tensor::randn(shape, g, DType::f64);
  t.set_requires_grad(true);
  return t;
}

// Values bounded away from zero, so relu-type kinks are never within a finite-difference step.
Tensor leaf_away_from_zero(const Shape& shape, Generator& g) {
  Tensor t = Tensor::randn(shape, g, DType::f64);
  std::vector<double> v = t.to_vector<double>();
  for (double& x : v) x = x >= 0 ? x + 0.1 : x - 0.1;
  Tensor out = Tensor::from_vector(v, shape);
  out.set_requires_grad(true);
  return out;
}

}  // namespace

TEST_CASE("add gradcheck: same shape, per-channel and per-sample broadcast", "[gradcheck]") {
  Generator g(1);
  Tensor a = leaf({2, 3, 4, 5}, g);
  auto f = [](const std::vector<Tensor>& in) { return add(in[0], in[1]); };
  CHECK_GRADCHECK(f, {a, leaf({2, 3, 4, 5}, g)});
  CHECK_GRADCHECK(f, {a, leaf({5}, g)});
  CHECK_GRADCHECK(f, {a, leaf({2, 1, 1, 5}, g)});
}

TEST_CASE("sub gradcheck: same shape and broadcast", "[gradcheck]") {
  Generator g(2);
  Tensor a = leaf({2, 3, 2, 4}, g);
  auto f = [](const std::vector<Tensor>& in) { return sub(in[0], in[1]); };
  CHECK_GRADCHECK(f, {a, leaf({2, 3, 2, 4}, g)});
  CHECK_GRADCHECK(f, {a, leaf({4}, g)});
}

TEST_CASE("mul gradcheck: same shape, per-channel and per-sample broadcast", "[gradcheck]") {
  Generator g(3);
  Tensor a = leaf({2, 3, 4, 5}, g);
  auto f = [](const std::vector<Tensor>& in) { return mul(in[0], in[1]); };
  CHECK_GRADCHECK(f, {a, leaf({2, 3, 4, 5}, g)});
  CHECK_GRADCHECK(f, {a, leaf({5}, g)});
  CHECK_GRADCHECK(f, {a, leaf({2, 1, 1, 5}, g)});
}

TEST_CASE("scale, square and pow gradcheck", "[gradcheck]") {
  Generator g(4);
  Tensor x = leaf({2, 3, 3, 4}, g);
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return scale(in[0], -1.75); }, {x});
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return square(in[0]); }, {x});
  Tensor positive = Tensor::uniform({2, 3, 3, 4}, 0.5, 2.0, g, DType::f64);
  positive.set_requires_grad(true);
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return pow(in[0], 1.7); }, {positive});
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return pow(in[0], 3.0); }, {x});
}

TEST_CASE("relu and leaky_relu gradcheck", "[gradcheck]") {
  Generator g(5);
  Tensor x = leaf_away_from_zero({2, 4, 3, 5}, g);
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return relu(in[0]); }, {x});
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return leaky_relu(in[0], 0.01); }, {x});
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return leaky_relu(in[0], 0.3); }, {x});
}

TEST_CASE("sum and mean gradcheck: all, spatial, channels", "[gradcheck]") {
  Generator g(6);
  Tensor x = leaf({2, 3, 4, 5}, g);
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return sum(in[0]); }, {x});
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return mean(in[0]); }, {x});
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return sum_spatial(in[0]); }, {x});
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return mean_spatial(in[0]); }, {x});
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return sum_channels(in[0]); }, {x});
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return mean_channels(in[0]); }, {x});
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

TEST_CASE("scale, square, pow, relu and leaky_relu match PyTorch", "[torch]") {
  check_torch_case("elementwise", "scale", {"x"}, [](const auto& in, const auto& c) { return scale(in[0], c.param("s")); });
  check_torch_case("elementwise", "square", {"x"}, [](const auto& in, const auto&) { return square(in[0]); });
  check_torch_case("elementwise", "pow", {"x"}, [](const auto& in, const auto& c) { return pow(in[0], c.param("p")); });
  check_torch_case("elementwise", "relu", {"x"}, [](const auto& in, const auto&) { return relu(in[0]); });
  check_torch_case("elementwise", "leaky_relu", {"x"},
                   [](const auto& in, const auto& c) { return leaky_relu(in[0], c.param("slope")); });
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
}
