// dropout: finite-difference gradients (f64) with a fixed mask on the cases of
// tests/engine/dropout_cases.h, PyTorch parity with the mask
// reproduced by tools/torchref/philox.py, the mask's statistics and reproducibility, and bad input.
#include <catch2/catch.hpp>
#include <cmath>
#include <string>

#include "engine/ops/dropout.h"
#include "kernels/common/dropout.h"
#include "tests/engine/dropout_cases.h"
#include "tests/support/compare.h"
#include "tests/support/gradcheck.h"
#include "tests/support/torch_reference.h"

using namespace strata;
using strata::test::check_torch_case;
using strata::test::TorchCase;

namespace {

std::vector<bool> kept_mask(const Tensor& y) {
  std::vector<bool> kept;
  for (double v : y.to_vector<double>()) kept.push_back(v != 0.0);
  return kept;
}

}  // namespace

TEST_CASE("dropout gradcheck with a fixed mask", "[gradcheck]") { test::check_gradients(test::dropout_cases()); }

TEST_CASE("dropout matches PyTorch with the mask from tools/torchref/philox.py", "[torch]") {
  for (const char* name : {"dropout_nhwc", "dropout_rank2", "dropout_high_p"}) {
    SECTION(name) {
      TorchCase c("normalization", name);
      // Seeds are 64-bit: read as text, a double would round them.
      const uint64_t seed = std::stoull(c.text("seed"));
      const uint64_t offset = std::stoull(c.text("offset"));
      Generator generator(seed);
      generator.set_offset(offset);
      int64_t numel = 0;
      check_torch_case("normalization", name, {"x"}, [&](const std::vector<Tensor>& in, const TorchCase& tc) {
        numel = in[0].numel();
        return dropout(in[0], tc.param("p"), true, generator);
      });
      CHECK(generator.offset() == offset + static_cast<uint64_t>(numel));
    }
  }
}

TEST_CASE("dropout keeps each element with probability 1 - p, scaled by 1/(1 - p)", "[cpu]") {
  const int64_t n = 100000;
  Generator generator(2024);
  for (double p : {0.1, 0.5, 0.9}) {
    Tensor y = dropout(Tensor::ones({n}), p, true, generator);
    std::vector<float> v = y.to_vector<float>();
    int64_t kept = 0;
    bool values_ok = true;
    for (float e : v) {
      if (e != 0.0f) {
        ++kept;
        values_ok = values_ok && e == static_cast<float>(1.0 / (1.0 - p));
      }
    }
    const double fraction = static_cast<double>(kept) / static_cast<double>(n);
    const double standard_error = std::sqrt(p * (1 - p) / static_cast<double>(n));
    INFO("p = " << p << ": kept fraction " << fraction << ", expected " << 1 - p << " +- " << standard_error);
    CHECK(std::fabs(fraction - (1 - p)) < 5 * standard_error);
    CHECK(values_ok);
  }
}

TEST_CASE("dropout in eval or with p == 0 returns x and draws nothing", "[cpu]") {
  Generator generator(5);
  Tensor x = Tensor::randn({2, 3, 4, 5}, generator);
  uint64_t offset = generator.offset();
  CHECK(dropout(x, 0.5, false, generator).same(x));
  CHECK(dropout(x, 0.0, true, generator).same(x));
  CHECK(generator.offset() == offset);
  CHECK_FALSE(dropout(x, 0.5, true, generator).same(x));
  CHECK(generator.offset() == offset + static_cast<uint64_t>(x.numel()));
}

TEST_CASE("dropout masks: successive draws differ, the same seed and offset repeat", "[cpu]") {
  const Shape shape{3, 7, 5, 11};
  Tensor x = Tensor::ones(shape);
  Generator generator(77);
  std::vector<bool> first = kept_mask(dropout(x, 0.5, true, generator));
  std::vector<bool> second = kept_mask(dropout(x, 0.5, true, generator));
  CHECK(first != second);

  Generator replay(77);
  CHECK(kept_mask(dropout(x, 0.5, true, replay)) == first);
  Generator jump(77);
  jump.set_offset(static_cast<uint64_t>(x.numel()));
  CHECK(kept_mask(dropout(x, 0.5, true, jump)) == second);

  // Element i of a draw starting at counter `first` is decided by the shared predicate, also when
  // `first` is not a multiple of the 4 words of a Philox block.
  Generator unaligned(77);
  unaligned.set_offset(3);
  std::vector<bool> mask = kept_mask(dropout(x, 0.3, true, unaligned));
  bool all_match = true;
  for (size_t i = 0; i < mask.size(); ++i) all_match = all_match && mask[i] == dropout_mask::kept(77, 3 + i, 0.3);
  CHECK(all_match);
}

TEST_CASE("dropout kernels' integer threshold decides exactly as the float predicate", "[cpu]") {
  // p on, just below and just above the 2^-24 grid of the uniform, where a rounded threshold would
  // flip decisions; words on both sides of each threshold.
  std::vector<double> ps{0.0, 0.1, 0.5, 0.85, std::nextafter(1.0, 0.0)};
  for (uint32_t k : {1u, 3u, 1677721u, 8388608u, 16777215u}) {
    double on_grid = k / 16777216.0;
    ps.insert(ps.end(), {on_grid, std::nextafter(on_grid, 0.0), std::nextafter(on_grid, 1.0)});
  }
  bool all_match = true;
  for (double p : ps) {
    uint32_t threshold = dropout_mask::keep_threshold(p);
    for (int64_t delta = -2; delta <= 2; ++delta) {
      int64_t k = static_cast<int64_t>(threshold) + delta;
      if (k < 0 || k >= (int64_t{1} << 24)) continue;
      for (uint32_t low : {0u, 0x80u, 0xffu}) {
        uint32_t word = (static_cast<uint32_t>(k) << 8) | low;
        bool same = dropout_mask::kept_bits(word, threshold) == dropout_mask::kept_word(word, p);
        if (!same) UNSCOPED_INFO("p = " << p << ", word = " << word);
        all_match = all_match && same;
      }
    }
  }
  CHECK(all_match);
}

TEST_CASE("dropout backward applies the forward's mask and scale", "[cpu]") {
  Generator generator(8);
  Tensor x = Tensor::randn({4, 6, 5, 3}, generator);
  x.set_requires_grad(true);
  Tensor y = dropout(x, 0.4, true, generator);
  Tensor grad_out = Tensor::randn(x.shape(), generator);
  y.backward(grad_out);
  std::vector<float> yv = y.to_vector<float>(), xv = x.to_vector<float>(), gv = grad_out.to_vector<float>(),
                     dx = x.grad().to_vector<float>();
  const float scale = static_cast<float>(1.0 / 0.6);
  bool ok = true;
  for (size_t i = 0; i < yv.size(); ++i) {
    bool kept = yv[i] != 0.0f;
    ok = ok && dx[i] == (kept ? gv[i] * scale : 0.0f) && (!kept || yv[i] == xv[i] * scale);
  }
  CHECK(ok);
}

TEST_CASE("dropout rejects bad input clearly", "[cpu]") {
  Generator generator(1);
  Tensor x = Tensor::zeros({2, 3});
  CHECK_THROWS_WITH(dropout(x, 1.0, true, generator), Catch::Contains("dropout") && Catch::Contains("[0, 1)"));
  CHECK_THROWS_WITH(dropout(x, -0.1, true, generator), Catch::Contains("dropout") && Catch::Contains("p must be"));
  CHECK_THROWS_WITH(dropout(x, std::nan(""), true, generator), Catch::Contains("p must be"));
  CHECK_THROWS_WITH(dropout(x, 1.0, false, generator), Catch::Contains("p must be"));
  CHECK_THROWS_WITH(dropout(Tensor::zeros({2, 3}, DType::i32), 0.5, true, generator),
                    Catch::Contains("dropout") && Catch::Contains("f32 or f64") && Catch::Contains("i32[2,3]"));
  CHECK_THROWS_WITH(dropout(Tensor(), 0.5, true, generator), Catch::Contains("dropout") && Catch::Contains("undefined"));
}

TEST_CASE("dropout2d keeps or zeroes whole (sample, channel) planes, and its backward applies the same mask", "[cpu]") {
  Generator generator(9);
  Tensor x = Tensor::randn({3, 4, 5, 40}, generator);
  x.set_requires_grad(true);
  Generator draws(21);
  Tensor y = dropout2d(x, 0.3, true, draws);
  Tensor grad_out = Tensor::randn(x.shape(), generator);
  y.backward(grad_out);
  std::vector<float> yv = y.to_vector<float>(), xv = x.to_vector<float>(), gv = grad_out.to_vector<float>(),
                     dx = x.grad().to_vector<float>();
  const float scale = static_cast<float>(1.0 / 0.7);
  int64_t kept_planes = 0, consistent_planes = 0;
  for (int64_t n = 0; n < 3; ++n) {
    for (int64_t c = 0; c < 40; ++c) {
      const size_t first = static_cast<size_t>(n * 4 * 5 * 40 + c);
      const bool kept = yv[first] != 0.0f;
      bool consistent = true;
      for (int64_t p = 0; p < 4 * 5; ++p) {
        const size_t i = first + static_cast<size_t>(p * 40);
        const float want = kept ? xv[i] * scale : 0.0f, want_grad = kept ? gv[i] * scale : 0.0f;
        consistent = consistent && std::abs(yv[i] - want) <= 1e-6f * std::abs(want) &&
                     std::abs(dx[i] - want_grad) <= 1e-6f * std::abs(want_grad);
      }
      kept_planes += kept;
      consistent_planes += consistent;
    }
  }
  CHECK(consistent_planes == 3 * 40);
  // 120 planes kept with probability 0.7: 84 expected, standard deviation 5.
  CHECK(kept_planes > 84 - 25);
  CHECK(kept_planes < 84 + 25);
  // The keep decisions are dropout's on the (N,1,1,C) ones: the same generator state draws the same.
  Generator again(21);
  const Tensor keep = dropout(Tensor::ones({3, 1, 1, 40}), 0.3, true, again);
  std::vector<float> kv = keep.to_vector<float>();
  for (int64_t n = 0; n < 3; ++n) {
    for (int64_t c = 0; c < 40; ++c)
      CHECK((kv[static_cast<size_t>(n * 40 + c)] != 0.0f) == (yv[static_cast<size_t>(n * 800 + c)] != 0.0f));
  }
  Generator unused(1);
  CHECK_THROWS_WITH(dropout2d(Tensor::zeros({2, 3}), 0.5, true, unused),
                    Catch::Contains("dropout2d") && Catch::Contains("(N,H,W,C)"));
  CHECK(dropout2d(x, 0.5, false, unused).same(x));
}
