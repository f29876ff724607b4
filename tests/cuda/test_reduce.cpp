// Reductions on CUDA against the CPU reference: sum, mean, sum/mean over pixels and over channels,
// global_avg_pool; outputs and gradients, odd shapes and shapes spanning many blocks and chunks; the
// per-channel sums of a broadcast's gradient; first_nonfinite on CUDA tensors.
#include <catch2/catch.hpp>

#include <cmath>

#include "engine/finite.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/pooling.h"
#include "engine/ops/reduce.h"
#include "tests/cuda/cuda_compare.h"
#include "tests/cuda/cuda_device.h"
#include "tests/engine/elementwise_cases.h"

using namespace strata;
using test::check_cuda_matches_cpu;
using test::random_leaf;

namespace {

void check_every_reduction(const std::string& what, const Tensor& x) {
  check_cuda_matches_cpu(what + " sum", [](const auto& in) { return sum(in[0]); }, {x});
  check_cuda_matches_cpu(what + " mean", [](const auto& in) { return mean(in[0]); }, {x});
  check_cuda_matches_cpu(what + " sum_channels", [](const auto& in) { return sum_channels(in[0]); }, {x});
  check_cuda_matches_cpu(what + " mean_channels", [](const auto& in) { return mean_channels(in[0]); }, {x});
  if (x.dim() == 4) {
    check_cuda_matches_cpu(what + " sum_spatial", [](const auto& in) { return sum_spatial(in[0]); }, {x});
    check_cuda_matches_cpu(what + " mean_spatial", [](const auto& in) { return mean_spatial(in[0]); }, {x});
    check_cuda_matches_cpu(what + " global_avg_pool", [](const auto& in) { return global_avg_pool(in[0]); }, {x});
  }
}

}  // namespace

TEST_CASE("cuda reductions match the CPU on every case of their table", "[cpu]") {
  check_cuda_matches_cpu(test::reduction_cases());
  // global_avg_pool is mean_spatial under another name (engine/ops/pooling.h).
  Generator g(21);
  Tensor x = random_leaf({2, 7, 5, 13}, g);
  check_cuda_matches_cpu("global_avg_pool", [](const auto& in) { return global_avg_pool(in[0]); }, {x});
}

TEST_CASE("cuda reductions match the CPU across many blocks, chunks and channel tiles", "[cpu]") {
  Generator g(22);
  // 2 x 1537 pixels: 7 chunks of 256 pixels per sample; 130 channels: two channel tiles of 128.
  check_every_reduction("(2,53,29,130)", random_leaf({2, 53, 29, 130}, g));
  // 300k values: 37 chunks for sum/mean; one channel per row for sum_channels.
  Tensor long_row = random_leaf({1, 1, 300000, 1}, g);
  check_cuda_matches_cpu("sum of 300k values", [](const auto& in) { return sum(in[0]); }, {long_row});
  check_cuda_matches_cpu("mean of 300k values", [](const auto& in) { return mean(in[0]); }, {long_row});
  check_cuda_matches_cpu("mean_spatial over 300k pixels", [](const auto& in) { return mean_spatial(in[0]); },
                         {long_row});
  // Values around 1000: a float accumulator would drift far beyond kF32 over 300k terms.
  Tensor offset = Tensor::uniform({1, 1, 300000, 1}, 999.0, 1001.0, g);
  offset.set_requires_grad(true);
  check_cuda_matches_cpu("sum of 300k values near 1000", [](const auto& in) { return sum(in[0]); }, {offset});
  check_cuda_matches_cpu("mean_spatial of 300k values near 1000", [](const auto& in) { return mean_spatial(in[0]); },
                         {offset});
}

TEST_CASE("cuda sum_spatial and mean_spatial equal the CPU bit for bit", "[cpu]") {
  // The same chunks of 256 pixels, summed in the same order in double.
  for (DType dtype : {DType::f32, DType::f64}) {
    INFO(dtype_name(dtype));
    Generator g(23);
    Tensor x = Tensor::randn({2, 40, 17, 9}, g, dtype);
    Tensor xg = x.to(test::cuda_device());
    CHECK(sum_spatial(xg).to_vector<double>() == sum_spatial(x).to_vector<double>());
    CHECK(mean_spatial(xg).to_vector<double>() == mean_spatial(x).to_vector<double>());
  }
}

TEST_CASE("cuda per-channel gradient sums equal the CPU bit for bit in f64", "[cpu]") {
  // The gradient of a per-channel addend (a bias): column sums over chunks of 256 rows, each chunk
  // and then the chunks summed in order in double, as the CPU sums them.
  Generator g(24);
  Tensor x = Tensor::randn({2, 40, 17, 9}, g, DType::f64), dy = Tensor::randn({2, 40, 17, 9}, g, DType::f64);
  Tensor b = Tensor::randn({9}, g, DType::f64);
  Tensor b_cpu = b.clone().set_requires_grad(true), b_gpu = b.to(test::cuda_device()).set_requires_grad(true);
  add(x, b_cpu).backward(dy);
  add(x.to(test::cuda_device()), b_gpu).backward(dy.to(test::cuda_device()));
  CHECK(b_gpu.grad().to_vector<double>() == b_cpu.grad().to_vector<double>());
}

TEST_CASE("first_nonfinite finds a NaN or an Inf in CUDA tensors as on the CPU", "[cpu]") {
  const Device& cuda = test::cuda_device();
  Generator g(5);
  // Sizes spanning many blocks of the reduction, the bad value last, in the middle, or absent.
  Tensor finite = Tensor::randn({300007}, g);
  Tensor with_inf = Tensor::randn({300007}, g);
  with_inf.data<float>()[300006] = -INFINITY;
  Tensor with_nan = Tensor::randn({2, 65, 33, 17}, g, DType::f64);
  with_nan.data<double>()[40000] = NAN;
  const TensorMap cpu{{"a", finite}, {"b", with_inf}, {"c", with_nan}};
  TensorMap on_cuda;
  for (const auto& [key, t] : cpu) on_cuda.emplace(key, t.to(cuda));
  CHECK(first_nonfinite(cpu) == "b");
  CHECK(first_nonfinite(on_cuda) == "b");
  on_cuda.erase("b");
  CHECK(first_nonfinite(on_cuda) == "c");
  on_cuda.erase("c");
  CHECK(first_nonfinite(on_cuda) == "");
  // Tensors on two devices: each device's markers are read once, the first key still wins.
  on_cuda.emplace("0.host", with_nan);
  CHECK(first_nonfinite(on_cuda) == "0.host");
}
