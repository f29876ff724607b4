// cross_entropy, nll, bce_with_logits and mse: finite-difference gradients (f64) for every
// differentiable input and every reduction on the cases of tests/engine/losses_cases.h, PyTorch
// parity (f32, forward and gradients, u8/i32/i64 labels), the reduction conventions, thread-count
// determinism and bad input (an invalid label throws at once on the CPU).
#include <omp.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>

#include "engine/ops/losses.h"
#include "engine/ops/softmax.h"
#include "tests/engine/losses_cases.h"
#include "tests/support/compare.h"
#include "tests/support/gradcheck.h"
#include "tests/support/tolerances.h"
#include "tests/support/torch_reference.h"

using namespace strata;
using strata::test::approx;
using strata::test::check_torch_case;
using strata::test::cycling_labels;
using strata::test::kAllReductions;
using strata::test::kF64Scalar;
using strata::test::leaf;
using strata::test::TorchCase;

namespace {

Reduction reduction_of(const TorchCase& c) {
  for (Reduction r : kAllReductions) {
    if (c.text("reduction") == to_string(r)) return r;
  }
  throw Error("unknown reduction '" + c.text("reduction") + "' in " + c.path());
}

int64_t count_valid(const Tensor& labels) {
  int64_t valid = 0;
  for (int64_t y : labels.to_vector<int64_t>()) valid += y != 255;
  return valid;
}

}  // namespace

TEST_CASE("cross_entropy and nll gradcheck: every reduction, (N,H,W,C) and (N,C), ignored pixels", "[gradcheck]") {
  test::check_gradients(test::labelled_loss_cases());
}

TEST_CASE("bce_with_logits and mse gradcheck: both inputs, every reduction", "[gradcheck]") {
  test::check_gradients(test::elementwise_loss_cases());
}

TEST_CASE("the loss cases have ignored and valid pixels", "[cpu]") {
  for (const test::OpCase& c : test::labelled_loss_cases()) {
    INFO(c.name);
    Tensor labels = test::case_inputs(c)[1];
    std::vector<int64_t> y = labels.to_vector<int64_t>();
    const int64_t ignored =
        static_cast<int64_t>(std::count_if(y.begin(), y.end(), [](int64_t v) { return v == 255 || v == -100; }));
    CHECK(ignored > 0);
    CHECK(ignored < labels.numel());
  }
}

TEST_CASE("cross_entropy matches PyTorch: reductions, label dtypes, (N,C), ignore indices", "[torch]") {
  auto ce = [](const std::vector<Tensor>& in, const TorchCase& c) {
    return cross_entropy(in[0], in[1], reduction_of(c), static_cast<int64_t>(c.param("ignore_index")));
  };
  const std::pair<const char*, DType> dtypes[] = {{"u8", DType::u8}, {"i32", DType::i32}, {"i64", DType::i64}};
  for (auto [dtype_name, dtype] : dtypes) {
    for (Reduction r : kAllReductions) {
      std::string name = cat("cross_entropy_", to_string(r), "_", dtype_name);
      CHECK(TorchCase("losses", name)["labels"].dtype() == dtype);
      check_torch_case("losses", name, {"logits", "labels"}, ce);
    }
  }
  for (Reduction r : kAllReductions)
    check_torch_case("losses", cat("cross_entropy_rank2_", to_string(r)), {"logits", "labels"}, ce);
  for (const char* r : {"none", "mean_valid", "mean_all"}) {
    check_torch_case("losses", cat("cross_entropy_large_", r), {"logits", "labels"}, ce);
  }
  for (const char* name :
       {"cross_entropy_shifted", "cross_entropy_all_ignored_mean_valid", "cross_entropy_all_ignored_sum",
        "cross_entropy_ignore_minus100", "cross_entropy_ignore_class0"}) {
    check_torch_case("losses", name, {"logits", "labels"}, ce);
  }
}

TEST_CASE("nll matches PyTorch: reductions, label dtypes, (N,C)", "[torch]") {
  auto f = [](const std::vector<Tensor>& in, const TorchCase& c) {
    return nll(in[0], in[1], reduction_of(c), static_cast<int64_t>(c.param("ignore_index")));
  };
  for (const char* name :
       {"nll_none_u8", "nll_sum_i32", "nll_mean_valid_i64", "nll_mean_all_u8", "nll_all_ignored_mean_valid"}) {
    check_torch_case("losses", name, {"log_probs", "labels"}, f);
  }
  for (Reduction r : kAllReductions)
    check_torch_case("losses", cat("nll_rank2_", to_string(r)), {"log_probs", "labels"}, f);
}

TEST_CASE("bce_with_logits and mse match PyTorch", "[torch]") {
  auto bce = [](const std::vector<Tensor>& in, const TorchCase& c) {
    return bce_with_logits(in[0], in[1], reduction_of(c));
  };
  for (const char* name : {"bce_with_logits_none", "bce_with_logits_sum", "bce_with_logits_mean_all",
                           "bce_with_logits_hard", "bce_with_logits_large", "bce_with_logits_rank2"}) {
    check_torch_case("losses", name, {"logits", "targets"}, bce);
  }
  auto f = [](const std::vector<Tensor>& in, const TorchCase& c) { return mse(in[0], in[1], reduction_of(c)); };
  for (const char* name : {"mse_none", "mse_sum", "mse_mean_all", "mse_rank2"}) {
    check_torch_case("losses", name, {"a", "b"}, f);
  }
}

TEST_CASE("cross_entropy equals nll of log_softmax, forward and gradient", "[cpu]") {
  Generator g(205);
  Tensor labels = cycling_labels({2, 4, 3}, 6, DType::i64);
  for (Reduction r : kAllReductions) {
    INFO("reduction " << to_string(r));
    Tensor fused_in = leaf({2, 4, 3, 6}, g, 3.0);
    Tensor composed_in = fused_in.detach().clone();
    composed_in.set_requires_grad(true);
    Tensor fused = cross_entropy(fused_in, labels, r);
    Tensor composed = nll(log_softmax(composed_in), labels, r);
    CHECK_CLOSE(fused, composed);
    Tensor grad = Tensor::full(fused.shape(), 0.7, DType::f64);
    fused.backward(grad);
    composed.backward(grad);
    CHECK_CLOSE(fused_in.grad(), composed_in.grad());
  }
}

TEST_CASE("cross_entropy reductions: sum, mean over valid pixels, mean over all pixels", "[cpu]") {
  Generator g(206);
  Tensor logits = leaf({2, 5, 3, 4}, g);
  Tensor labels = cycling_labels({2, 5, 3}, 4, DType::u8);
  int64_t valid = count_valid(labels), pixels = labels.numel();
  REQUIRE(valid > 0);
  REQUIRE(valid < pixels);
  std::vector<double> per_pixel = cross_entropy(logits, labels, Reduction::none).to_vector<double>();
  std::vector<int64_t> y = labels.to_vector<int64_t>();
  double total = 0;
  for (size_t i = 0; i < per_pixel.size(); ++i) {
    if (y[i] == 255) CHECK(per_pixel[i] == 0.0);
    if (y[i] != 255) CHECK(per_pixel[i] > 0.0);
    total += per_pixel[i];
  }
  CHECK(cross_entropy(logits, labels, Reduction::sum).item() == approx(total, kF64Scalar));
  CHECK(cross_entropy(logits, labels, Reduction::mean_valid).item() == approx(total / valid, kF64Scalar));
  CHECK(cross_entropy(logits, labels, Reduction::mean_all).item() == approx(total / pixels, kF64Scalar));
  CHECK(cross_entropy(logits, labels, Reduction::sum).shape() == Shape{});
  CHECK(cross_entropy(logits, labels, Reduction::none).shape() == labels.shape());
}

TEST_CASE("cross_entropy and nll with mean_valid and no valid pixel: NaN and a zero gradient", "[cpu]") {
  Generator g(207);
  Tensor logits = leaf({2, 3, 2, 4}, g);
  Tensor labels = Tensor::full({2, 3, 2}, 255, DType::u8);
  Tensor y = cross_entropy(logits, labels, Reduction::mean_valid);
  CHECK(std::isnan(y.item()));
  y.backward();
  for (double v : logits.grad().to_vector<double>()) CHECK(v == 0.0);
  CHECK(std::isnan(nll(logits, labels, Reduction::mean_valid).item()));
  CHECK(cross_entropy(logits, labels, Reduction::sum).item() == 0.0);
  CHECK(cross_entropy(logits, labels, Reduction::mean_all).item() == 0.0);
}

TEST_CASE("cross_entropy and bce_with_logits give the same bits on 1 and 2 threads", "[cpu]") {
  // Large enough for many chunks, so a thread-dependent combination order would show.
  Generator g(208);
  Tensor logits = Tensor::randn({4, 48, 64, 21}, g);
  Tensor labels = cycling_labels({4, 48, 64}, 21, DType::u8);
  Tensor targets = Tensor::uniform(logits.shape(), 0.0, 1.0, g);
  auto run = [&](int threads) {
    omp_set_num_threads(threads);
    Tensor x = logits.clone();
    x.set_requires_grad(true);
    Tensor loss = cross_entropy(x, labels, Reduction::mean_all);
    loss.backward();
    Tensor bce = bce_with_logits(logits, targets, Reduction::sum);
    return std::vector<Tensor>{loss, x.grad(), bce};
  };
  int previous = omp_get_max_threads();
  std::vector<Tensor> one = run(1), two = run(2);
  omp_set_num_threads(previous);
  for (size_t i = 0; i < one.size(); ++i) {
    INFO("result " << i);
    REQUIRE(one[i].nbytes() == two[i].nbytes());
    CHECK(std::memcmp(one[i].raw_data(), two[i].raw_data(), one[i].nbytes()) == 0);
  }
}

TEST_CASE("cross_entropy and log_softmax read channel-narrowed views (MiB's old-class logits)", "[cpu]") {
  Generator g(209);
  Tensor logits = Tensor::randn({2, 3, 4, 7}, g, DType::f64);
  Tensor old_classes = logits.narrow_channels(0, 5);
  REQUIRE_FALSE(old_classes.is_contiguous());
  Tensor labels = cycling_labels({2, 3, 4}, 5, DType::i32);
  CHECK_CLOSE(cross_entropy(old_classes, labels, Reduction::none),
              cross_entropy(old_classes.clone(), labels, Reduction::none));
  CHECK_CLOSE(log_softmax(old_classes), log_softmax(old_classes.clone()));
  CHECK_CLOSE(logsumexp(logits, 0, 5), logsumexp(old_classes.clone(), 0, 5));
}

TEST_CASE("cross_entropy and nll reject bad labels clearly", "[cpu]") {
  Tensor logits = Tensor::zeros({2, 3, 4, 5});
  std::vector<int64_t> v(24, 1);
  v[1 * 12 + 2 * 4 + 3] = 7;  // (n=1, h=2, w=3)
  Tensor out_of_range = Tensor::from_vector(v, {2, 3, 4});
  CHECK_THROWS_WITH(cross_entropy(logits, out_of_range, Reduction::mean_all),
                    Catch::Contains("cross_entropy") && Catch::Contains("label 7") &&
                        Catch::Contains("(n=1, h=2, w=3)") && Catch::Contains("outside [0, 5)") &&
                        Catch::Contains("ignore_index 255"));
  v[1 * 12 + 2 * 4 + 3] = 1;
  v[5] = -1;  // (n=0, h=1, w=1)
  CHECK_THROWS_WITH(nll(logits, Tensor::from_vector(v, {2, 3, 4}).to(DType::i32), Reduction::sum),
                    Catch::Contains("nll") && Catch::Contains("label -1") && Catch::Contains("(n=0, h=1, w=1)"));
  // 255 is a class index, not ignored, once ignore_index is something else.
  CHECK_THROWS_WITH(cross_entropy(Tensor::zeros({4, 3}), Tensor::full({4}, 255, DType::u8), Reduction::sum, -100),
                    Catch::Contains("label 255") && Catch::Contains("(n=0)"));
  CHECK_THROWS_WITH(cross_entropy(logits, Tensor::zeros({2, 4, 3}, DType::i64), Reduction::sum),
                    Catch::Contains("cross_entropy") && Catch::Contains("i64[2,4,3]") &&
                        Catch::Contains("f32[2,3,4,5]") && Catch::Contains("expected labels of shape [2,3,4]"));
  CHECK_THROWS_WITH(cross_entropy(logits, Tensor::zeros({2, 3, 4}), Reduction::sum),
                    Catch::Contains("expected labels of dtype u8, i32 or i64") && Catch::Contains("f32[2,3,4]"));
  CHECK_THROWS_WITH(
      cross_entropy(Tensor::zeros({2, 3, 4, 5}, DType::i32), Tensor::zeros({2, 3, 4}, DType::u8), Reduction::sum),
      Catch::Contains("cross_entropy") && Catch::Contains("logits") && Catch::Contains("f32 or f64"));
  CHECK_THROWS_WITH(cross_entropy(Tensor::zeros({2, 3, 5}), Tensor::zeros({2, 3}, DType::u8), Reduction::sum),
                    Catch::Contains("rank 4 (N,H,W,C) or rank 2 (N,C)") && Catch::Contains("f32[2,3,5]"));
  CHECK_THROWS_WITH(nll(Tensor::zeros({3, 0}), Tensor::zeros({3}, DType::u8), Reduction::sum),
                    Catch::Contains("nll") && Catch::Contains("C = 0"));
  CHECK_THROWS_WITH(nll(logits, Tensor(), Reduction::sum), Catch::Contains("labels is an undefined tensor"));
}

TEST_CASE("bce_with_logits and mse reject bad input clearly", "[cpu]") {
  Tensor a = Tensor::zeros({2, 3, 4, 5});
  CHECK_THROWS_WITH(bce_with_logits(a, a, Reduction::mean_valid), Catch::Contains("bce_with_logits") &&
                                                                      Catch::Contains("mean_valid") &&
                                                                      Catch::Contains("none, sum or mean_all"));
  CHECK_THROWS_WITH(mse(a, a, Reduction::mean_valid), Catch::Contains("mse") && Catch::Contains("mean_valid"));
  CHECK_THROWS_WITH(mse(a, Tensor::zeros({2, 3, 4, 4}), Reduction::sum),
                    Catch::Contains("mse") && Catch::Contains("shapes must match") && Catch::Contains("f32[2,3,4,4]"));
  CHECK_THROWS_WITH(bce_with_logits(a, Tensor::zeros({2, 3, 4, 5}, DType::f64), Reduction::sum),
                    Catch::Contains("bce_with_logits") && Catch::Contains("dtypes must match"));
  CHECK_THROWS_WITH(bce_with_logits(a, Tensor::zeros({2, 3, 4, 5}, DType::u8), Reduction::sum),
                    Catch::Contains("targets") && Catch::Contains("f32 or f64"));
}
