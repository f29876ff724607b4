// The weight regularisers' ops (engine/ops/regularizer.h): the penalty's f64 finite-difference
// gradient, importance_update against the formulas of kernels/common/regularizer.h written out
// here per element (every part: Fisher EMA, PI and RW path terms, remembering, the first iteration
// that only remembers), and bad input.
#include <catch2/catch.hpp>
#include <vector>

#include "engine/ops/regularizer.h"
#include "tests/support/compare.h"
#include "tests/support/gradcheck.h"
#include "tests/support/leaves.h"

using namespace strata;

TEST_CASE("weighted_squared_distance gradcheck in theta, anchor and weight held constant", "[gradcheck]") {
  Generator g(3);
  for (const Shape& shape : {Shape{7}, Shape{3, 4, 2, 5}}) {
    INFO(shape_str(shape));
    const Tensor theta = test::leaf(shape, g);
    const Tensor anchor = Tensor::randn(shape, g, DType::f64);
    const Tensor weight = test::positive_leaf(shape, g, 0.1, 2.0).detach();
    CHECK_GRADCHECK([&](const std::vector<Tensor>& in) { return weighted_squared_distance(in[0], anchor, weight); },
                    {theta});
  }
}

TEST_CASE("weighted_squared_distance is the weighted sum of squared distances, constant in anchor and weight",
          "[cpu]") {
  const Tensor theta = Tensor::from_vector<double>({1, 2, -1}, {3});
  const Tensor anchor = Tensor::from_vector<double>({0, 4, -1}, {3});
  const Tensor weight = Tensor::from_vector<double>({3, 0.5, 9}, {3});
  Tensor t = theta.clone();
  t.set_requires_grad(true);
  Tensor y = weighted_squared_distance(t, anchor, weight);
  CHECK(y.item() == 3.0 * 1 + 0.5 * 4 + 0);
  y.backward();
  CHECK(t.grad().to_vector<double>() == std::vector<double>{6, -2, 0});
}

TEST_CASE("importance_update runs the Fisher EMA and the PI and RW path terms as the formulas say", "[cpu]") {
  const std::vector<double> theta = {0.5, -1.0, 2.0}, grad = {1.0, -2.0, 0.5}, prev = {0.25, -0.5, 2.0};
  const std::vector<double> fisher0 = {1.0, 0.5, 2.0}, path0 = {0.1, 0.2, 0.3};
  auto t = [](const std::vector<double>& v) { return Tensor::from_vector(v, {3}); };
  const double alpha = 0.9;
  SECTION("Fisher EMA alone (EWC)") {
    Tensor fisher = t(fisher0);
    importance_update(fisher, Tensor(), Tensor(), t(theta), t(grad), {alpha, true, ImportancePath::none, false, false});
    const std::vector<double> f = fisher.to_vector<double>();
    for (int i = 0; i < 3; ++i) CHECK(f[i] == Approx(alpha * grad[i] * grad[i] + (1 - alpha) * fisher0[i]));
  }
  SECTION("PI: the path term, then theta remembered") {
    Tensor path = t(path0), previous = t(prev);
    importance_update(Tensor(), path, previous, t(theta), t(grad),
                      {alpha, false, ImportancePath::path_integral, true, true});
    const std::vector<double> p = path.to_vector<double>();
    for (int i = 0; i < 3; ++i) CHECK(p[i] == Approx(path0[i] + grad[i] * (prev[i] - theta[i])));
    CHECK(previous.to_vector<double>() == theta);
  }
  SECTION("the first iteration only remembers") {
    Tensor path = t(path0), previous = t(prev);
    importance_update(Tensor(), path, previous, t(theta), t(grad),
                      {alpha, false, ImportancePath::path_integral, false, true});
    CHECK(path.to_vector<double>() == path0);
    CHECK(previous.to_vector<double>() == theta);
  }
  SECTION("RW: the path term with the Fisher before its EMA, then the EMA") {
    Tensor fisher = t(fisher0), path = t(path0), previous = t(prev);
    importance_update(fisher, path, previous, t(theta), t(grad),
                      {alpha, true, ImportancePath::riemannian_walk, true, true});
    const std::vector<double> p = path.to_vector<double>(), f = fisher.to_vector<double>();
    for (int i = 0; i < 3; ++i) {
      const double moved = prev[i] - theta[i];
      CHECK(p[i] == Approx(path0[i] + grad[i] * moved / (0.5 * fisher0[i] * moved * moved + 1e-8)));
      CHECK(f[i] == Approx(alpha * grad[i] * grad[i] + (1 - alpha) * fisher0[i]));
    }
    CHECK(previous.to_vector<double>() == theta);
  }
  SECTION("an RW iteration between path updates leaves the path and the remembered point") {
    Tensor fisher = t(fisher0), path = t(path0), previous = t(prev);
    importance_update(fisher, path, previous, t(theta), t(grad),
                      {alpha, true, ImportancePath::riemannian_walk, false, false});
    CHECK(path.to_vector<double>() == path0);
    CHECK(previous.to_vector<double>() == prev);
  }
}

TEST_CASE("the regulariser ops refuse mismatched or missing tensors, naming them", "[cpu]") {
  const Tensor theta = Tensor::ones({3}), other = Tensor::ones({4});
  CHECK_THROWS_WITH(weighted_squared_distance(theta, other, theta),
                    Catch::Contains("weighted_squared_distance") && Catch::Contains("anchor"));
  CHECK_THROWS_WITH(weighted_squared_distance(theta, theta, Tensor::ones({3}, DType::f64)), Catch::Contains("weight"));
  CHECK_THROWS_WITH(
      importance_update(Tensor(), Tensor(), Tensor(), theta, theta, {0.9, true, ImportancePath::none, false, false}),
      Catch::Contains("importance_update: fisher is needed and missing"));
  CHECK_THROWS_WITH(importance_update(Tensor(), Tensor::ones({3}), Tensor(), theta, theta,
                                      {0.9, false, ImportancePath::path_integral, true, true}),
                    Catch::Contains("previous is needed and missing"));
  CHECK_THROWS_WITH(
      importance_update(Tensor(), Tensor(), Tensor(), theta, other, {0.9, false, ImportancePath::none, false, false}),
      Catch::Contains("grad"));
}
