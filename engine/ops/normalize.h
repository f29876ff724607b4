// normalize_image: the first op of a segmentation model. The data loader emits uint8 NHWC images
// (4x fewer bytes to move than f32); this op maps them to f32 as torchvision's
// ToTensor + Normalize(mean, std) do (SPEC-continual.md §4.4):
//   images_u8: (N,H,W,3) u8  ->  y: (N,H,W,3) f32,  y = (x / 255 - mean[c]) / std[c]
// Defaults are the ImageNet statistics every reference uses. Not differentiable: its input is data.
// Throws strata::Error for a non-u8 input, a shape that is not (N,H,W,3), or a zero std.
#pragma once

#include <array>

#include "engine/tensor.h"

namespace strata {

inline constexpr std::array<float, 3> kImageNetMean = {0.485f, 0.456f, 0.406f};
inline constexpr std::array<float, 3> kImageNetStd = {0.229f, 0.224f, 0.225f};

Tensor normalize_image(const Tensor& images_u8, const std::array<float, 3>& mean = kImageNetMean,
                       const std::array<float, 3>& std = kImageNetStd);

}  // namespace strata
