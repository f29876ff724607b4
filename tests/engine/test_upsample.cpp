// upsample_bilinear: finite-difference gradients (f64) on every case of its table
// (tests/engine/upsample_cases.h), PyTorch parity (forward and backward, f32) for up- and down-sampling
// by integer and non-integer factors, both align_corners values, and input validation.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "engine/ops/upsample.h"
#include "tests/engine/upsample_cases.h"
#include "tests/support/gradcheck.h"
#include "tests/support/torch_reference.h"

using namespace strata;
using strata::test::check_torch_case;
using strata::test::TorchCase;

TEST_CASE("upsample_bilinear gradcheck: up, down, non-integer factors, size-1 axes", "[gradcheck]") {
  test::check_gradients(test::upsample_cases());
}

TEST_CASE("upsample_bilinear matches PyTorch interpolate for both align_corners values", "[torch]") {
  for (const char* base : {"up_7x5_to_65x97", "down_65x97_to_17x13", "up_33x17_to_513x257", "down_20x9_to_7x8",
                           "in_1x1_to_5x7", "in_1x6_to_4x3", "out_9x8_to_1x1", "out_9x8_to_1x4", "same_6x7"}) {
    for (int align : {0, 1}) {
      std::string name = std::string("upsample_") + base + "_align" + std::to_string(align);
      check_torch_case("spatial", name, {"x"}, [](const std::vector<Tensor>& in, const TorchCase& c) {
        return upsample_bilinear(in[0], static_cast<int64_t>(c.param("out_h")), static_cast<int64_t>(c.param("out_w")),
                                 c.param("align_corners") != 0);
      });
    }
  }
}

TEST_CASE("upsample_nearest gradcheck: twice, odd factors, down, size-1 axes", "[gradcheck]") {
  test::check_gradients(test::upsample_nearest_cases());
}

TEST_CASE("upsample_nearest matches PyTorch interpolate mode nearest", "[torch]") {
  for (const char* base : {"same_6x7", "twice_4x5_to_8x10", "up_3x4_to_5x7", "up_5x7_to_9x13", "up_7x5_to_65x97",
                           "down_20x9_to_7x8", "in_1x1_to_5x7", "out_9x8_to_1x4"}) {
    check_torch_case("spatial", std::string("upsample_nearest_") + base, {"x"},
                     [](const std::vector<Tensor>& in, const TorchCase& c) {
                       return upsample_nearest(in[0], static_cast<int64_t>(c.param("out_h")),
                                               static_cast<int64_t>(c.param("out_w")));
                     });
  }
}

TEST_CASE("upsample_nearest rejects bad input clearly", "[cpu]") {
  CHECK_THROWS_WITH(upsample_nearest(Tensor::zeros({4, 4, 3}), 8, 8),
                    Catch::Contains("upsample_nearest") && Catch::Contains("rank 4"));
  CHECK_THROWS_WITH(upsample_nearest(Tensor::zeros({1, 4, 4, 3}), 8, 0),
                    Catch::Contains("upsample_nearest") && Catch::Contains("at least 1x1"));
}

TEST_CASE("upsample_bilinear of a single pixel is a constant map", "[cpu]") {
  Tensor x = Tensor::from_vector<float>({1.5f, -2.0f}, {1, 1, 1, 2});
  for (bool align_corners : {false, true}) {
    std::vector<float> y = upsample_bilinear(x, 3, 5, align_corners).to_vector<float>();
    REQUIRE(y.size() == 30);
    for (size_t i = 0; i < y.size(); i += 2) {
      CHECK(y[i] == 1.5f);
      CHECK(y[i + 1] == -2.0f);
    }
  }
}

TEST_CASE("upsample_bilinear rejects bad input clearly", "[cpu]") {
  CHECK_THROWS_WITH(upsample_bilinear(Tensor::zeros({4, 4, 3}), 8, 8, false),
                    Catch::Contains("upsample_bilinear") && Catch::Contains("rank 4") && Catch::Contains("f32[4,4,3]"));
  CHECK_THROWS_WITH(upsample_bilinear(Tensor::zeros({1, 4, 4, 3}, DType::u8), 8, 8, false),
                    Catch::Contains("upsample_bilinear") && Catch::Contains("f32 or f64") && Catch::Contains("u8"));
  CHECK_THROWS_WITH(upsample_bilinear(Tensor::zeros({1, 4, 4, 3}), 0, 8, true),
                    Catch::Contains("upsample_bilinear") && Catch::Contains("at least 1x1") && Catch::Contains("0x8"));
  CHECK_THROWS_WITH(upsample_bilinear(Tensor::zeros({1, 4, 0, 3}), 8, 8, false),
                    Catch::Contains("upsample_bilinear") && Catch::Contains("at least one pixel"));
  CHECK_THROWS_WITH(upsample_bilinear(Tensor(), 8, 8, false),
                    Catch::Contains("upsample_bilinear") && Catch::Contains("undefined"));
}
