// The cases of normalize_image: u8 NHWC batches and channel statistics, checked against
// torchvision's ToTensor + Normalize computed directly in f32 on the CPU
// (tests/engine/test_normalize.cpp) and bit for bit against the CPU on CUDA
// (tests/cuda/test_normalize_sgd.cpp). Integer input, so a case is its tensors rather than an
// OpCase of differentiable inputs.
#pragma once

#include <array>
#include <string>
#include <vector>

#include "engine/ops/normalize.h"
#include "engine/tensor.h"

namespace strata::test {

struct NormalizeCase {
  std::string name;
  Tensor images;  // (N,H,W,3) u8
  std::array<float, 3> mean;
  std::array<float, 3> std;
};

inline std::vector<NormalizeCase> normalize_cases() {
  // Pixel values spread over [0, 255] by a multiplicative hash, with 0 and 255 at the start.
  auto images = [](int64_t n, int64_t h, int64_t w) {
    std::vector<uint8_t> pixels(static_cast<size_t>(n * h * w * 3));
    for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<uint8_t>((i * 2654435761u) >> 13);
    pixels[0] = 0;
    pixels[1] = 255;
    return Tensor::from_vector(pixels, {n, h, w, 3});
  };
  return {{"ImageNet statistics, more pixels than one threading chunk (2,67,131)", images(2, 67, 131), kImageNetMean,
           kImageNetStd},
          {"other statistics, odd shape (2,37,41)", images(2, 37, 41), {0.5f, 0.25f, 0.125f}, {0.5f, 2.0f, 0.3f}},
          {"one pixel (1,1,1)", images(1, 1, 1), {0.5f, 0.25f, 0.0f}, {0.5f, 2.0f, 1.0f}}};
}

}  // namespace strata::test
