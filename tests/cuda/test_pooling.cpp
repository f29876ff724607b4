// max_pool2d, avg_pool2d, the MiB head's evaluation pooling and pad_replicate on CUDA against the CPU
// reference, outputs and gradients, on every case of their tables (tests/engine/pooling_cases.h,
// pad_cases.h), on shapes spanning many blocks, on ties, NaN and -inf, and bit for bit where both
// backends sum alike.
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>

#include "engine/ops/pad.h"
#include "engine/ops/pooling.h"
#include "tests/cuda/cuda_compare.h"
#include "tests/engine/pad_cases.h"
#include "tests/engine/pooling_cases.h"

using namespace strata;
using test::check_cuda_matches_cpu;
using test::pool;
using test::random_leaf;

TEST_CASE("cuda max_pool2d matches the CPU on every case of its table", "[cpu]") {
  check_cuda_matches_cpu(test::max_pool2d_cases());
}

TEST_CASE("cuda avg_pool2d matches the CPU on every case of its table", "[cpu]") {
  check_cuda_matches_cpu(test::avg_pool2d_cases());
}

TEST_CASE("cuda adaptive_avg_pool2d matches the CPU on every case of its table", "[cpu]") {
  check_cuda_matches_cpu(test::adaptive_avg_pool2d_cases());
}

TEST_CASE("cuda avg_pool2d and pad_replicate match the CPU on the MiB head's evaluation pooling", "[cpu]") {
  check_cuda_matches_cpu(test::mib_eval_pooling_cases());
}

TEST_CASE("cuda pad_replicate matches the CPU on every case of its table", "[cpu]") {
  check_cuda_matches_cpu(test::pad_replicate_cases());
}

TEST_CASE("cuda pooling and padding match the CPU on shapes spanning many blocks", "[cpu]") {
  Generator g(31);
  check_cuda_matches_cpu("max_pool2d, many blocks",
                         [](const auto& in) { return max_pool2d(in[0], pool(3, 3, 2, 2, 1, 1)); },
                         {random_leaf({2, 48, 40, 37}, g)});
  check_cuda_matches_cpu("avg_pool2d, many blocks",
                         [](const auto& in) { return avg_pool2d(in[0], pool(3, 3, 2, 2, 1, 1)); },
                         {random_leaf({2, 40, 36, 37}, g)});
  check_cuda_matches_cpu(
      "MiB evaluation pooling, many blocks",
      [](const auto& in) { return pad_replicate(avg_pool2d(in[0], pool(32, 32, 1, 1)), 15, 16, 15, 16); },
      {random_leaf({1, 40, 35, 6}, g)});
  check_cuda_matches_cpu("pad_replicate, many blocks",
                         [](const auto& in) { return pad_replicate(in[0], 15, 16, 15, 16); },
                         {random_leaf({2, 30, 33, 40}, g)});
}

TEST_CASE("cuda max_pool2d sends ties to the first maximum and propagates NaN like the CPU", "[cpu]") {
  Generator g(32);
  // Quantized values: many ties inside overlapping windows.
  Tensor ties = Tensor::randn({2, 9, 10, 3}, g);
  std::vector<float> v = ties.to_vector<float>();
  for (float& e : v) e = std::round(e * 1.5f);
  Tensor quantized = Tensor::from_vector(v, {2, 9, 10, 3});
  quantized.set_requires_grad(true);
  check_cuda_matches_cpu("ties", [](const auto& in) { return max_pool2d(in[0], pool(3, 3, 1, 1, 1, 1)); },
                         {quantized});

  std::vector<float> w = Tensor::randn({1, 6, 8, 4}, g).to_vector<float>();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  w[0] = nan;                    // (0, 0, 0, c0)
  w[(2 * 8 + 3) * 4 + 1] = nan;  // (0, 2, 3, c1)
  w[(3 * 8 + 2) * 4 + 1] = nan;  // (0, 3, 2, c1): two NaN in one channel
  w[(5 * 8 + 7) * 4 + 2] = nan;
  Tensor with_nan = Tensor::from_vector(w, {1, 6, 8, 4});
  with_nan.set_requires_grad(true);
  check_cuda_matches_cpu("NaN", [](const auto& in) { return max_pool2d(in[0], pool(2, 2, 2, 2)); }, {with_nan});
  // -inf everywhere: every window keeps its first tap as the argmax.
  Tensor minus_inf = Tensor::full({1, 4, 4, 2}, -std::numeric_limits<double>::infinity());
  minus_inf.set_requires_grad(true);
  check_cuda_matches_cpu("all -inf", [](const auto& in) { return max_pool2d(in[0], pool(3, 3, 2, 2, 1, 1)); },
                         {minus_inf});
}

TEST_CASE("cuda max_pool2d without a gradient saves no argmax and gives the same output", "[cpu]") {
  for (DType dtype : {DType::f32, DType::f64}) {
    INFO(dtype_name(dtype));
    Generator g(33);
    Tensor x = Tensor::randn({2, 9, 7, 5}, g, dtype);
    Tensor y_gpu = max_pool2d(x.to(test::cuda_device()), pool(3, 3, 2, 2, 1, 1));
    CHECK(y_gpu.to_vector<double>() == max_pool2d(x, pool(3, 3, 2, 2, 1, 1)).to_vector<double>());
  }
}

TEST_CASE("cuda avg_pool2d equals the CPU bit for bit", "[cpu]") {
  // The same separable double sums in the same order.
  for (DType dtype : {DType::f32, DType::f64}) {
    Generator g(36);
    Tensor x = Tensor::randn({2, 11, 14, 5}, g, dtype);
    for (bool include_pad : {true, false}) {
      INFO(dtype_name(dtype) << ", count_include_pad " << include_pad);
      Pool2dParams p = pool(3, 4, 2, 3, 1, 2, 1, 1, true, include_pad);
      CHECK(avg_pool2d(x.to(test::cuda_device()), p).to_vector<double>() == avg_pool2d(x, p).to_vector<double>());
    }
  }
}
