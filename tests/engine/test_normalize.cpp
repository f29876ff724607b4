// normalize_image (engine/ops/normalize.h), the op that consumes the loader's uint8 batches:
// against a direct computation of torchvision's ToTensor + Normalize in f32, and its input checks.
#include <catch2/catch.hpp>

#include "engine/ops/normalize.h"

using namespace strata;

TEST_CASE("normalize_image maps u8 NHWC to (x/255 - mean)/std in f32", "[cpu]") {
  const int64_t n = 2, h = 67, w = 131;  // more pixels than one threading chunk
  std::vector<uint8_t> pixels(static_cast<size_t>(n * h * w * 3));
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<uint8_t>((i * 2654435761u) >> 13);
  Tensor x = Tensor::from_vector(pixels, {n, h, w, 3});
  for (bool imagenet : {true, false}) {
    std::array<float, 3> mean = imagenet ? kImageNetMean : std::array<float, 3>{0.5f, 0.25f, 0.0f};
    std::array<float, 3> std = imagenet ? kImageNetStd : std::array<float, 3>{0.5f, 2.0f, 1.0f};
    Tensor y = imagenet ? normalize_image(x) : normalize_image(x, mean, std);
    CHECK(y.dtype() == DType::f32);
    CHECK(y.shape() == Shape{n, h, w, 3});
    std::vector<float> got = y.to_vector<float>();
    for (size_t i = 0; i < pixels.size(); ++i) {
      size_t c = i % 3;
      float expected = (static_cast<float>(pixels[i]) / 255.0f - mean[c]) / std[c];
      REQUIRE(got[i] == expected);
    }
  }
  // Spot values: black and white under ImageNet statistics.
  Tensor corners = normalize_image(Tensor::from_vector(std::vector<uint8_t>{0, 0, 0, 255, 255, 255}, {1, 1, 2, 3}));
  std::vector<float> v = corners.to_vector<float>();
  CHECK(v[0] == Approx(-0.485 / 0.229));
  CHECK(v[5] == Approx((1 - 0.406) / 0.225));
}

TEST_CASE("normalize_image rejects inputs that are not u8 (N,H,W,3)", "[cpu]") {
  CHECK_THROWS_WITH(normalize_image(Tensor::zeros({1, 2, 2, 3})), Catch::Contains("normalize_image") &&
                                                                     Catch::Contains("dtype u8"));
  CHECK_THROWS_WITH(normalize_image(Tensor::zeros({2, 2, 3}, DType::u8)), Catch::Contains("rank 4"));
  CHECK_THROWS_WITH(normalize_image(Tensor::zeros({1, 2, 2, 4}, DType::u8)), Catch::Contains("(N,H,W,3)"));
  CHECK_THROWS_WITH(normalize_image(Tensor::zeros({1, 2, 2, 3}, DType::u8), kImageNetMean, {1.0f, 0.0f, 1.0f}),
                    Catch::Contains("nonzero"));
}
