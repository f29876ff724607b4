// The Adam settings every Adam test runs (torch.optim.Adam's options: betas, eps, L2 weight decay,
// AMSGrad), shared by the CPU check against the documented algorithm (tests/engine/test_optim.cpp)
// and the CUDA-vs-CPU comparison (tests/cuda/test_adam.cpp). Gradients come from test::sgd_gradient.
#pragma once

#include <vector>

#include "engine/optim/adam.h"

namespace strata::test {

struct AdamSetting {
  const char* name;
  double lr, beta1, beta2, eps, weight_decay;
  bool amsgrad;

  std::vector<optim::AdamGroup> groups(const nn::NamedTensors& params) const {
    return {optim::AdamGroup{"all", params, lr, beta1, beta2, eps, weight_decay, amsgrad}};
  }
};

inline std::vector<AdamSetting> adam_settings() {
  return {{"defaults", 1e-3, 0.9, 0.999, 1e-8, 0, false},
          {"weight decay, own betas and eps", 0.05, 0.5, 0.9, 1e-3, 0.1, false},
          {"AMSGrad + weight decay", 0.02, 0.9, 0.99, 1e-6, 0.01, true},
          {"large steps, betas 0.5 and 0.9", 0.25, 0.5, 0.9, 1e-8, 0, false}};
}

}  // namespace strata::test
