// The case tables of concat and slice along the channel dimension (tests/support/op_cases.h), shared
// by the CPU gradient checks (tests/engine/test_channels.cpp) and the CUDA-vs-CPU comparisons
// (tests/cuda/test_channels.cpp, which adds shapes spanning many blocks).
#pragma once

#include <string>

#include "engine/ops/channels.h"
#include "tests/support/leaves.h"
#include "tests/support/op_cases.h"

namespace strata::test {

inline OpCases concat_cases() {
  auto leaves = [](std::vector<Shape> shapes) {
    return [shapes](Generator& g) {
      std::vector<Tensor> in;
      for (const Shape& s : shapes) in.push_back(leaf(s, g));
      return in;
    };
  };
  auto f = [](const std::vector<Tensor>& in) { return concat(in); };
  // An input that needs no gradient: concat must give gradients only to those that do.
  auto one_constant = [](Generator& g) {
    return std::vector<Tensor>{leaf({2, 3, 4, 2}, g), Tensor::randn({2, 3, 4, 3}, g, DType::f64)};
  };
  return {{"concat of three NHWC inputs", leaves({{2, 3, 4, 2}, {2, 3, 4, 1}, {2, 3, 4, 5}}), f, 41},
          {"concat of rank 2 inputs", leaves({{5, 3}, {5, 4}}), f, 42},
          {"concat of rank 1 inputs", leaves({{4}, {3}}), f, 43},
          {"concat of a single input", leaves({{3, 5}}), f, 44},
          {"concat with an input that needs no gradient", one_constant, f, 45}};
}

inline OpCases slice_cases() {
  const std::pair<int64_t, int64_t> ranges[] = {{2, 5}, {0, 3}, {4, 7}, {0, 7}, {6, 7}};
  OpCases cases;
  uint64_t seed = 51;
  for (auto [begin, end] : ranges) {
    cases.push_back({"slice (2,3,2,7) [" + std::to_string(begin) + ", " + std::to_string(end) + ")",
                     [](Generator& g) {
                       return std::vector<Tensor>{leaf({2, 3, 2, 7}, g)};
                     },
                     [b = begin, e = end](const auto& in) { return slice(in[0], b, e); }, seed++});
  }
  cases.push_back({"slice rank 2 (6,10) [3, 8)",
                   [](Generator& g) {
                     return std::vector<Tensor>{leaf({6, 10}, g)};
                   },
                   [](const auto& in) { return slice(in[0], 3, 8); }, seed++});
  return cases;
}

}  // namespace strata::test
