// max_pool2d, avg_pool2d and pad_replicate on CUDA against the CPU reference, outputs and gradients,
// on every parameter setting of the CPU tests (tests/engine/test_pooling.cpp, test_pad.cpp,
// tools/torchref/spatial.py): stem, dilation, rectangular windows, ceil mode and its dropped last
// window, ties, NaN, count_include_pad false, the MiB head's evaluation pooling.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "engine/ops/pad.h"
#include "engine/ops/pooling.h"
#include "tests/cuda/cuda_compare.h"

using namespace strata;
using test::check_cuda_matches_cpu;
using test::random_leaf;

namespace {

Pool2dParams pool(int64_t kernel_h, int64_t kernel_w, int64_t stride_h, int64_t stride_w, int64_t pad_h = 0,
                  int64_t pad_w = 0, int64_t dilation_h = 1, int64_t dilation_w = 1, bool ceil_mode = false,
                  bool count_include_pad = true) {
  Pool2dParams p{kernel_h, kernel_w, stride_h, stride_w};
  p.pad_h = pad_h;
  p.pad_w = pad_w;
  p.dilation_h = dilation_h;
  p.dilation_w = dilation_w;
  p.ceil_mode = ceil_mode;
  p.count_include_pad = count_include_pad;
  return p;
}

struct PoolCase {
  const char* name;
  Shape shape;  // NHWC
  Pool2dParams params;
};

}  // namespace

TEST_CASE("cuda max_pool2d matches the CPU: stem, dilation, rectangular, ceil mode", "[cpu]") {
  Generator g(31);
  const std::vector<PoolCase> cases = {
      {"stem", {2, 17, 19, 5}, pool(3, 3, 2, 2, 1, 1)},
      {"dilation", {2, 13, 11, 4}, pool(3, 3, 1, 2, 1, 1, 2, 2)},
      {"rect", {1, 10, 13, 3}, pool(2, 3, 1, 2, 1, 1, 3, 1)},
      {"ceil", {2, 16, 15, 3}, pool(3, 3, 2, 2, 1, 1, 1, 1, true)},
      {"ceil last window dropped", {1, 5, 8, 3}, pool(3, 3, 3, 3, 1, 1, 1, 1, true)},
      {"ceil stride 3", {2, 5, 8, 2}, pool(3, 3, 3, 3, 1, 1, 1, 1, true)},
      {"dilation rect", {1, 6, 7, 3}, pool(2, 3, 1, 2, 1, 0, 2, 1)},
      {"odd shape", {2, 7, 5, 13}, pool(3, 3, 2, 2, 1, 1)},
      {"many blocks", {2, 48, 40, 37}, pool(3, 3, 2, 2, 1, 1)},
  };
  for (const PoolCase& c : cases) {
    Pool2dParams p = c.params;
    check_cuda_matches_cpu(c.name, [p](const auto& in) { return max_pool2d(in[0], p); }, {random_leaf(c.shape, g)});
  }
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

TEST_CASE("cuda avg_pool2d matches the CPU: count_include_pad, ceil mode divisors, rectangular windows", "[cpu]") {
  Generator g(34);
  const std::vector<PoolCase> cases = {
      {"include pad", {2, 17, 19, 5}, pool(3, 3, 2, 2, 1, 1)},
      {"exclude pad", {2, 17, 19, 5}, pool(3, 3, 2, 2, 1, 1, 1, 1, false, false)},
      {"rect", {1, 11, 14, 4}, pool(2, 5, 3, 2, 1, 2)},
      {"rect ceil exclude pad", {1, 10, 9, 2}, pool(2, 5, 3, 2, 1, 2, 1, 1, true, false)},
      {"ceil include pad", {2, 16, 15, 3}, pool(3, 3, 2, 2, 1, 1, 1, 1, true, true)},
      {"ceil exclude pad", {2, 16, 15, 3}, pool(3, 3, 2, 2, 1, 1, 1, 1, true, false)},
      {"ceil no pad", {1, 10, 9, 3}, pool(4, 4, 3, 3, 0, 0, 1, 1, true)},
      {"ceil last window", {1, 5, 8, 3}, pool(3, 3, 3, 3, 1, 1, 1, 1, true)},
      {"odd shape", {2, 7, 5, 13}, pool(3, 3, 2, 2, 1, 1, 1, 1, false, false)},
      {"many blocks", {2, 40, 36, 37}, pool(3, 3, 2, 2, 1, 1)},
  };
  for (const PoolCase& c : cases) {
    Pool2dParams p = c.params;
    check_cuda_matches_cpu(c.name, [p](const auto& in) { return avg_pool2d(in[0], p); }, {random_leaf(c.shape, g)});
  }
}

TEST_CASE("cuda avg_pool2d and pad_replicate match the CPU on the MiB head's evaluation pooling", "[cpu]") {
  Generator g(35);
  // The MiB/PLOP head's image pooling in evaluation (pooling size 32, stride 1, then replicate
  // padding back to the input size), larger than the window in both axes and smaller.
  struct Case {
    Shape shape;
    int64_t kh, kw, top, bottom, left, right;
  };
  const std::vector<Case> cases = {{{1, 40, 35, 6}, 32, 32, 15, 16, 15, 16}, {{2, 13, 21, 5}, 13, 21, 6, 6, 10, 10}};
  for (const Case& c : cases) {
    Pool2dParams p = pool(c.kh, c.kw, 1, 1);
    check_cuda_matches_cpu(
        "MiB evaluation pooling",
        [p, c](const auto& in) { return pad_replicate(avg_pool2d(in[0], p), c.top, c.bottom, c.left, c.right); },
        {random_leaf(c.shape, g)});
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

TEST_CASE("cuda pad_replicate matches the CPU: mixed, wide, one pixel, none, many blocks", "[cpu]") {
  Generator g(37);
  struct Case {
    const char* name;
    Shape shape;
    int64_t top, bottom, left, right;
  };
  const std::vector<Case> cases = {
      {"mixed", {2, 5, 7, 3}, 1, 4, 2, 3},         {"wide", {1, 3, 2, 2}, 0, 6, 5, 0},
      {"one pixel", {1, 1, 1, 4}, 3, 2, 2, 1},     {"none", {2, 4, 5, 3}, 0, 0, 0, 0},
      {"odd shape", {2, 7, 5, 13}, 2, 1, 3, 4},    {"many blocks", {2, 30, 33, 40}, 15, 16, 15, 16},
  };
  for (const Case& c : cases) {
    check_cuda_matches_cpu(
        c.name, [c](const auto& in) { return pad_replicate(in[0], c.top, c.bottom, c.left, c.right); },
        {random_leaf(c.shape, g)});
  }
}
