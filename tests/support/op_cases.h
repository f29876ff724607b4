// One op's test cases, written once and run by every suite that checks the op (Caffe's typed tests
// over {CPU, CUDA} x dtype): the table lives next to the op's CPU tests (tests/engine/<op>_cases.h)
// and both
//   check_gradients(cases)         tests/support/gradcheck.h: finite differences in f64 on the CPU
//   check_cuda_matches_cpu(cases)  tests/cuda/cuda_compare.h: the CUDA backend against the CPU, in
//                                  f32 (kF32) and f64 (kF64), outputs and gradients
// run it. A case builds its inputs in f64 from its own seed (differentiable ones are leaves, from
// tests/support/leaves.h; integer inputs such as labels are passed through unchanged) and applies the
// op; suites convert the floating inputs to the dtype they check.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace strata::test {

struct OpCase {
  std::string name;                                             // "add, per-channel broadcast"
  std::function<std::vector<Tensor>(Generator& g)> inputs;      // f64 (leaves where differentiable)
  std::function<Tensor(const std::vector<Tensor>& in)> f;       // the op under test
  uint64_t seed = 1;                                            // of the inputs' generator
};

using OpCases = std::vector<OpCase>;

inline std::vector<Tensor> case_inputs(const OpCase& c) {
  Generator g(c.seed);
  return c.inputs(g);
}

}  // namespace strata::test
