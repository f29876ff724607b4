// Autograd: graph shapes (diamond, reuse), accumulation, no-grad, freeing of saved tensors, and
// the errors a user gets for misuse; anomaly mode (--detect-anomaly).
#include <catch2/catch.hpp>
#include <cmath>

#include "engine/autograd.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/reduce.h"
#include "tests/support/compare.h"

using namespace strata;

namespace {

Tensor param(std::vector<double> values) {
  Tensor t = Tensor::from_vector(values, {static_cast<int64_t>(values.size())});
  t.set_requires_grad(true);
  return t;
}

}  // namespace

TEST_CASE("autograd diamond graph sums both paths", "[cpu]") {
  // y = sum(a*b + a*a) with a used on three edges; dy/da = b + 2a, dy/db = a.
  Tensor a = param({1.0, -2.0, 3.0});
  Tensor b = param({0.5, 4.0, -1.0});
  Tensor y = sum(add(mul(a, b), square(a)));
  y.backward();
  CHECK(a.grad().to_vector<double>() == std::vector<double>{2.5, 0.0, 5.0});
  CHECK(b.grad().to_vector<double>() == std::vector<double>{1.0, -2.0, 3.0});
}

TEST_CASE("autograd accumulates into a reused leaf across backward calls", "[cpu]") {
  Tensor w = param({1.0, 2.0});
  sum(scale(w, 3.0)).backward();
  sum(square(w)).backward();
  CHECK(w.grad().to_vector<double>() == std::vector<double>{3.0 + 2.0, 3.0 + 4.0});
  w.set_grad(Tensor());
  CHECK_FALSE(w.grad().defined());
}

TEST_CASE("autograd backward with an explicit gradient for a non-scalar root", "[cpu]") {
  Tensor x = param({1.0, 2.0, 3.0});
  Tensor y = square(x);
  y.backward(Tensor::from_vector<double>({1.0, 0.0, -1.0}, {3}));
  CHECK(x.grad().to_vector<double>() == std::vector<double>{2.0, 0.0, -6.0});
}

TEST_CASE("NoGradGuard records nothing and detach cuts history", "[cpu]") {
  Tensor x = param({1.0, 2.0});
  {
    autograd::NoGradGuard no_grad;
    Tensor y = square(x);
    CHECK_FALSE(y.requires_grad());
    CHECK(y.grad_fn() == nullptr);
  }
  CHECK(autograd::grad_enabled());
  Tensor z = square(x).detach();
  CHECK_FALSE(z.requires_grad());
  CHECK(z.is_leaf());
  Tensor plain = Tensor::ones({2}, DType::f64);
  CHECK(add(plain, plain).grad_fn() == nullptr);
}

TEST_CASE("autograd frees saved tensors as backward proceeds: a long chain's backward peak stays bounded", "[cpu]") {
  // 40 square ops on a 1 MiB tensor keep 40 saved inputs alive until backward. Backward must free
  // each node's saved tensor as soon as the node has run, so its peak stays a few tensors above the
  // memory held at its start, not 40 more.
  const int64_t n = 1 << 18;  // f32: 1 MiB
  const int64_t bytes = n * 4;
  Tensor x = Tensor::full({n}, 1.0);
  x.set_requires_grad(true);
  Tensor y = x;
  for (int i = 0; i < 40; ++i) y = scale(square(y), 0.5);
  Tensor loss = sum(y);
  y = Tensor();
  int64_t held = memory_stats().allocated_bytes;
  reset_peak_memory();
  loss.backward();
  int64_t peak = memory_stats().peak_allocated_bytes;
  CHECK(peak - held <= 4 * bytes);
  CHECK(memory_stats().allocated_bytes <= held - 35 * bytes);  // the saved inputs are gone
  CHECK(x.grad().defined());
}

TEST_CASE("autograd misuse: second backward, non-scalar root, no grad", "[cpu]") {
  Tensor x = param({1.0, 2.0});
  Tensor loss = sum(square(x));
  loss.backward();
  CHECK_THROWS_WITH(loss.backward(), Catch::Contains("already freed") && Catch::Contains("'sum'"));
  CHECK_THROWS_WITH(square(x).backward(), Catch::Contains("not a single value"));
  CHECK_THROWS_WITH(sum(Tensor::ones({2})).backward(), Catch::Contains("does not require grad"));
  Tensor y = square(x);
  CHECK_THROWS_WITH(y.backward(Tensor::ones({3}, DType::f64)), Catch::Contains("does not match root"));
}

TEST_CASE("a second backward through a shared trunk fails before touching any gradient", "[cpu]") {
  Tensor x = param({1.0, 2.0});
  Tensor trunk = square(x);
  Tensor a = sum(trunk), b = sum(scale(trunk, 2.0));
  a.backward();
  std::vector<double> after_a = x.grad().to_vector<double>();
  CHECK_THROWS_WITH(b.backward(), Catch::Contains("already freed"));
  CHECK(x.grad().to_vector<double>() == after_a);
}

TEST_CASE("a backward function returning a wrong shape is reported with the op name", "[cpu]") {
  Tensor x = param({1.0, 2.0});
  Tensor y;
  {
    autograd::NoGradGuard no_grad;
    y = square(x);
  }
  autograd::record("broken_op", y, {x}, [](const Tensor&, const std::vector<bool>&) {
    return std::vector<Tensor>{Tensor::zeros({3}, DType::f64)};
  });
  CHECK_THROWS_WITH(sum(y).backward(), Catch::Contains("broken_op") && Catch::Contains("gradient"));
}

TEST_CASE("anomaly mode names the op whose forward first produces NaN or Inf", "[cpu]") {
  Tensor x = param({-1.0, 4.0});
  // Outside anomaly mode nothing is checked: the NaN flows on.
  CHECK(std::isnan(sum(pow(x, 0.5)).to_vector<double>()[0]));
  autograd::AnomalyModeGuard anomaly;
  CHECK(autograd::anomaly_mode());
  CHECK_THROWS_AS(sum(pow(x, 0.5)), autograd::AnomalyError);
  CHECK_THROWS_WITH(sum(pow(x, 0.5)), Catch::Contains("the forward of 'pow' produced a NaN or an Inf in its output") &&
                                          Catch::Contains("its inputs were finite"));
  // The check also covers ops that record no graph (grad mode off).
  {
    autograd::NoGradGuard no_grad;
    CHECK_THROWS_WITH(square(Tensor::full({2}, 1e200, DType::f64)), Catch::Contains("the forward of 'square'"));
  }
  // A value that was non-finite before any checked op: the first op to read it says so.
  Tensor bad = param({1.0, INFINITY});
  CHECK_THROWS_WITH(scale(bad, 2.0), Catch::Contains("the forward of 'scale'") &&
                                         Catch::Contains("its input 0 (f64[2] on cpu) was already non-finite"));
  // Finite computations pass untouched.
  CHECK(sum(square(param({1.0, 2.0}))).to_vector<double>() == std::vector<double>{5.0});
}

TEST_CASE("anomaly mode names the op whose backward first produces NaN or Inf", "[cpu]") {
  Tensor x = param({0.0, 4.0});
  // d/dx sqrt(x) at 0 is Inf while the forward is finite.
  sum(pow(x, 0.5)).backward();
  CHECK(std::isinf(x.grad().to_vector<double>()[0]));
  x.set_grad(Tensor());
  autograd::AnomalyModeGuard anomaly;
  Tensor y = sum(scale(pow(x, 0.5), 3.0));
  CHECK_THROWS_WITH(y.backward(), Catch::Contains("the backward of 'pow' produced a NaN or an Inf in the gradient of "
                                                  "its input 0") &&
                                      Catch::Contains("the gradient of its output was finite"));
}

TEST_CASE("AnomalyModeGuard nests and restores", "[cpu]") {
  CHECK_FALSE(autograd::anomaly_mode());
  {
    autograd::AnomalyModeGuard on;
    {
      autograd::AnomalyModeGuard off(false);
      CHECK_FALSE(autograd::anomaly_mode());
      CHECK(std::isnan(sum(pow(param({-1.0}), 0.5)).to_vector<double>()[0]));
    }
    CHECK(autograd::anomaly_mode());
  }
  CHECK_FALSE(autograd::anomaly_mode());
}
