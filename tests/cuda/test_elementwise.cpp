// Elementwise ops on CUDA against the CPU reference: outputs and gradients.
#include <catch2/catch.hpp>

#include "engine/ops/device_dispatch.h"
#include "engine/ops/elementwise.h"
#include "tests/cuda/cuda_compare.h"
#include "tests/engine/elementwise_cases.h"

using namespace strata;
using test::check_cuda_matches_cpu;
using test::random_leaf;

TEST_CASE("cuda elementwise ops match the CPU on every case of their table", "[cpu]") {
  check_cuda_matches_cpu(test::elementwise_cases());
}

TEST_CASE("cuda elementwise ops keep large tensors exact across many blocks", "[cpu]") {
  Generator g(5);
  Tensor a = random_leaf({1, 1, 1, 300000}, g), b = random_leaf({1, 1, 1, 300000}, g);
  check_cuda_matches_cpu("add over 300k elements", [](const auto& in) { return add(in[0], in[1]); }, {a, b});
}

TEST_CASE("cuda kernels refuse the dtypes they do not compute, naming the op", "[cpu]") {
  // CUDA kernels compute f32 and f64; a 16-bit tensor reaching dispatch is refused by name, and the
  // ops' own checks refuse it before that.
  Tensor sixteen_bit = Tensor::ones({2, 3}, DType::f16, test::cuda_device());
  bool ran = false;
  CHECK_THROWS_WITH(
      dispatch("f16_op", sixteen_bit, [&](auto, const auto&) { ran = true; }),
      Catch::Contains("f16_op") && Catch::Contains("CUDA kernels compute in f32 or f64") && Catch::Contains("f16"));
  CHECK_FALSE(ran);
  CHECK_THROWS_WITH(relu(sixteen_bit), Catch::Contains("relu") && Catch::Contains("f32 or f64"));
  CHECK_THROWS_WITH(relu(Tensor::ones({2}, DType::bf16, test::cuda_device())),
                    Catch::Contains("relu") && Catch::Contains("f32 or f64"));
}
