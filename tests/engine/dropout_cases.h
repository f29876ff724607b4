// The case table of dropout (tests/support/op_cases.h), shared by the CPU gradient check
// (tests/engine/test_dropout.cpp) and the CUDA-vs-CPU comparison (tests/cuda/test_dropout.cpp, which
// adds the bit-for-bit mask checks). Each evaluation draws from a fresh generator at a fixed seed
// and offset, so every finite-difference step and both devices see the same mask; offset 5 does not
// start a Philox block.
#pragma once

#include "engine/ops/dropout.h"
#include "tests/support/leaves.h"
#include "tests/support/op_cases.h"

namespace strata::test {

inline OpCases dropout_cases() {
  OpCases cases;
  uint64_t seed = 71;
  for (double p : {0.3, 0.7}) {
    auto f = [p](const std::vector<Tensor>& in) {
      Generator generator(99);
      generator.set_offset(5);
      return dropout(in[0], p, true, generator);
    };
    cases.push_back({cat("dropout p = ", p, " (2,5,3,4)"),
                     [](Generator& g) {
                       return std::vector<Tensor>{leaf({2, 5, 3, 4}, g)};
                     },
                     f, seed++});
    cases.push_back({cat("dropout p = ", p, " (2,7,5,13)"),
                     [](Generator& g) {
                       return std::vector<Tensor>{leaf({2, 7, 5, 13}, g)};
                     },
                     f, seed++});
  }
  return cases;
}

}  // namespace strata::test
