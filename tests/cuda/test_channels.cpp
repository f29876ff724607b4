// concat and slice along channels on CUDA against the CPU reference, outputs and gradients: the
// cases of tests/engine/channels_cases.h, plus odd shapes, many blocks and an empty slice.
#include <catch2/catch.hpp>

#include "engine/ops/channels.h"
#include "tests/cuda/cuda_compare.h"
#include "tests/engine/channels_cases.h"

using namespace strata;
using test::check_cuda_matches_cpu;
using test::random_leaf;

TEST_CASE("cuda concat and slice match the CPU on every case of their tables", "[cpu]") {
  check_cuda_matches_cpu(test::concat_cases());
  check_cuda_matches_cpu(test::slice_cases());
}

TEST_CASE("cuda concat matches the CPU: odd shapes and many blocks", "[cpu]") {
  Generator g(61);
  check_cuda_matches_cpu("odd shape, one input without gradient",
                         [](const auto& in) {
                           return concat({in[0], in[1]});
                         },
                         {random_leaf({2, 7, 5, 13}, g), Tensor::randn({2, 7, 5, 4}, g)});
  check_cuda_matches_cpu("many blocks", [](const auto& in) { return concat({in[0], in[1]}); },
                         {random_leaf({2, 33, 31, 21}, g), random_leaf({2, 33, 31, 16}, g)});
}

TEST_CASE("cuda slice matches the CPU: odd shapes, many blocks, empty", "[cpu]") {
  Generator g(62);
  struct Case {
    const char* name;
    Shape shape;
    int64_t begin, end;
  };
  const std::vector<Case> cases = {
      {"odd shape", {2, 7, 5, 13}, 1, 12}, {"many blocks", {2, 33, 31, 21}, 3, 19}, {"empty", {2, 3, 4, 5}, 2, 2}};
  for (const Case& c : cases) {
    check_cuda_matches_cpu(c.name, [c](const auto& in) { return slice(in[0], c.begin, c.end); },
                           {random_leaf(c.shape, g)});
  }
}
