// The case table of upsample_bilinear (tests/support/op_cases.h), shared by the CPU gradient checks
// (tests/engine/test_upsample.cpp) and the CUDA-vs-CPU comparisons (tests/cuda/test_upsample.cpp): up
// and down by integer and non-integer factors, 1x1 and 1xW inputs and outputs, the same size, an odd
// shape, each with both align_corners values.
#pragma once

#include <string>
#include <vector>

#include "engine/ops/upsample.h"
#include "tests/support/leaves.h"
#include "tests/support/op_cases.h"

namespace strata::test {

struct UpsampleSetting {
  const char* name;
  Shape shape;  // NHWC
  int64_t out_h, out_w;
};

// Each setting with align_corners false and true.
inline OpCases upsample_cases(const std::vector<UpsampleSetting>& settings, uint64_t first_seed) {
  OpCases cases;
  uint64_t seed = first_seed;
  for (const UpsampleSetting& s : settings) {
    for (bool align_corners : {false, true}) {
      const Shape shape = s.shape;
      const int64_t oh = s.out_h, ow = s.out_w;
      cases.push_back({std::string("upsample_bilinear ") + s.name + (align_corners ? ", align_corners" : ""),
                       [shape](Generator& g) { return std::vector<Tensor>{leaf(shape, g)}; },
                       [oh, ow, align_corners](const std::vector<Tensor>& in) {
                         return upsample_bilinear(in[0], oh, ow, align_corners);
                       },
                       seed++});
    }
  }
  return cases;
}

// The same settings through upsample_nearest (its source index: kernels/common/upsample.h).
inline OpCases upsample_nearest_cases(const std::vector<UpsampleSetting>& settings, uint64_t first_seed) {
  OpCases cases;
  uint64_t seed = first_seed;
  for (const UpsampleSetting& s : settings) {
    const Shape shape = s.shape;
    const int64_t oh = s.out_h, ow = s.out_w;
    cases.push_back({std::string("upsample_nearest ") + s.name,
                     [shape](Generator& g) { return std::vector<Tensor>{leaf(shape, g)}; },
                     [oh, ow](const std::vector<Tensor>& in) { return upsample_nearest(in[0], oh, ow); }, seed++});
  }
  return cases;
}

inline OpCases upsample_nearest_cases() {
  return upsample_nearest_cases({{"twice", {2, 3, 4, 2}, 6, 8},
                                 {"up 3x4 to 5x7 (BiSeNet's odd sizes)", {2, 3, 4, 3}, 5, 7},
                                 {"up 7x5 to 65x97", {1, 7, 5, 2}, 65, 97},
                                 {"down 20x9 to 7x8", {1, 20, 9, 3}, 7, 8},
                                 {"in 1x1 to 5x7", {2, 1, 1, 3}, 5, 7},
                                 {"out 9x8 to 1x4", {1, 9, 8, 4}, 1, 4},
                                 {"same size", {1, 4, 5, 2}, 4, 5}},
                                480);
}

inline OpCases upsample_cases() {
  return upsample_cases({{"up by non-integer factors", {2, 3, 4, 2}, 7, 9},
                         {"up 7x5 to 65x97", {2, 7, 5, 3}, 65, 97},
                         {"up by 1.6 and 1.83", {1, 5, 6, 3}, 8, 11},
                         {"down", {1, 9, 7, 2}, 4, 3},
                         {"down 20x9 to 7x8", {1, 20, 9, 5}, 7, 8},
                         {"a single input pixel: a constant map", {2, 1, 1, 2}, 3, 4},
                         {"in 1x1 to 5x7", {2, 1, 1, 3}, 5, 7},
                         {"one axis of size 1", {1, 1, 5, 2}, 3, 2},
                         {"in 1x6 to 4x3", {2, 1, 6, 3}, 4, 3},
                         {"a single output pixel", {1, 6, 5, 2}, 1, 1},
                         {"out 9x8 to 1x1", {2, 9, 8, 3}, 1, 1},
                         {"out 9x8 to 1x4", {1, 9, 8, 4}, 1, 4},
                         {"same size", {1, 4, 5, 2}, 4, 5},
                         {"same 6x7", {2, 6, 7, 3}, 6, 7},
                         {"odd shape 7x5 to 13x11", {2, 7, 5, 13}, 13, 11}},
                        400);
}

}  // namespace strata::test
