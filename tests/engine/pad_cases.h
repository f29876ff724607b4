// The case table of pad_replicate (tests/support/op_cases.h), shared by the CPU gradient checks
// (tests/engine/test_pad.cpp) and the CUDA-vs-CPU comparisons (tests/cuda/test_pooling.cpp): mixed
// and one-sided pads, pads wider than the input, a single pixel, no padding, an odd shape.
#pragma once

#include <string>
#include <vector>

#include "engine/ops/pad.h"
#include "tests/support/leaves.h"
#include "tests/support/op_cases.h"

namespace strata::test {

inline OpCases pad_replicate_cases() {
  struct Setting {
    const char* name;
    Shape shape;
    int64_t top, bottom, left, right;
  };
  const Setting settings[] = {
      {"mixed", {2, 4, 5, 3}, 2, 3, 1, 4},     {"mixed, larger", {2, 5, 7, 3}, 1, 4, 2, 3},
      {"one pixel", {1, 1, 1, 2}, 2, 1, 3, 2}, {"one pixel, four channels", {1, 1, 1, 4}, 3, 2, 2, 1},
      {"one-sided", {1, 3, 2, 2}, 0, 4, 3, 0}, {"wide", {1, 3, 2, 2}, 0, 6, 5, 0},
      {"none", {1, 3, 2, 2}, 0, 0, 0, 0},      {"odd shape", {2, 7, 5, 13}, 2, 1, 3, 4},
  };
  OpCases cases;
  uint64_t seed = 360;
  for (const Setting& s : settings) {
    const Shape shape = s.shape;
    cases.push_back(
        {std::string("pad_replicate ") + s.name, [shape](Generator& g) { return std::vector<Tensor>{leaf(shape, g)}; },
         [s](const std::vector<Tensor>& in) { return pad_replicate(in[0], s.top, s.bottom, s.left, s.right); },
         seed++});
  }
  return cases;
}

}  // namespace strata::test
