// The CUDA device the tests in this folder run on (the emulator in CI, a GPU when there is one),
// opened once per test program.
#pragma once

#include "engine/device.h"

namespace strata::test {

inline const Device& cuda_device() {
  static const Device device = open_cuda_device(0);
  return device;
}

}  // namespace strata::test
