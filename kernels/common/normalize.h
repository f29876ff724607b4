// Image normalisation of one uint8 channel value, shared by the CPU and CUDA kernels: torchvision's
// ToTensor then Normalize(mean, std), both in f32 and in that order,
//   y = (x / 255 - mean) / std
// (SPEC-continual.md §4.4). The same f32 operations give the same bits on every backend.
#pragma once

#include <cstdint>

#include "kernels/common/host_device.h"

namespace strata::kernels::common {

STRATA_HOST_DEVICE inline float normalize_value(uint8_t x, float mean, float std) {
  return (static_cast<float>(x) / 255.0f - mean) / std;
}

}  // namespace strata::kernels::common
