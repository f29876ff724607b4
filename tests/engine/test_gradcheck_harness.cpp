// The gradient checker and the PyTorch comparison must be able to fail: a wrong backward and a
// wrong forward are caught.
#include <catch2/catch.hpp>

#include "engine/autograd.h"
#include "engine/ops/elementwise.h"
#include "tests/support/compare.h"
#include "tests/support/gradcheck.h"

using namespace strata;

namespace {

// y = x * x with a deliberately wrong backward (x instead of 2x).
Tensor square_with_wrong_backward(const Tensor& x) {
  Tensor y;
  {
    autograd::NoGradGuard no_grad;
    y = square(x);
  }
  autograd::record("wrong_square", y, {x}, [x_saved = autograd::save(x)](const Tensor& g, const std::vector<bool>&) {
    return std::vector<Tensor>{mul(g, x_saved)};
  });
  return y;
}

}  // namespace

TEST_CASE("gradcheck detects a wrong backward", "[cpu]") {
  Generator g(11);
  Tensor x = Tensor::randn({3, 4}, g, DType::f64);
  x.set_requires_grad(true);
  auto wrong = test::gradcheck([](const std::vector<Tensor>& in) { return square_with_wrong_backward(in[0]); }, {x});
  CHECK_FALSE(wrong.ok);
  CHECK_THAT(wrong.message, Catch::Contains("gradients wrong"));
  auto right = test::gradcheck([](const std::vector<Tensor>& in) { return square(in[0]); }, {x});
  CHECK(right.ok);
}

TEST_CASE("gradcheck refuses inputs sitting on kinks", "[cpu]") {
  // relu at exactly 0 everywhere: every element is a kink, so nothing can be checked.
  Tensor x = Tensor::zeros({4, 4}, DType::f64);
  x.set_requires_grad(true);
  auto result = test::gradcheck([](const std::vector<Tensor>& in) { return relu(in[0]); }, {x});
  CHECK_FALSE(result.ok);
  CHECK_THAT(result.message, Catch::Contains("kinks"));
}

TEST_CASE("compare reports the worst element and fails outside tolerance", "[cpu]") {
  Tensor expected = Tensor::from_vector<float>({1.0f, 2.0f, 3.0f, 4.0f}, {1, 1, 2, 2});
  Tensor close = Tensor::from_vector<float>({1.0f, 2.0f, 3.0f, 4.00001f}, {1, 1, 2, 2});
  Tensor far = Tensor::from_vector<float>({1.0f, 2.0f, 3.01f, 4.0f}, {1, 1, 2, 2});
  CHECK(test::compare(close, expected).ok);
  auto bad = test::compare(far, expected);
  CHECK_FALSE(bad.ok);
  CHECK_THAT(bad.message, Catch::Contains("(0,0,1,0)"));
  CHECK_FALSE(test::compare(Tensor::zeros({2, 2}), expected).ok);
}
