// Elementwise ops on CUDA against the CPU reference: outputs and gradients.
#include <catch2/catch.hpp>

#include "engine/ops/device_dispatch.h"
#include "engine/ops/elementwise.h"
#include "tests/cuda/cuda_compare.h"

using namespace strata;
using test::check_cuda_matches_cpu;
using test::random_leaf;

TEST_CASE("cuda add and mul match the CPU for same shape, per-channel and per-sample broadcast", "[cpu]") {
  Generator g(3);
  Tensor a = random_leaf({2, 7, 5, 13}, g);
  const std::vector<std::pair<const char*, Tensor>> operands = {
      {"same shape", random_leaf({2, 7, 5, 13}, g)}, {"(C)", random_leaf({13}, g)}, {"(N,1,1,C)", random_leaf({2, 1, 1, 13}, g)}};
  for (const auto& [name, b] : operands) {
    check_cuda_matches_cpu(std::string("add ") + name, [](const auto& in) { return add(in[0], in[1]); }, {a, b});
    check_cuda_matches_cpu(std::string("mul ") + name, [](const auto& in) { return mul(in[0], in[1]); }, {a, b});
    check_cuda_matches_cpu(std::string("sub ") + name, [](const auto& in) { return sub(in[0], in[1]); }, {a, b});
  }
}

TEST_CASE("cuda scale, relu and leaky_relu match the CPU", "[cpu]") {
  Generator g(4);
  Tensor x = random_leaf({3, 9, 11, 5}, g);
  check_cuda_matches_cpu("scale", [](const auto& in) { return scale(in[0], -0.75); }, {x});
  check_cuda_matches_cpu("relu", [](const auto& in) { return relu(in[0]); }, {x});
  check_cuda_matches_cpu("leaky_relu", [](const auto& in) { return leaky_relu(in[0], 0.01); }, {x});
}

TEST_CASE("cuda square and pow match the CPU", "[cpu]") {
  Generator g(6);
  Tensor x = random_leaf({2, 7, 5, 13}, g);
  check_cuda_matches_cpu("square", [](const auto& in) { return square(in[0]); }, {x});
  // Positive bases for fractional exponents (negative ones give NaN on both backends).
  Tensor positive = Tensor::uniform({2, 7, 5, 13}, 0.1, 3.0, g);
  positive.set_requires_grad(true);
  for (double p : {2.0, 3.0, 0.5, -1.5, 0.0}) {
    check_cuda_matches_cpu("pow " + std::to_string(p), [p](const auto& in) { return pow(in[0], p); }, {positive});
  }
  check_cuda_matches_cpu("pow 3 of signed values", [](const auto& in) { return pow(in[0], 3.0); }, {x});
}

TEST_CASE("cuda elementwise ops keep large tensors exact across many blocks", "[cpu]") {
  Generator g(5);
  Tensor a = random_leaf({1, 1, 1, 300000}, g), b = random_leaf({1, 1, 1, 300000}, g);
  check_cuda_matches_cpu("add over 300k elements", [](const auto& in) { return add(in[0], in[1]); }, {a, b});
}

TEST_CASE("cuda ops without a CUDA kernel yet refuse clearly, and so do dtypes CUDA kernels do not compute",
          "[cpu]") {
  Tensor x = Tensor::ones({2, 3}, DType::f32, test::cuda_device());
  // An op that passes dispatch() only its CPU kernel.
  CHECK_THROWS_WITH(dispatch("cpu_only_op", x, [](auto) {}),
                    Catch::Contains("cpu_only_op") && Catch::Contains("no CUDA implementation yet"));
  // CUDA kernels compute f32 and f64; a 16-bit tensor reaching dispatch is refused by name, and the
  // ops' own checks refuse it before that.
  Tensor half = Tensor::ones({2, 3}, DType::f16, test::cuda_device());
  bool ran = false;
  CHECK_THROWS_WITH(dispatch(
                        "f16_op", half, [&](auto) { ran = true; },
                        [&](auto, const kernels::cuda::Stream&) { ran = true; }),
                    Catch::Contains("f16_op") && Catch::Contains("CUDA kernels compute in f32 or f64") &&
                        Catch::Contains("f16"));
  CHECK_FALSE(ran);
  CHECK_THROWS_WITH(relu(half), Catch::Contains("relu") && Catch::Contains("f32 or f64"));
  CHECK_THROWS_WITH(relu(Tensor::ones({2}, DType::bf16, test::cuda_device())),
                    Catch::Contains("relu") && Catch::Contains("f32 or f64"));
}
