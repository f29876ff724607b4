// Finite-difference gradient check in f64 (Caffe's GradientChecker idea, with automatic kink
// detection instead of per-op kink ranges).
//
// For f: inputs -> output, the checked scalar is L = sum_i f(inputs)_i * r_i with r ~ N(0, 1)
// drawn from `seed` (random weights make every output element matter). For every input that
// requires grad, the analytic dL/dx from backward() is compared with central differences
// (L(x + h) - L(x - h)) / 2h, h = `step` (kGradcheckStep; kGradcheckNetworkStep for a whole network), with the
// kGradcheck tolerance relative to the largest numeric derivative of that input.
//
// An element where the forward and backward one-sided differences disagree sits within h of a
// point where f is not differentiable (relu at 0, a max-pool tie); it is skipped and counted. More
// than 5% skipped elements fail the check: the test inputs should stay away from kinks.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "engine/tensor.h"
#include "tests/support/op_cases.h"
#include "tests/support/tolerances.h"

namespace strata::test {

struct GradcheckResult {
  bool ok = false;
  int64_t checked = 0;
  int64_t skipped_kinks = 0;
  std::string message;
};

using GradcheckFn = std::function<Tensor(const std::vector<Tensor>&)>;

// Inputs that should be checked must be f64 leaves with requires_grad set; others (labels,
// running statistics) are passed through unchanged.
GradcheckResult gradcheck(const GradcheckFn& f, const std::vector<Tensor>& inputs, uint64_t seed = 1234,
                          double step = kGradcheckStep);

}  // namespace strata::test

#define CHECK_GRADCHECK(...)                                             \
  do {                                                                   \
    auto strata_gc_ = ::strata::test::gradcheck(__VA_ARGS__);            \
    INFO(strata_gc_.message);                                            \
    CHECK(strata_gc_.ok);                                                \
  } while (false)

namespace strata::test {

// CHECK_GRADCHECK for every case of an op's table (tests/support/op_cases.h), naming the case.
inline void check_gradients(const OpCases& cases) {
  for (const OpCase& c : cases) {
    INFO("case: " << c.name);
    CHECK_GRADCHECK(c.f, case_inputs(c));
  }
}

}  // namespace strata::test
