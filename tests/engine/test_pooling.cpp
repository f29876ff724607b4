// max_pool2d, avg_pool2d, adaptive_avg_pool2d and global_avg_pool: finite-difference gradients (f64) on every case of
// their tables (tests/engine/pooling_cases.h), PyTorch parity (forward and backward, f32) and input validation.
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <vector>

#include "engine/ops/pad.h"
#include "engine/ops/pooling.h"
#include "tests/engine/pooling_cases.h"
#include "tests/support/gradcheck.h"
#include "tests/support/torch_reference.h"

using namespace strata;
using strata::test::check_torch_case;
using strata::test::pool;
using strata::test::TorchCase;

namespace {

Pool2dParams pool_from_case(const TorchCase& c) {
  auto i = [&](const char* key) { return static_cast<int64_t>(c.param(key)); };
  return test::pool(i("kernel_h"), i("kernel_w"), i("stride_h"), i("stride_w"), i("pad_h"), i("pad_w"), i("dilation_h"),
                    i("dilation_w"), c.param("ceil_mode") != 0, c.param("count_include_pad") != 0);
}

}  // namespace

TEST_CASE("max_pool2d gradcheck: stem, dilation, ceil mode, rectangular windows", "[gradcheck]") {
  test::check_gradients(test::max_pool2d_cases());
}

TEST_CASE("avg_pool2d gradcheck: padding in and out of the divisor, ceil mode, rectangular windows", "[gradcheck]") {
  test::check_gradients(test::avg_pool2d_cases());
}

TEST_CASE("avg_pool2d and pad_replicate gradcheck: the MiB head's evaluation pooling", "[gradcheck]") {
  test::check_gradients(test::mib_eval_pooling_cases());
}

TEST_CASE("global_avg_pool gradcheck", "[gradcheck]") { test::check_gradients(test::global_avg_pool_cases()); }

TEST_CASE("adaptive_avg_pool2d gradcheck: overlapping windows, more outputs than inputs", "[gradcheck]") {
  test::check_gradients(test::adaptive_avg_pool2d_cases());
}

TEST_CASE("adaptive_avg_pool2d matches PyTorch: PSPNet's bins on sizes they do not divide", "[torch]") {
  for (const char* name : {"adaptive_avg_pool2d_bin1", "adaptive_avg_pool2d_bin2", "adaptive_avg_pool2d_bin3",
                           "adaptive_avg_pool2d_bin6", "adaptive_avg_pool2d_upscale", "adaptive_avg_pool2d_rect"}) {
    check_torch_case("spatial", name, {"x"}, [](const std::vector<Tensor>& in, const TorchCase& c) {
      return adaptive_avg_pool2d(in[0], static_cast<int64_t>(c.param("out_h")), static_cast<int64_t>(c.param("out_w")));
    });
  }
}

TEST_CASE("adaptive_avg_pool2d: bin 1 is the global mean, a divisible size is avg_pool2d, bad sizes name the op",
          "[cpu]") {
  Generator g(5);
  const Tensor x = Tensor::randn({2, 8, 12, 3}, g, DType::f64);
  const std::vector<double> global = global_avg_pool(x).to_vector<double>();
  const std::vector<double> bin1 = adaptive_avg_pool2d(x, 1, 1).to_vector<double>();
  REQUIRE(bin1.size() == global.size());
  for (size_t i = 0; i < bin1.size(); ++i) CHECK(bin1[i] == Approx(global[i]).epsilon(1e-12));
  const std::vector<double> adaptive = adaptive_avg_pool2d(x, 4, 3).to_vector<double>();
  const std::vector<double> windows = avg_pool2d(x, test::pool(2, 4, 2, 4)).to_vector<double>();
  REQUIRE(adaptive.size() == windows.size());
  for (size_t i = 0; i < adaptive.size(); ++i) CHECK(adaptive[i] == Approx(windows[i]).epsilon(1e-12));
  CHECK_THROWS_WITH(adaptive_avg_pool2d(x, 0, 3), Catch::Contains("adaptive_avg_pool2d: the output size must be >= 1"));
  CHECK_THROWS_WITH(adaptive_avg_pool2d(Tensor::zeros({2, 3, 4}), 1, 1), Catch::Contains("adaptive_avg_pool2d"));
  CHECK_THROWS_WITH(adaptive_avg_pool2d(Tensor::zeros({1, 3, 4, 2}, DType::i32), 1, 1),
                    Catch::Contains("adaptive_avg_pool2d"));
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
