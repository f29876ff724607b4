// roll_flip and spatial_difference on CUDA against the CPU reference, outputs and gradients, on
// every case of their table (tests/engine/shift_cases.h) and on a shape spanning many blocks.
#include <catch2/catch.hpp>

#include "engine/ops/shift.h"
#include "tests/cuda/cuda_compare.h"
#include "tests/engine/shift_cases.h"

using namespace strata;
using test::check_cuda_matches_cpu;

TEST_CASE("cuda roll_flip and spatial_difference match the CPU on every case of their table", "[cpu]") {
  check_cuda_matches_cpu(test::shift_cases());
}

TEST_CASE("cuda roll_flip and spatial_difference match the CPU on a shape spanning many blocks", "[cpu]") {
  Generator g(33);
  check_cuda_matches_cpu("roll_flip, many blocks", [](const auto& in) { return roll_flip(in[0], -11, 17, true); },
                         {test::random_leaf({2, 30, 33, 3}, g)});
  check_cuda_matches_cpu("spatial_difference, many blocks",
                         [](const auto& in) { return spatial_difference(in[0], -1, 1); },
                         {test::random_leaf({2, 30, 33, 3}, g)});
}
