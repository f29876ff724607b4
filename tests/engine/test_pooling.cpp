// max_pool2d, avg_pool2d and global_avg_pool: finite-difference gradients (f64), PyTorch parity
// (forward and backward, f32) and input validation.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "engine/ops/pad.h"
#include "engine/ops/pooling.h"
#include "tests/support/gradcheck.h"
#include "tests/support/torch_reference.h"

using namespace strata;
using strata::test::check_torch_case;
using strata::test::TorchCase;

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

Pool2dParams pool_from_case(const TorchCase& c) {
  auto i = [&](const char* key) { return static_cast<int64_t>(c.param(key)); };
  return pool(i("kernel_h"), i("kernel_w"), i("stride_h"), i("stride_w"), i("pad_h"), i("pad_w"), i("dilation_h"),
              i("dilation_w"), c.param("ceil_mode") != 0, c.param("count_include_pad") != 0);
}

// A random permutation of values 0.05 apart: no two elements are within a finite-difference step of
// each other, so no max-pool window sits on a tie.
Tensor separated_leaf(const Shape& shape, Generator& g) {
  int64_t n = shape_numel(shape);
  std::vector<double> keys = Tensor::uniform({n}, 0.0, 1.0, g, DType::f64).to_vector<double>();
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return keys[size_t(a)] < keys[size_t(b)]; });
  std::vector<double> values(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) values[size_t(order[size_t(i)])] = 0.05 * static_cast<double>(i - n / 2);
  Tensor t = Tensor::from_vector(values, shape);
  t.set_requires_grad(true);
  return t;
}

Tensor leaf(const Shape& shape, Generator& g) {
  Tensor t = Tensor::randn(shape, g, DType::f64);
  t.set_requires_grad(true);
  return t;
}

}  // namespace

TEST_CASE("max_pool2d gradcheck: stem, dilation, ceil mode, rectangular windows", "[gradcheck]") {
  Generator g(11);
  struct Setting {
    Shape shape;
    Pool2dParams params;
  };
  std::vector<Setting> settings = {
      {{2, 9, 11, 3}, pool(3, 3, 2, 2, 1, 1)},
      {{1, 10, 9, 2}, pool(3, 3, 1, 2, 1, 1, 2, 2)},
      {{1, 8, 7, 2}, pool(3, 3, 2, 2, 1, 1, 1, 1, true)},
      {{2, 5, 8, 2}, pool(3, 3, 3, 3, 1, 1, 1, 1, true)},
      {{1, 6, 7, 3}, pool(2, 3, 1, 2, 1, 0, 2, 1)},
  };
  for (const Setting& s : settings) {
    Pool2dParams p = s.params;
    CHECK_GRADCHECK([p](const std::vector<Tensor>& in) { return max_pool2d(in[0], p); }, {separated_leaf(s.shape, g)});
  }
}

TEST_CASE("avg_pool2d gradcheck: padding in and out of the divisor, ceil mode, rectangular windows", "[gradcheck]") {
  Generator g(12);
  for (bool include_pad : {true, false}) {
    for (bool ceil_mode : {false, true}) {
      Pool2dParams p = pool(3, 3, 2, 2, 1, 1, 1, 1, ceil_mode, include_pad);
      CHECK_GRADCHECK([p](const std::vector<Tensor>& in) { return avg_pool2d(in[0], p); }, {leaf({2, 8, 7, 3}, g)});
    }
  }
  Pool2dParams rect = pool(2, 5, 3, 2, 1, 2, 1, 1, true, false);
  CHECK_GRADCHECK([rect](const std::vector<Tensor>& in) { return avg_pool2d(in[0], rect); }, {leaf({1, 10, 9, 2}, g)});
}

TEST_CASE("avg_pool2d and pad_replicate gradcheck: the MiB head's evaluation pooling", "[gradcheck]") {
  Generator g(13);
  // 34x33 input: 32x32 windows at stride 1 give 3x2, padded back to 34x33.
  Pool2dParams p = pool(32, 32, 1, 1);
  CHECK_GRADCHECK([p](const std::vector<Tensor>& in) { return pad_replicate(avg_pool2d(in[0], p), 15, 16, 15, 16); },
                  {leaf({1, 34, 33, 2}, g)});
}

TEST_CASE("global_avg_pool gradcheck", "[gradcheck]") {
  Generator g(14);
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return global_avg_pool(in[0]); }, {leaf({2, 5, 3, 4}, g)});
}

TEST_CASE("max_pool2d matches PyTorch: stem, dilation, ceil mode, ties, NaN", "[torch]") {
  for (const char* name : {"max_pool2d_stem", "max_pool2d_dilation", "max_pool2d_rect", "max_pool2d_ceil",
                           "max_pool2d_ceil_last_window", "max_pool2d_ties", "max_pool2d_nan"}) {
    check_torch_case("spatial", name, {"x"}, [](const std::vector<Tensor>& in, const TorchCase& c) {
      return max_pool2d(in[0], pool_from_case(c));
    });
  }
}

TEST_CASE("avg_pool2d matches PyTorch: count_include_pad, ceil mode divisors", "[torch]") {
  for (const char* name :
       {"avg_pool2d_include_pad", "avg_pool2d_exclude_pad", "avg_pool2d_rect", "avg_pool2d_ceil_include_pad",
        "avg_pool2d_ceil_exclude_pad", "avg_pool2d_ceil_no_pad", "avg_pool2d_ceil_last_window"}) {
    check_torch_case("spatial", name, {"x"}, [](const std::vector<Tensor>& in, const TorchCase& c) {
      return avg_pool2d(in[0], pool_from_case(c));
    });
  }
}

TEST_CASE("avg_pool2d with pad_replicate matches the MiB head's evaluation pooling in PyTorch", "[torch]") {
  for (const char* name : {"mib_eval_pool_large", "mib_eval_pool_small"}) {
    check_torch_case("spatial", name, {"x"}, [](const std::vector<Tensor>& in, const TorchCase& c) {
      auto i = [&](const char* key) { return static_cast<int64_t>(c.param(key)); };
      return pad_replicate(avg_pool2d(in[0], pool_from_case(c)), i("top"), i("bottom"), i("left"), i("right"));
    });
  }
}

TEST_CASE("global_avg_pool matches PyTorch", "[torch]") {
  check_torch_case("spatial", "global_avg_pool", {"x"},
                   [](const std::vector<Tensor>& in, const TorchCase&) { return global_avg_pool(in[0]); });
}

TEST_CASE("max_pool2d sends a tie's gradient to the first maximum and propagates NaN", "[cpu]") {
  // One 2x2 window over a 2x2 image, two channels: channel 0 ties at (0,1) and (1,0), channel 1
  // holds a NaN at (1,1).
  double nan = std::numeric_limits<double>::quiet_NaN();
  Tensor x = Tensor::from_vector<double>({1, 0, 3, 5, 3, 2, 0, nan}, {1, 2, 2, 2});
  x.set_requires_grad(true);
  Tensor y = max_pool2d(x, pool(2, 2, 2, 2));
  std::vector<double> out = y.to_vector<double>();
  CHECK(out[0] == 3.0);
  CHECK(std::isnan(out[1]));
  y.backward(Tensor::from_vector<double>({1, 1}, {1, 1, 1, 2}));
  CHECK(x.grad().to_vector<double>() == std::vector<double>{0, 0, 1, 0, 0, 0, 0, 1});
}

TEST_CASE("pooling ops reject bad input clearly", "[cpu]") {
  Tensor x = Tensor::zeros({2, 8, 8, 3});
  Pool2dParams p = pool(3, 3, 2, 2, 1, 1);
  CHECK_THROWS_WITH(max_pool2d(Tensor::zeros({8, 8, 3}), p),
                    Catch::Contains("max_pool2d") && Catch::Contains("rank 4") && Catch::Contains("f32[8,8,3]"));
  CHECK_THROWS_WITH(avg_pool2d(Tensor::zeros({2, 8, 8, 3}, DType::i32), p),
                    Catch::Contains("avg_pool2d") && Catch::Contains("f32 or f64") && Catch::Contains("i32"));
  CHECK_THROWS_WITH(max_pool2d(x, pool(0, 3, 1, 1)),
                    Catch::Contains("max_pool2d") && Catch::Contains("kernel must be >= 1"));
  CHECK_THROWS_WITH(max_pool2d(x, pool(3, 3, 1, 0)),
                    Catch::Contains("max_pool2d") && Catch::Contains("stride must be >= 1"));
  CHECK_THROWS_WITH(max_pool2d(x, pool(3, 3, 1, 1, 0, 0, 0, 1)),
                    Catch::Contains("max_pool2d") && Catch::Contains("dilation must be >= 1"));
  CHECK_THROWS_WITH(max_pool2d(x, pool(3, 3, 1, 1, 2, 0)),
                    Catch::Contains("max_pool2d") && Catch::Contains("half the kernel size"));
  CHECK_THROWS_WITH(avg_pool2d(x, pool(3, 3, 1, 1, -1, 0)), Catch::Contains("avg_pool2d") && Catch::Contains("pad"));
  CHECK_THROWS_WITH(avg_pool2d(x, pool(3, 3, 1, 1, 1, 1, 2, 2)),
                    Catch::Contains("avg_pool2d") && Catch::Contains("dilation must be 1"));
  CHECK_THROWS_WITH(avg_pool2d(Tensor::zeros({1, 2, 2, 1}), pool(3, 3, 1, 1)),
                    Catch::Contains("avg_pool2d") && Catch::Contains("too small") && Catch::Contains("f32[1,2,2,1]"));
  CHECK_THROWS_WITH(max_pool2d(Tensor::zeros({1, 0, 4, 1}), pool(1, 1, 1, 1)),
                    Catch::Contains("max_pool2d") && Catch::Contains("at least one pixel"));
  CHECK_THROWS_WITH(global_avg_pool(Tensor::zeros({2, 3})),
                    Catch::Contains("global_avg_pool") && Catch::Contains("rank 4"));
  CHECK_THROWS_WITH(global_avg_pool(Tensor()), Catch::Contains("global_avg_pool") && Catch::Contains("undefined"));
}
