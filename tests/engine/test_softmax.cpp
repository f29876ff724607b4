// softmax, log_softmax and logsumexp over channel ranges: finite-difference gradients (f64) on the
// cases of tests/engine/softmax_cases.h, PyTorch parity (f32, forward and gradients), stability and
// bad input.
#include <catch2/catch.hpp>
#include <cmath>

#include "engine/ops/softmax.h"
#include "tests/engine/softmax_cases.h"
#include "tests/support/gradcheck.h"
#include "tests/support/tolerances.h"
#include "tests/support/torch_reference.h"

using namespace strata;
using strata::test::approx;
using strata::test::check_torch_case;
using strata::test::kF32Scalar;

TEST_CASE("softmax and log_softmax gradcheck: NHWC logits, (N,C) and one channel", "[gradcheck]") {
  test::check_gradients(test::softmax_cases());
}

TEST_CASE("logsumexp gradcheck: ranges at the start, middle, end and full", "[gradcheck]") {
  test::check_gradients(test::logsumexp_cases());
}

TEST_CASE("softmax and log_softmax match PyTorch", "[torch]") {
  for (const char* kind : {"_nchw", "_rank2", "_rank3", "_shifted"}) {
    check_torch_case("losses", std::string("softmax") + kind, {"x"},
                     [](const auto& in, const auto&) { return softmax(in[0]); });
    check_torch_case("losses", std::string("log_softmax") + kind, {"x"},
                     [](const auto& in, const auto&) { return log_softmax(in[0]); });
  }
}

TEST_CASE("logsumexp matches PyTorch over channel ranges", "[torch]") {
  for (const char* kind : {"full", "start", "middle", "end", "single", "rank2", "shifted"}) {
    check_torch_case("losses", std::string("logsumexp_") + kind, {"x"}, [](const auto& in, const auto& c) {
      return logsumexp(in[0], static_cast<int64_t>(c.param("begin")), static_cast<int64_t>(c.param("end")));
    });
  }
}

TEST_CASE("softmax, log_softmax and logsumexp stay finite for large logits", "[cpu]") {
  // exp(1000) overflows even in f64: only the max-shifted forms give these values.
  Tensor x = Tensor::from_vector<float>({1000.f, 999.f, 998.f, -1000.f, 0.f, 1000.f}, {2, 3});
  std::vector<float> p = softmax(x).to_vector<float>();
  double e1 = std::exp(-1.0), e2 = std::exp(-2.0);
  CHECK(p[0] == approx(1.0 / (1.0 + e1 + e2), kF32Scalar));
  CHECK(p[2] == approx(e2 / (1.0 + e1 + e2), kF32Scalar));
  CHECK(p[3] == 0.0f);
  CHECK(p[5] == approx(1.0, kF32Scalar));
  std::vector<float> lp = log_softmax(x).to_vector<float>();
  CHECK(lp[3] == approx(-2000.0, kF32Scalar));
  CHECK(lp[0] == approx(-std::log(1.0 + e1 + e2), kF32Scalar));
  std::vector<float> lse = logsumexp(x, 0, 2).to_vector<float>();
  CHECK(lse[0] == approx(1000.0 + std::log(1.0 + e1), kF32Scalar));
  // log(exp(-1000) + exp(0)) = log(1): exactly 0 after the max shift.
  CHECK(lse[1] == 0.0f);
}

TEST_CASE("logsumexp over a range: output (...,1) and no gradient outside the range", "[cpu]") {
  Generator g(104);
  Tensor x = test::leaf({2, 2, 3, 6}, g);
  Tensor y = logsumexp(x, 2, 4);
  CHECK(y.shape() == Shape{2, 2, 3, 1});
  y.backward(Tensor::ones(y.shape(), DType::f64));
  std::vector<double> dx = x.grad().to_vector<double>();
  for (size_t i = 0; i < dx.size(); ++i) {
    int64_t c = static_cast<int64_t>(i % 6);
    if (c < 2 || c >= 4) {
      CHECK(dx[i] == 0.0);
    } else {
      CHECK(dx[i] > 0.0);
    }
  }
  // Inside the range the gradient is the softmax over the range: it sums to 1 per pixel.
  for (size_t p = 0; p < dx.size() / 6; ++p) CHECK(dx[p * 6 + 2] + dx[p * 6 + 3] == approx(1.0, test::kF64Scalar));
}

TEST_CASE("softmax, log_softmax and logsumexp reject bad input clearly", "[cpu]") {
  Tensor x = Tensor::zeros({2, 3, 4, 5});
  CHECK_THROWS_WITH(softmax(Tensor::zeros({2, 5}, DType::i32)),
                    Catch::Contains("softmax") && Catch::Contains("f32 or f64") && Catch::Contains("i32[2,5]"));
  CHECK_THROWS_WITH(log_softmax(Tensor::scalar(1.0)), Catch::Contains("log_softmax") && Catch::Contains("(..., C)"));
  CHECK_THROWS_WITH(softmax(Tensor::zeros({2, 0})), Catch::Contains("C >= 1") && Catch::Contains("f32[2,0]"));
  CHECK_THROWS_WITH(softmax(Tensor()), Catch::Contains("undefined"));
  CHECK_THROWS_WITH(logsumexp(x, 3, 3), Catch::Contains("logsumexp") && Catch::Contains("[3, 3)") &&
                                            Catch::Contains("0 <= begin < end <= C = 5"));
  CHECK_THROWS_WITH(logsumexp(x, 2, 6), Catch::Contains("[2, 6)") && Catch::Contains("f32[2,3,4,5]"));
  CHECK_THROWS_WITH(logsumexp(x, -1, 2), Catch::Contains("[-1, 2)"));
  CHECK_THROWS_WITH(logsumexp(x, 4, 1), Catch::Contains("[4, 1)"));
  CHECK_THROWS_WITH(logsumexp(Tensor::zeros({2, 3}, DType::u8), 0, 2),
                    Catch::Contains("logsumexp") && Catch::Contains("f32 or f64"));
}
