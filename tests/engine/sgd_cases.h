// The SGD settings every optimizer test runs (torch.optim.SGD's options: momentum, dampening,
// Nesterov, weight decay), shared by the CPU check against the documented algorithm
// (tests/engine/test_optim.cpp) and the CUDA-vs-CPU comparison (tests/cuda/test_normalize_sgd.cpp),
// and each step's gradients, the same on every device.
#pragma once

#include <vector>

#include "engine/optim/sgd.h"
#include "engine/tensor.h"

namespace strata::test {

struct SgdSetting {
  const char* name;
  double lr, momentum, weight_decay;
  bool nesterov;
  double dampening;

  std::vector<optim::ParamGroup> groups(const nn::NamedTensors& params) const {
    return {optim::ParamGroup{"all", params, lr, momentum, weight_decay, nesterov, dampening}};
  }
};

inline std::vector<SgdSetting> sgd_settings() {
  return {{"plain", 0.05, 0, 0, false, 0},
          {"weight decay", 0.05, 0, 1e-2, false, 0},
          {"momentum + dampening", 0.05, 0.5, 0, false, 0.25},
          {"Nesterov + weight decay (MiB)", 0.01, 0.9, 1e-4, true, 0}};
}

// The gradient of parameter number `which` (of `shape`, in `dtype`) at step t, on the CPU.
inline Tensor sgd_gradient(const Shape& shape, DType dtype, int t, int which) {
  Generator g(200 + static_cast<uint64_t>(t) * 16 + static_cast<uint64_t>(which));
  return Tensor::randn(shape, g, dtype);
}

}  // namespace strata::test
