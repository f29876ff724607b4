// roll_flip and spatial_difference: finite-difference gradients (f64) on every case of their table
// (tests/engine/shift_cases.h), PyTorch parity (forward and backward, f32) and input validation.
#include <catch2/catch.hpp>
#include <vector>

#include "engine/ops/shift.h"
#include "tests/engine/shift_cases.h"
#include "tests/support/gradcheck.h"
#include "tests/support/torch_reference.h"

using namespace strata;
using strata::test::check_torch_case;
using strata::test::TorchCase;

TEST_CASE("roll_flip and spatial_difference gradcheck: every shift and offset of the table", "[gradcheck]") {
  test::check_gradients(test::shift_cases());
}

TEST_CASE("roll_flip matches torch.roll then torch.flip", "[torch]") {
  for (const char* name : {"roll_flip_positive", "roll_flip_negative_flipped", "roll_flip_beyond_size"}) {
    check_torch_case("spatial", name, {"x"}, [](const std::vector<Tensor>& in, const TorchCase& c) {
      auto i = [&](const char* key) { return static_cast<int64_t>(c.param(key)); };
      return roll_flip(in[0], i("shift_h"), i("shift_w"), i("flip") != 0);
    });
  }
}

TEST_CASE("spatial_difference matches DeepInversion's slice differences", "[torch]") {
  for (const char* name :
       {"spatial_difference_0_1", "spatial_difference_1_0", "spatial_difference_m1_1", "spatial_difference_1_1"}) {
    check_torch_case("spatial", name, {"x"}, [](const std::vector<Tensor>& in, const TorchCase& c) {
      auto i = [&](const char* key) { return static_cast<int64_t>(c.param(key)); };
      return spatial_difference(in[0], i("dy"), i("dx"));
    });
  }
}

TEST_CASE("roll_flip and spatial_difference reject bad input clearly", "[cpu]") {
  CHECK_THROWS_WITH(roll_flip(Tensor::zeros({4, 4}), 1, 1, false),
                    Catch::Contains("roll_flip") && Catch::Contains("rank 4"));
  CHECK_THROWS_WITH(roll_flip(Tensor::zeros({1, 0, 4, 3}), 1, 1, false),
                    Catch::Contains("roll_flip") && Catch::Contains("at least one pixel"));
  CHECK_THROWS_WITH(spatial_difference(Tensor::zeros({1, 4, 4, 3}, DType::i64), 0, 1),
                    Catch::Contains("spatial_difference") && Catch::Contains("f32 or f64"));
  CHECK_THROWS_WITH(spatial_difference(Tensor::zeros({1, 4, 4, 3}), 4, 0), Catch::Contains("spatial_difference") &&
                                                                               Catch::Contains("offset (4, 0)") &&
                                                                               Catch::Contains("|dy| < H"));
}
