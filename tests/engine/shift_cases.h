// The case tables of roll_flip and spatial_difference (tests/support/op_cases.h), shared by the CPU
// gradient checks (tests/engine/test_shift.cpp) and the CUDA-vs-CPU comparisons
// (tests/cuda/test_shift.cpp): shifts of both signs, larger than the size, zero, with and without the
// flip; DeepInversion's four difference offsets and wide ones; odd shapes.
#pragma once

#include <string>
#include <vector>

#include "engine/ops/shift.h"
#include "tests/support/leaves.h"
#include "tests/support/op_cases.h"

namespace strata::test {

inline OpCases shift_cases() {
  struct Roll {
    const char* name;
    Shape shape;
    int64_t shift_h, shift_w;
    bool flip;
  };
  const Roll rolls[] = {
      {"positive shifts", {2, 5, 7, 3}, 2, 3, false},
      {"negative shifts, flipped", {2, 5, 7, 3}, -1, -4, true},
      {"shifts beyond the size", {1, 4, 3, 2}, 9, -7, false},
      {"no shift, flipped", {1, 3, 6, 5}, 0, 0, true},
      {"one pixel", {2, 1, 1, 4}, 3, -2, true},
      {"odd shape", {2, 7, 5, 13}, -3, 2, true},
  };
  struct Difference {
    const char* name;
    Shape shape;
    int64_t dy, dx;
  };
  const Difference differences[] = {
      {"(0, 1)", {2, 5, 7, 3}, 0, 1},     {"(1, 0)", {2, 5, 7, 3}, 1, 0},
      {"(-1, 1)", {2, 5, 7, 3}, -1, 1},   {"(1, 1)", {2, 5, 7, 3}, 1, 1},
      {"(-2, -3)", {1, 4, 6, 2}, -2, -3}, {"(3, -4), wide", {1, 4, 5, 2}, 3, -4},
      {"(0, 0)", {1, 3, 3, 2}, 0, 0},     {"(1, 1), odd shape", {2, 7, 5, 13}, 1, 1},
  };
  OpCases cases;
  uint64_t seed = 2600;
  for (const Roll& r : rolls) {
    const Shape shape = r.shape;
    cases.push_back(
        {std::string("roll_flip ") + r.name, [shape](Generator& g) { return std::vector<Tensor>{leaf(shape, g)}; },
         [r](const std::vector<Tensor>& in) { return roll_flip(in[0], r.shift_h, r.shift_w, r.flip); }, seed++});
  }
  for (const Difference& d : differences) {
    const Shape shape = d.shape;
    cases.push_back({std::string("spatial_difference ") + d.name,
                     [shape](Generator& g) { return std::vector<Tensor>{leaf(shape, g)}; },
                     [d](const std::vector<Tensor>& in) { return spatial_difference(in[0], d.dy, d.dx); }, seed++});
  }
  return cases;
}

}  // namespace strata::test
