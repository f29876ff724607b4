// PLOP's entropy pseudo-labelling (SPEC-continual.md §3.7 (a)): the two medians on constructed
// histograms (every quirk case of the SPEC), the thresholds' checkpoint state, the threshold pass
// over batches, the device ops and the γ-weighted fused cross-entropy against the PyTorch reference
// (tools/torchref/pseudo_labels.py) in both variants, f64 gradients of the image-weighted fused
// losses, and bad input.
#include <catch2/catch.hpp>
#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "engine/ops/elementwise.h"
#include "engine/ops/fused_losses.h"
#include "engine/ops/pseudo_labels.h"
#include "engine/ops/reduce.h"
#include "incremental/pseudo_labels.h"
#include "tests/support/compare.h"
#include "tests/support/gradcheck.h"
#include "tests/support/leaves.h"
#include "tests/support/torch_reference.h"

using namespace strata;
using namespace strata::incremental;
using strata::test::check_torch_case;
using strata::test::TorchCase;

namespace {

// One class's histogram row: counts[i] at bins[i].
std::vector<int64_t> row(const std::vector<int64_t>& counts, const std::vector<int64_t>& bins = {}) {
  std::vector<int64_t> out(static_cast<size_t>(kEntropyBins), 0);
  for (size_t i = 0; i < counts.size(); ++i) out[static_cast<size_t>(bins.empty() ? int64_t(i) : bins[i])] = counts[i];
  return out;
}

float reference_tau(const std::vector<int64_t>& r) {
  return PseudoLabelThresholds::from_histogram(r, PseudoMedian::reference).values.at(0);
}
float fixed_tau(const std::vector<int64_t>& r) {
  return PseudoLabelThresholds::from_histogram(r, PseudoMedian::fixed).values.at(0);
}

// NaN-aware equality of two float sequences, naming the first difference.
void check_same_floats(const std::vector<float>& actual, const std::vector<float>& expected) {
  REQUIRE(actual.size() == expected.size());
  for (size_t i = 0; i < actual.size(); ++i) {
    INFO("element " << i << ": " << actual[i] << " vs " << expected[i]);
    CHECK((std::isnan(actual[i]) ? std::isnan(expected[i]) : actual[i] == expected[i]));
  }
}

// Image n of a batch (its first dimension) as a tensor of its own.
Tensor image_of(const Tensor& t, int64_t n) {
  Shape shape = t.shape();
  const int64_t per_image = t.numel() / shape[0];
  shape[0] = 1;
  const std::vector<double> all = t.to_vector<double>();
  const std::vector<double> part(all.begin() + n * per_image, all.begin() + (n + 1) * per_image);
  return Tensor::from_vector(part, shape).to(t.dtype());
}

// u8 labels (N,H,W): background (0) about half the pixels, then [1, classes) and some 255.
Tensor step_labels(int64_t n, int64_t h, int64_t w, int64_t classes, uint64_t seed) {
  Generator g(seed);
  const std::vector<double> u = Tensor::uniform({n * h * w}, 0.0, 1.0, g, DType::f64).to_vector<double>();
  std::vector<uint8_t> v(u.size());
  for (size_t i = 0; i < u.size(); ++i) {
    v[i] = u[i] < 0.5   ? 0
           : u[i] > 0.9 ? 255
                        : static_cast<uint8_t>(1 + static_cast<int64_t>((u[i] - 0.5) / 0.4 * (classes - 1)));
  }
  return Tensor::from_vector(v, {n, h, w});
}

PseudoLabelOptions options_of(const TorchCase& c) {
  PseudoLabelOptions options;
  options.total_channels = static_cast<int64_t>(c.param("total_channels"));
  options.median = c.text("median") == "fixed" ? PseudoMedian::fixed : PseudoMedian::reference;
  return options;
}

}  // namespace

// ---- the medians ----------------------------------------------------------------------------------

TEST_CASE("pseudo-label thresholds: the reference median reproduces PLOP's arithmetic, quirks included", "[cpu]") {
  // Bin 0 holds at least half: the loop's answer is right, 0.01 * (N/2) / hist[0].
  CHECK(reference_tau(row({60, 40})) == Approx(0.01 * 50.0 / 60.0).epsilon(1e-6));
  CHECK(reference_tau(row({100})) == Approx(0.005).epsilon(1e-6));
  // Bin 0 under half: the running sum adds bin indices, 0.018333 where the true median is 0.011667.
  CHECK(reference_tau(row({40, 60})) == Approx(0.01 + 0.01 * 50.0 / 60.0).epsilon(1e-6));
  // Past the last non-empty bin the loop runs to the end: (half - 4950) / 0 = -inf, floored.
  CHECK(reference_tau(row({40, 30, 30})) == 0.001f);
  // It stops on an empty bin: 0 / 0 = NaN, which Python's max(NaN, 0.001) keeps.
  CHECK(std::isnan(reference_tau(row({40, 25, 25}))));
  // No pixel of the class: 0, floored.
  CHECK(reference_tau(row({})) == 0.001f);
  // Step 29 reads bin int(0.29 * 100) = 28: the count there decides, not bin 29's (empty: inf).
  CHECK(reference_tau(row({10, 810}, {28, 99})) == Approx(0.29 + 0.01 * 4.0 / 10.0).epsilon(1e-6));
  // It runs to the end with half above the final running sum 4950 and bin 99 empty: +inf, kept.
  std::vector<int64_t> to_the_end = row({5000}, {0});
  for (int64_t b = 10; b <= 16; ++b) to_the_end[static_cast<size_t>(b)] = 1000;
  CHECK(std::isinf(reference_tau(to_the_end)));
  CHECK(reference_tau(to_the_end) > 0);
  // The raw values before the floor.
  const std::vector<int64_t> past_end = row({40, 30, 30});
  CHECK(std::isinf(reference_histogram_median(past_end.data(), kEntropyBins)));
  CHECK(reference_histogram_median(past_end.data(), kEntropyBins) < 0);
}

TEST_CASE("pseudo-label thresholds: the fixed median is the histogram's true median", "[cpu]") {
  CHECK(fixed_tau(row({60, 40})) == Approx(0.01 * 50.0 / 60.0).epsilon(1e-6));
  CHECK(fixed_tau(row({40, 60})) == Approx((1 + 10.0 / 60.0) / 100).epsilon(1e-6));
  CHECK(fixed_tau(row({40, 30, 30})) == Approx((1 + 10.0 / 30.0) / 100).epsilon(1e-6));
  CHECK(fixed_tau(row({40, 25, 25})) == Approx((1 + 5.0 / 25.0) / 100).epsilon(1e-6));
  CHECK(fixed_tau(row({10, 810}, {28, 99})) == Approx((99 + 400.0 / 810.0) / 100).epsilon(1e-6));
  CHECK(fixed_tau(row({1, 1}, {20, 70})) == Approx(0.21).epsilon(1e-6));
  CHECK(fixed_tau(row({})) == 0.001f);
  CHECK(fixed_tau(row({100})) == Approx(0.005).epsilon(1e-6));
}

TEST_CASE("pseudo-label thresholds: both medians match the PyTorch reference on constructed histograms", "[torch]") {
  const TorchCase c("pseudo_labels", "medians");
  const std::vector<int64_t> histogram = c["histogram"].to_vector<int64_t>();
  for (PseudoMedian median : {PseudoMedian::reference, PseudoMedian::fixed}) {
    INFO("median " << to_string(median));
    check_same_floats(PseudoLabelThresholds::from_histogram(histogram, median).values,
                      c[to_string(median)].to_vector<float>());
  }
}

TEST_CASE("pseudo-label thresholds: the checkpoint state round-trips, NaN included, and stays finite", "[cpu]") {
  PseudoLabelThresholds tau;
  tau.median = PseudoMedian::reference;
  tau.values = {0.001f, NAN, 0.0183333f, INFINITY, -INFINITY, 0.5f};
  const TensorMap state = tau.state();
  for (const auto& [name, t] : state) {
    for (double v : t.to_vector<double>()) CHECK(std::isfinite(v));
  }
  const PseudoLabelThresholds back = PseudoLabelThresholds::from_state(state, "step-1.safetensors");
  CHECK(back.median == PseudoMedian::reference);
  check_same_floats(back.values, tau.values);
  tau.median = PseudoMedian::fixed;
  CHECK(PseudoLabelThresholds::from_state(tau.state(), "x").median == PseudoMedian::fixed);

  TensorMap missing = state;
  missing.erase("pseudo_thresholds");
  CHECK_THROWS_WITH(PseudoLabelThresholds::from_state(missing, "ckpt.safetensors"),
                    Catch::Contains("ckpt.safetensors") && Catch::Contains("pseudo_thresholds"));
  TensorMap wrong = state;
  wrong["pseudo_median"] = Tensor::from_vector(std::vector<int64_t>{2}, {1});
  CHECK_THROWS_WITH(PseudoLabelThresholds::from_state(wrong, "ckpt"), Catch::Contains("pseudo_median"));
  wrong = state;
  wrong["pseudo_thresholds"] = Tensor::from_vector(std::vector<double>{0.1, 0.2}, {2});
  CHECK_THROWS_WITH(PseudoLabelThresholds::from_state(wrong, "ckpt"), Catch::Contains("expected f32"));
  wrong = state;
  wrong["pseudo_thresholds"] = Tensor::from_vector(std::vector<float>{0.1f, INFINITY, 0, 0, 0, 0}, {6});
  CHECK_THROWS_WITH(PseudoLabelThresholds::from_state(wrong, "ckpt"), Catch::Contains("finite"));
  wrong = state;
  wrong["pseudo_threshold_kinds"] = Tensor::from_vector(std::vector<int64_t>{0, 1, 0, 4, 0, 0}, {6});
  CHECK_THROWS_WITH(PseudoLabelThresholds::from_state(wrong, "ckpt"), Catch::Contains("holds 4 at class 3"));
  wrong["pseudo_threshold_kinds"] = Tensor::from_vector(std::vector<int64_t>{0, 1}, {2});
  CHECK_THROWS_WITH(PseudoLabelThresholds::from_state(wrong, "ckpt"), Catch::Contains("pseudo_threshold_kinds"));
}

TEST_CASE("pseudo-label thresholds: a malformed histogram is an error", "[cpu]") {
  CHECK_THROWS_WITH(PseudoLabelThresholds::from_histogram(std::vector<int64_t>(150, 1), PseudoMedian::fixed),
                    Catch::Contains("150 counts"));
  CHECK_THROWS_WITH(PseudoLabelThresholds::from_histogram({}, PseudoMedian::fixed), Catch::Contains("0 counts"));
  std::vector<int64_t> negative = row({5});
  negative[3] = -1;
  CHECK_THROWS_WITH(PseudoLabelThresholds::from_histogram(negative, PseudoMedian::reference),
                    Catch::Contains("negative"));
}

// ---- the device ops against PyTorch ------------------------------------------------------------------

TEST_CASE("entropy pseudo-labels: histogram, thresholds, pseudo-labels, γ and the weighted CE match PyTorch",
          "[torch]") {
  for (const char* median : {"reference", "fixed"}) {
    for (int k = 0; k < 3; ++k) {
      const std::string name = cat("plop_", median, "_", k);
      INFO("case " << name);
      const TorchCase c("pseudo_labels", name);
      const PseudoLabelOptions options = options_of(c);
      const Tensor& teacher = c["teacher_logits"];
      const Tensor& labels = c["labels"];
      const int64_t old = teacher.size(3);
      // The histogram, accumulated image by image, is the reference's of the whole batch.
      Tensor histogram = Tensor::zeros({old, kEntropyBins}, DType::i64);
      for (int64_t n = 0; n < teacher.size(0); ++n) {
        accumulate_entropy_histogram(histogram, image_of(teacher, n), image_of(labels, n), options);
      }
      CHECK(histogram.to_vector<int64_t>() == c["histogram"].to_vector<int64_t>());
      const PseudoLabelThresholds tau =
          PseudoLabelThresholds::from_histogram(histogram.to_vector<int64_t>(), options.median);
      check_same_floats(tau.values, c["thresholds"].to_vector<float>());
      const PseudoLabels pseudo = entropy_pseudo_labels(teacher, labels, c["thresholds"], options);
      CHECK(pseudo.labels.dtype() == DType::u8);
      CHECK(pseudo.labels.to_vector<int64_t>() == c["pseudo_labels"].to_vector<int64_t>());
      CHECK_CLOSE(pseudo.image_weights, c["image_weights"]);
      check_torch_case("pseudo_labels", name, {"logits", "pseudo_labels", "image_weights"},
                       [&](const std::vector<Tensor>& in, const TorchCase&) {
                         FusedLossOptions fused;
                         fused.old_channels = old;
                         fused.image_weights = in[2];
                         return fused_losses(in[0], Tensor(), in[1], {{PixelLoss::cross_entropy}}, fused).reshape({});
                       });
    }
  }
}

// ---- the threshold pass -----------------------------------------------------------------------------

TEST_CASE("pseudo-label thresholds: the pass over batches equals the thresholds of all their pixels", "[cpu]") {
  Generator g(3);
  const int64_t old = 5, total = 7;
  const Tensor teacher = scale(Tensor::randn({6, 3, 4, old}, g), 3.0);
  const Tensor labels = step_labels(6, 9, 11, total, 4);
  for (PseudoMedian median : {PseudoMedian::reference, PseudoMedian::fixed}) {
    INFO("median " << to_string(median));
    PseudoLabelOptions options;
    options.total_channels = total;
    options.median = median;
    Tensor whole = Tensor::zeros({old, kEntropyBins}, DType::i64);
    accumulate_entropy_histogram(whole, teacher, labels, options);
    const PseudoLabelThresholds expected = PseudoLabelThresholds::from_histogram(whole.to_vector<int64_t>(), median);
    // Three batches of two images; the "images" are the batch's index, the teacher looks it up.
    int64_t next_batch = 0;
    std::vector<int64_t> progress;
    const PseudoLabelThresholds tau = compute_pseudo_label_thresholds(
        [&]() -> std::optional<ThresholdBatch> {
          if (next_batch == 3) return std::nullopt;
          const int64_t b = next_batch++;
          Tensor pair_labels = Tensor::empty({2, 9, 11}, DType::u8);
          const std::vector<uint8_t> all = labels.to_vector<uint8_t>();
          std::copy(all.begin() + b * 2 * 99, all.begin() + (b + 1) * 2 * 99, pair_labels.data<uint8_t>());
          return ThresholdBatch{Tensor::scalar(static_cast<double>(b)), pair_labels};
        },
        [&](const Tensor& images) {
          const int64_t b = static_cast<int64_t>(images.item());
          Tensor out = Tensor::empty({2, 3, 4, old});
          const std::vector<float> all = teacher.to_vector<float>();
          std::copy(all.begin() + b * 2 * 12 * old, all.begin() + (b + 1) * 2 * 12 * old, out.data<float>());
          return out;
        },
        options, [&](int64_t done) { progress.push_back(done); });
    CHECK(tau.median == median);
    check_same_floats(tau.values, expected.values);
    CHECK(progress == std::vector<int64_t>{1, 2, 3});
  }
  PseudoLabelOptions options;
  options.total_channels = total;
  CHECK_THROWS_WITH(compute_pseudo_label_thresholds([] { return std::optional<ThresholdBatch>(); },
                                                    [](const Tensor& t) { return t; }, options),
                    Catch::Contains("no batch"));
  CHECK_THROWS_WITH(compute_pseudo_label_thresholds(
                        [] {
                          return std::optional<ThresholdBatch>(ThresholdBatch{Tensor(), Tensor()});
                        },
                        [](const Tensor&) {
                          return Tensor::zeros({2, 3});
                        },
                        options),
                    Catch::Contains("teacher returned"));
}

// ---- the image-weighted fused losses -----------------------------------------------------------------

TEST_CASE("fused losses: image weights multiply each image's per-pixel losses", "[cpu]") {
  Generator g(8);
  const int64_t old = 3, total = 5;
  const Tensor low = Tensor::randn({2, 3, 4, total}, g);
  const Tensor labels = step_labels(2, 7, 9, total, 9);
  FusedLossOptions options;
  options.old_channels = old;
  const std::vector<FusedLossTerm> terms = {{PixelLoss::cross_entropy, 1.0, Reduction::mean_all},
                                            {PixelLoss::unbiased_cross_entropy, 2.0, Reduction::sum}};
  const std::vector<double> unweighted = fused_losses(low, Tensor(), labels, terms, options).to_vector<double>();
  options.image_weights = Tensor::ones({2});
  CHECK(fused_losses(low, Tensor(), labels, terms, options).to_vector<double>() == unweighted);
  // Weights (w0, w1): w0 times image 0's sums plus w1 times image 1's, each over the batch's pixels.
  FusedLossOptions alone;
  alone.old_channels = old;
  std::vector<double> image_sums[2];
  for (int64_t n = 0; n < 2; ++n) {
    image_sums[n] = fused_losses(image_of(low, n), Tensor(), image_of(labels, n), terms, alone).to_vector<double>();
    image_sums[n][0] /= 2;  // mean_all over one image's pixels -> over the batch's
  }
  options.image_weights = Tensor::from_vector(std::vector<float>{0.25f, 1.5f}, {2});
  const std::vector<double> weighted = fused_losses(low, Tensor(), labels, terms, options).to_vector<double>();
  for (size_t k = 0; k < terms.size(); ++k) {
    INFO("term " << k);
    CHECK(weighted[k] == Approx(0.25 * image_sums[0][k] + 1.5 * image_sums[1][k]).epsilon(1e-5));
  }
}

TEST_CASE("fused losses: image-weighted f64 gradients match finite differences", "[cpu][gradcheck]") {
  Generator g(11);
  const int64_t old = 3, total = 5;
  const Tensor low = test::leaf({2, 2, 3, total}, g, 1.5);
  const Tensor teacher_low = test::leaf({2, 2, 3, old}, g, 2.0).detach();
  const Tensor labels = step_labels(2, 5, 7, total, 12);
  for (bool align_corners : {false, true}) {
    FusedLossOptions options;
    options.old_channels = old;
    options.align_corners = align_corners;
    options.image_weights = Tensor::from_vector(std::vector<double>{0.3, 0.8}, {2});
    const std::vector<FusedLossTerm> terms = {{PixelLoss::cross_entropy, 1.0, Reduction::mean_all},
                                              {PixelLoss::unbiased_knowledge_distillation, 0.5, Reduction::sum}};
    INFO("align_corners " << align_corners);
    CHECK_GRADCHECK(
        [&](const std::vector<Tensor>& in) { return sum(fused_losses(in[0], teacher_low, in[1], terms, options)); },
        {low, labels});
  }
}

// ---- bad input -------------------------------------------------------------------------------------

TEST_CASE("entropy pseudo-labels: bad input is an error naming the tensor or option", "[cpu]") {
  Generator g(5);
  const Tensor teacher = Tensor::randn({2, 3, 4, 3}, g);
  const Tensor labels = step_labels(2, 5, 6, 5, 6);
  PseudoLabelOptions options;
  options.total_channels = 5;
  Tensor histogram = Tensor::zeros({3, kEntropyBins}, DType::i64);
  const Tensor tau = Tensor::full({3}, 0.5);
  CHECK_NOTHROW(accumulate_entropy_histogram(histogram, teacher, labels, options));
  CHECK_NOTHROW(entropy_pseudo_labels(teacher, labels, tau, options));
  CHECK_THROWS_WITH(accumulate_entropy_histogram(Tensor::zeros({3, 50}, DType::i64), teacher, labels, options),
                    Catch::Contains("histogram is"));
  CHECK_THROWS_WITH(accumulate_entropy_histogram(Tensor::zeros({3, kEntropyBins}), teacher, labels, options),
                    Catch::Contains("histogram is"));
  CHECK_THROWS_WITH(accumulate_entropy_histogram(Tensor::zeros({1, kEntropyBins}, DType::i64),
                                                 Tensor::randn({2, 3, 4, 1}, g), labels, options),
                    Catch::Contains("at least 2"));
  CHECK_THROWS_WITH(entropy_pseudo_labels(teacher, step_labels(3, 5, 6, 5, 6), tau, options),
                    Catch::Contains("teacher's N = 2"));
  CHECK_THROWS_WITH(entropy_pseudo_labels(teacher, labels.to(DType::f32), tau, options),
                    Catch::Contains("u8, i32 or i64"));
  CHECK_THROWS_WITH(entropy_pseudo_labels(teacher, labels, Tensor::full({4}, 0.5), options),
                    Catch::Contains("thresholds are"));
  CHECK_THROWS_WITH(entropy_pseudo_labels(teacher, labels, Tensor::full({3}, 0.5, DType::f64), options),
                    Catch::Contains("thresholds"));
  PseudoLabelOptions few = options;
  few.total_channels = 2;
  CHECK_THROWS_WITH(entropy_pseudo_labels(teacher, labels, tau, few), Catch::Contains("total_channels"));
  PseudoLabelOptions inside = options;
  inside.ignore_index = 4;
  CHECK_THROWS_WITH(entropy_pseudo_labels(teacher, labels, tau, inside), Catch::Contains("ignore_index"));
  FusedLossOptions fused;
  fused.image_weights = Tensor::ones({3});
  CHECK_THROWS_WITH(fused_losses(Tensor::randn({2, 3, 4, 5}, g), Tensor(), labels, {{PixelLoss::cross_entropy}}, fused),
                    Catch::Contains("image_weights are"));
}

TEST_CASE("entropy pseudo-labels: +inf thresholds take the teacher's argmax, NaN ones reject, γ follows", "[cpu]") {
  // Teacher (1,1,1,3) constant over the image: argmax class 2 everywhere.
  const Tensor teacher = Tensor::from_vector(std::vector<float>{0.5f, -1.0f, 2.0f, 0.5f, -1.0f, 2.0f}, {2, 1, 1, 3});
  // Image 0: background, an old class (1, below C_old), a new class (4), ignored; image 1: no background.
  const Tensor labels = Tensor::from_vector(std::vector<uint8_t>{0, 1, 4, 255, 4, 3, 255, 4}, {2, 1, 4});
  PseudoLabelOptions options;
  options.total_channels = 5;
  const PseudoLabels always = entropy_pseudo_labels(teacher, labels, Tensor::full({3}, INFINITY), options);
  CHECK(always.labels.to_vector<int64_t>() == std::vector<int64_t>{2, 2, 4, 255, 4, 3, 255, 4});
  CHECK(always.image_weights.to_vector<double>()[0] == Approx(2.0 / (2.0 + 1e-6)));
  CHECK(always.image_weights.to_vector<double>()[1] == 0.0);  // no background: γ = 0
  const PseudoLabels never = entropy_pseudo_labels(teacher, labels, Tensor::full({3}, NAN), options);
  CHECK(never.labels.to_vector<int64_t>() == std::vector<int64_t>{255, 255, 4, 255, 4, 3, 255, 4});
  CHECK(never.image_weights.to_vector<double>() == std::vector<double>{0.0, 0.0});
}
