// normalize_image (engine/ops/normalize.h), the op that consumes the loader's uint8 batches: on the
// cases of tests/engine/normalize_cases.h against a direct computation of torchvision's ToTensor +
// Normalize in f32, against torchvision itself (tools/torchref/normalization.py), and its input
// checks. No gradient: the input is integer data.
#include <catch2/catch.hpp>

#include <array>
#include <string>

#include "engine/ops/normalize.h"
#include "tests/engine/normalize_cases.h"
#include "tests/support/tolerances.h"
#include "tests/support/torch_reference.h"

using namespace strata;
using strata::test::approx;
using strata::test::kF32Scalar;

TEST_CASE("normalize_image maps u8 NHWC to (x/255 - mean)/std in f32", "[cpu]") {
  for (const test::NormalizeCase& c : test::normalize_cases()) {
    INFO(c.name);
    Tensor y = normalize_image(c.images, c.mean, c.std);
    CHECK(y.dtype() == DType::f32);
    CHECK(y.shape() == c.images.shape());
    std::vector<uint8_t> pixels = c.images.to_vector<uint8_t>();
    std::vector<float> got = y.to_vector<float>();
    for (size_t i = 0; i < pixels.size(); ++i) {
      size_t channel = i % 3;
      float expected = (static_cast<float>(pixels[i]) / 255.0f - c.mean[channel]) / c.std[channel];
      REQUIRE(got[i] == expected);
    }
  }
  // The defaults are ImageNet's statistics. Spot values: black and white.
  Tensor corners = normalize_image(Tensor::from_vector(std::vector<uint8_t>{0, 0, 0, 255, 255, 255}, {1, 1, 2, 3}));
  std::vector<float> v = corners.to_vector<float>();
  CHECK(v[0] == approx(-0.485 / 0.229, kF32Scalar));
  CHECK(v[5] == approx((1 - 0.406) / 0.225, kF32Scalar));
}

namespace {

// "0.485,0.456,0.406" -> {0.485f, 0.456f, 0.406f}: a case's per-channel statistics.
std::array<float, 3> three_floats(const std::string& text) {
  std::array<float, 3> out{};
  size_t begin = 0;
  for (float& v : out) {
    const size_t end = text.find(',', begin);
    v = std::stof(text.substr(begin, end - begin));
    begin = end + 1;
  }
  return out;
}

}  // namespace

TEST_CASE("normalize_image matches torchvision's ToTensor and Normalize", "[torch]") {
  for (const char* name : {"normalize_image_imagenet", "normalize_image_other"}) {
    INFO(name);
    test::check_torch_case("normalization", name, {"images"}, [](const auto& in, const test::TorchCase& c) {
      return normalize_image(in[0], three_floats(c.text("mean")), three_floats(c.text("std")));
    });
  }
}

TEST_CASE("normalize_image rejects inputs that are not u8 (N,H,W,3)", "[cpu]") {
  CHECK_THROWS_WITH(normalize_image(Tensor::zeros({1, 2, 2, 3})), Catch::Contains("normalize_image") &&
                                                                     Catch::Contains("dtype u8"));
  CHECK_THROWS_WITH(normalize_image(Tensor::zeros({2, 2, 3}, DType::u8)), Catch::Contains("rank 4"));
  CHECK_THROWS_WITH(normalize_image(Tensor::zeros({1, 2, 2, 4}, DType::u8)), Catch::Contains("(N,H,W,3)"));
  CHECK_THROWS_WITH(normalize_image(Tensor::zeros({1, 2, 2, 3}, DType::u8), kImageNetMean, {1.0f, 0.0f, 1.0f}),
                    Catch::Contains("nonzero"));
}
