// concat and slice along channels on CUDA against the CPU reference, outputs and gradients
// (the cases of tools/torchref/spatial.py plus odd shapes and an empty slice).
#include <catch2/catch.hpp>

#include "engine/ops/channels.h"
#include "tests/cuda/cuda_compare.h"

using namespace strata;
using test::check_cuda_matches_cpu;
using test::random_leaf;

TEST_CASE("cuda concat matches the CPU: NHWC, rank 2, inputs with and without gradients", "[cpu]") {
  Generator g(61);
  check_cuda_matches_cpu("three NHWC inputs", [](const auto& in) { return concat({in[0], in[1], in[2]}); },
                         {random_leaf({2, 4, 5, 3}, g), random_leaf({2, 4, 5, 1}, g), random_leaf({2, 4, 5, 6}, g)});
  check_cuda_matches_cpu("rank 2", [](const auto& in) { return concat({in[0], in[1]}); },
                         {random_leaf({7, 3}, g), random_leaf({7, 5}, g)});
  check_cuda_matches_cpu("odd shape, one input without gradient", [](const auto& in) { return concat({in[0], in[1]}); },
                         {random_leaf({2, 7, 5, 13}, g), Tensor::randn({2, 7, 5, 4}, g)});
  check_cuda_matches_cpu("single input", [](const auto& in) { return concat({in[0]}); }, {random_leaf({3, 5}, g)});
  check_cuda_matches_cpu("many blocks", [](const auto& in) { return concat({in[0], in[1]}); },
                         {random_leaf({2, 33, 31, 21}, g), random_leaf({2, 33, 31, 16}, g)});
}

TEST_CASE("cuda slice matches the CPU: middle, all, last channel, rank 2, empty", "[cpu]") {
  Generator g(62);
  struct Case {
    const char* name;
    Shape shape;
    int64_t begin, end;
  };
  const std::vector<Case> cases = {
      {"middle", {2, 4, 5, 9}, 2, 7}, {"all", {2, 4, 5, 9}, 0, 9},      {"last channel", {1, 3, 7, 6}, 5, 6},
      {"rank 2", {6, 10}, 3, 8},      {"odd shape", {2, 7, 5, 13}, 1, 12}, {"empty", {2, 3, 4, 5}, 2, 2},
  };
  for (const Case& c : cases) {
    check_cuda_matches_cpu(c.name, [c](const auto& in) { return slice(in[0], c.begin, c.end); },
                           {random_leaf(c.shape, g)});
  }
}
