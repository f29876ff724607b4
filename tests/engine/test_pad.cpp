// pad_replicate: finite-difference gradients (f64) on every case of its table (tests/engine/pad_cases.h),
// PyTorch parity (forward and backward, f32) and input validation.
#include <catch2/catch.hpp>
#include <vector>

#include "engine/ops/pad.h"
#include "tests/engine/pad_cases.h"
#include "tests/support/gradcheck.h"
#include "tests/support/torch_reference.h"

using namespace strata;
using strata::test::check_torch_case;
using strata::test::TorchCase;

TEST_CASE("pad_replicate gradcheck: mixed pads, single pixel, one-sided", "[gradcheck]") {
  test::check_gradients(test::pad_replicate_cases());
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
