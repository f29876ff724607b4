// The case tables of the elementwise ops and the reductions (tests/support/op_cases.h), shared by
// the CPU gradient checks (tests/engine/test_elementwise.cpp) and the CUDA-vs-CPU comparisons
// (tests/cuda/test_elementwise.cpp, tests/cuda/test_reduce.cpp). Shapes are odd on purpose (no
// dimension a power of two) so that index arithmetic on tiles and blocks is exercised.
#pragma once

#include <string>

#include "engine/ops/elementwise.h"
#include "engine/ops/reduce.h"
#include "tests/support/leaves.h"
#include "tests/support/op_cases.h"

namespace strata::test {

inline OpCases elementwise_cases() {
  const Shape a_shape = {2, 5, 3, 7};
  const std::vector<std::pair<std::string, Shape>> operands = {
      {"same shape", a_shape}, {"per-channel (C)", {7}}, {"per-sample (N,1,1,C)", {2, 1, 1, 7}}};
  OpCases cases;
  uint64_t seed = 1;
  for (const auto& [kind, b_shape] : operands) {
    auto inputs = [a_shape, b_shape](Generator& g) { return std::vector<Tensor>{leaf(a_shape, g), leaf(b_shape, g)}; };
    cases.push_back({"add, " + kind, inputs, [](const auto& in) { return add(in[0], in[1]); }, seed++});
    cases.push_back({"sub, " + kind, inputs, [](const auto& in) { return sub(in[0], in[1]); }, seed++});
    cases.push_back({"mul, " + kind, inputs, [](const auto& in) { return mul(in[0], in[1]); }, seed++});
  }
  auto signed_input = [a_shape](Generator& g) { return std::vector<Tensor>{leaf(a_shape, g)}; };
  auto away_from_zero = [a_shape](Generator& g) { return std::vector<Tensor>{leaf_away_from_zero(a_shape, g)}; };
  // Positive bases for fractional exponents (negative ones give NaN on every backend).
  auto positive = [a_shape](Generator& g) { return std::vector<Tensor>{positive_leaf(a_shape, g, 0.5, 2.0)}; };
  cases.push_back({"scale by -1.75", signed_input, [](const auto& in) { return scale(in[0], -1.75); }, seed++});
  cases.push_back({"square", signed_input, [](const auto& in) { return square(in[0]); }, seed++});
  cases.push_back({"pow 3 of signed values", signed_input, [](const auto& in) { return pow(in[0], 3.0); }, seed++});
  for (double p : {1.7, 0.5, -1.5, 0.0}) {
    cases.push_back({"pow " + std::to_string(p) + " of positive values", positive,
                     [p](const auto& in) { return pow(in[0], p); }, seed++});
  }
  cases.push_back({"relu", away_from_zero, [](const auto& in) { return relu(in[0]); }, seed++});
  cases.push_back({"leaky_relu 0.01", away_from_zero, [](const auto& in) { return leaky_relu(in[0], 0.01); }, seed++});
  cases.push_back({"leaky_relu 0.3", away_from_zero, [](const auto& in) { return leaky_relu(in[0], 0.3); }, seed++});
  // Both branches of the stable formula, and saturated values whose gradient is tiny.
  auto wide = [a_shape](Generator& g) { return std::vector<Tensor>{leaf(a_shape, g, 6.0)}; };
  cases.push_back({"sigmoid", signed_input, [](const auto& in) { return sigmoid(in[0]); }, seed++});
  cases.push_back({"sigmoid of values up to |x| ~ 20", wide, [](const auto& in) { return sigmoid(in[0]); }, seed++});
  // abs away from its kink; log of positive values; clamp with one bound at a
  // time, the inputs away from it (finite differences across a bound are not
  // the derivative).
  cases.push_back({"abs", away_from_zero, [](const auto& in) { return abs(in[0]); }, seed++});
  cases.push_back({"log of positive values", positive, [](const auto& in) { return log(in[0]); }, seed++});
  cases.push_back({"clamp above 0", away_from_zero, [](const auto& in) { return clamp(in[0], 0.0, 100.0); }, seed++});
  cases.push_back({"clamp below 0", away_from_zero, [](const auto& in) { return clamp(in[0], -100.0, 0.0); }, seed++});
  return cases;
}

inline OpCases reduction_cases() {
  const std::vector<std::pair<std::string, Shape>> shapes = {{"(2,7,5,13)", {2, 7, 5, 13}},
                                                             {"(1,1,1,1)", {1, 1, 1, 1}},
                                                             {"(3,2,1,70), C over two warps", {3, 2, 1, 70}},
                                                             {"(9,5), rank 2", {9, 5}},
                                                             {"(6), rank 1", {6}}};
  OpCases cases;
  uint64_t seed = 100;
  for (const auto& [name, shape] : shapes) {
    auto inputs = [shape](Generator& g) { return std::vector<Tensor>{leaf(shape, g)}; };
    cases.push_back({"sum " + name, inputs, [](const auto& in) { return sum(in[0]); }, seed++});
    cases.push_back({"mean " + name, inputs, [](const auto& in) { return mean(in[0]); }, seed++});
    cases.push_back({"sum_channels " + name, inputs, [](const auto& in) { return sum_channels(in[0]); }, seed++});
    cases.push_back({"mean_channels " + name, inputs, [](const auto& in) { return mean_channels(in[0]); }, seed++});
    if (shape.size() == 4) {
      cases.push_back({"sum_spatial " + name, inputs, [](const auto& in) { return sum_spatial(in[0]); }, seed++});
      cases.push_back({"mean_spatial " + name, inputs, [](const auto& in) { return mean_spatial(in[0]); }, seed++});
    }
  }
  return cases;
}

}  // namespace strata::test
