// The case tables of softmax, log_softmax and logsumexp (tests/support/op_cases.h), shared by the CPU
// gradient checks (tests/engine/test_softmax.cpp) and the CUDA-vs-CPU comparisons
// (tests/cuda/test_softmax.cpp, which adds the shapes of each CUDA kernel path). Logits are scaled
// by 2 so that the softmax is far from uniform.
#pragma once

#include <string>
#include <utility>

#include "engine/ops/softmax.h"
#include "tests/support/leaves.h"
#include "tests/support/op_cases.h"

namespace strata::test {

inline OpCases softmax_cases() {
  const std::vector<std::pair<std::string, Shape>> shapes = {
      {"NHWC (2,3,4,5)", {2, 3, 4, 5}}, {"(N,C) (7,3)", {7, 3}}, {"one channel (4,1)", {4, 1}}};
  OpCases cases;
  uint64_t seed = 101;
  for (const auto& [name, shape] : shapes) {
    auto inputs = [shape](Generator& g) { return std::vector<Tensor>{leaf(shape, g, 2.0)}; };
    cases.push_back({"softmax " + name, inputs, [](const auto& in) { return softmax(in[0]); }, seed++});
    cases.push_back({"log_softmax " + name, inputs, [](const auto& in) { return log_softmax(in[0]); }, seed++});
  }
  return cases;
}

inline OpCases logsumexp_cases() {
  OpCases cases;
  uint64_t seed = 121;
  auto nhwc = [](Generator& g) { return std::vector<Tensor>{leaf({2, 3, 2, 7}, g, 2.0)}; };
  const std::pair<int64_t, int64_t> ranges[] = {{0, 7}, {0, 3}, {2, 5}, {4, 7}, {6, 7}};
  for (auto [begin, end] : ranges) {
    cases.push_back({"logsumexp (2,3,2,7) over [" + std::to_string(begin) + ", " + std::to_string(end) + ")", nhwc,
                     [b = begin, e = end](const auto& in) { return logsumexp(in[0], b, e); }, seed++});
  }
  cases.push_back({"logsumexp (5,6) over [1, 4)",
                   [](Generator& g) {
                     return std::vector<Tensor>{leaf({5, 6}, g)};
                   },
                   [](const auto& in) { return logsumexp(in[0], 1, 4); }, seed++});
  return cases;
}

}  // namespace strata::test
