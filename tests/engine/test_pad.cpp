// pad_replicate: finite-difference gradients (f64), PyTorch parity (forward and backward, f32) and
// input validation.
#include <catch2/catch.hpp>
#include <vector>

#include "engine/ops/pad.h"
#include "tests/support/gradcheck.h"
#include "tests/support/torch_reference.h"

using namespace strata;
using strata::test::check_torch_case;
using strata::test::TorchCase;

namespace {

Tensor leaf(const Shape& shape, Generator& g) {
  Tensor t = Tensor::randn(shape, g, DType::f64);
  t.set_requires_grad(true);
  return t;
}

}  // namespace

TEST_CASE("pad_replicate gradcheck: mixed pads, single pixel, one-sided", "[gradcheck]") {
  Generator g(31);
  auto padded = [](int64_t top, int64_t bottom, int64_t left, int64_t right) {
    return [=](const std::vector<Tensor>& in) { return pad_replicate(in[0], top, bottom, left, right); };
  };
  CHECK_GRADCHECK(padded(2, 3, 1, 4), {leaf({2, 4, 5, 3}, g)});
  CHECK_GRADCHECK(padded(2, 1, 3, 2), {leaf({1, 1, 1, 2}, g)});
  CHECK_GRADCHECK(padded(0, 4, 3, 0), {leaf({1, 3, 2, 2}, g)});
  CHECK_GRADCHECK(padded(0, 0, 0, 0), {leaf({1, 3, 2, 2}, g)});
}

TEST_CASE("pad_replicate matches PyTorch F.pad(mode='replicate')", "[torch]") {
  for (const char* name :
       {"pad_replicate_mixed", "pad_replicate_wide", "pad_replicate_one_pixel", "pad_replicate_none"}) {
    check_torch_case("spatial", name, {"x"}, [](const std::vector<Tensor>& in, const TorchCase& c) {
      auto i = [&](const char* key) { return static_cast<int64_t>(c.param(key)); };
      return pad_replicate(in[0], i("top"), i("bottom"), i("left"), i("right"));
    });
  }
}

TEST_CASE("pad_replicate rejects bad input clearly", "[cpu]") {
  Tensor x = Tensor::zeros({1, 4, 4, 3});
  CHECK_THROWS_WITH(pad_replicate(x, 1, -1, 0, 0), Catch::Contains("pad_replicate") &&
                                                       Catch::Contains("pads must be >= 0") &&
                                                       Catch::Contains("bottom -1"));
  CHECK_THROWS_WITH(pad_replicate(Tensor::zeros({4, 4}), 1, 1, 1, 1),
                    Catch::Contains("pad_replicate") && Catch::Contains("rank 4") && Catch::Contains("f32[4,4]"));
  CHECK_THROWS_WITH(pad_replicate(Tensor::zeros({1, 4, 4, 3}, DType::i64), 1, 1, 1, 1),
                    Catch::Contains("pad_replicate") && Catch::Contains("f32 or f64") && Catch::Contains("i64"));
  CHECK_THROWS_WITH(pad_replicate(Tensor::zeros({1, 0, 4, 3}), 1, 1, 1, 1),
                    Catch::Contains("pad_replicate") && Catch::Contains("at least one pixel"));
}
