// EWC, PI and RW (incremental/regularizer.h, SPEC-continual.md §3.6) on one parameter tensor: the
// importance over several iterations, the importance handed to the next step and the penalty with its
// gradient against tools/torchref/weight_regularizers.py (step 0 and step 1, normalised or not); a
// resumed regulariser continues with the same bits; and the bad input: a previous step without the
// importance (naming the checkpoint and its method), state of another method, a missing accumulator.
#include <catch2/catch.hpp>
#include <cstring>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "incremental/regularizer.h"
#include "tests/support/compare.h"
#include "tests/support/torch_reference.h"

using namespace strata;
using namespace strata::incremental;
using strata::test::TorchCase;

namespace {

// Row t of a (T, ...) tensor, as a tensor of the remaining shape.
Tensor row(const Tensor& stacked, int64_t t) {
  Shape shape(stacked.shape().begin() + 1, stacked.shape().end());
  const std::vector<float> all = stacked.to_vector<float>();
  const int64_t n = stacked.numel() / stacked.size(0);
  return Tensor::from_vector(std::vector<float>(all.begin() + t * n, all.begin() + (t + 1) * n), shape);
}

RegularizerKind kind_of(const std::string& name) {
  return name == "ewc" ? RegularizerKind::ewc : name == "pi" ? RegularizerKind::pi : RegularizerKind::rw;
}

// θ moved to `value` as SGD would (in place, not recorded), with gradient `grad`.
void place(Tensor& theta, const Tensor& value, const Tensor& grad) {
  {
    autograd::NoGradGuard no_grad;
    theta.detach().copy_(value);
  }
  theta.set_grad(grad);
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() && std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0;
}

}  // namespace

TEST_CASE("EWC, PI and RW importance and penalty match the PyTorch formulas over several iterations", "[torch]") {
  for (const char* name : {"ewc_step0", "ewc_step1", "ewc_step1_unnormalized", "pi_step0", "pi_step1",
                           "pi_step1_unnormalized", "rw_step0", "rw_step1", "rw_step1_unnormalized"}) {
    INFO(name);
    const TorchCase c("weight_regularizers", name);
    RegularizerSettings settings;
    settings.kind = kind_of(c.text("kind"));
    settings.importance = c.param("importance");
    settings.alpha = c.param("alpha");
    settings.iterations = static_cast<int64_t>(c.param("iterations"));
    settings.normalize = c.param("normalize") != 0;
    const int step = static_cast<int>(c.param("step"));
    const int64_t iterations = static_cast<int64_t>(c.param("T"));

    Tensor theta = row(c["thetas"], 0);
    theta.set_requires_grad(true);
    TensorMap previous_weights;
    PreviousMethod previous{{}, "EWC (ewc x500)"};
    if (step == 1) {
      previous_weights.emplace("w", c["anchor"]);
      previous.state.emplace("fisher.w", c["old_fisher"]);
      previous.state.emplace("score.w", c["old_score"]);
    }
    WeightRegularizer regularizer(settings, {{"w", theta}}, step, step == 1 ? &previous_weights : nullptr, previous,
                                  "the case's previous step");
    for (int64_t t = 0; t < iterations; ++t) {
      place(theta, row(c["thetas"], t), row(c["grads"], t));
      regularizer.update();
    }
    place(theta, row(c["thetas"], iterations), Tensor());
    const TensorMap state = regularizer.state();
    auto check_state = [&](const std::string& key, const std::string& reference) {
      INFO(key);
      REQUIRE(state.count(key) == 1);
      CHECK_CLOSE(state.at(key), c[reference]);
    };
    if (c.has("fisher")) check_state("fisher.w", "fisher");
    if (settings.kind == RegularizerKind::pi) check_state("delta.w", "path");
    if (settings.kind == RegularizerKind::rw) check_state("path.w", "path");
    if (c.has("previous")) check_state("previous.w", "previous");
    if (c.has("score")) check_state("score.w", "score");
    CHECK(state.count("score.w") == (settings.kind == RegularizerKind::ewc ? 0u : 1u));

    const Tensor penalty = regularizer.penalty();
    if (step == 0) {
      CHECK_FALSE(penalty.defined());
      continue;
    }
    REQUIRE(penalty.defined());
    CHECK_CLOSE(penalty, c["penalty"]);
    penalty.backward();
    CHECK_CLOSE(theta.grad(), c["grad.theta"]);
  }
}

TEST_CASE("a regulariser restored from its state continues with the same bits as one never stopped", "[cpu]") {
  for (RegularizerKind kind : {RegularizerKind::ewc, RegularizerKind::pi, RegularizerKind::rw}) {
    INFO(regularizer_name(kind));
    RegularizerSettings settings;
    settings.kind = kind;
    settings.importance = 10;
    settings.iterations = 3;
    Generator g(11);
    const Tensor start = Tensor::randn({4, 3}, g);
    std::vector<Tensor> points, grads;
    for (int t = 0; t < 9; ++t) {
      points.push_back(Tensor::randn({4, 3}, g));
      grads.push_back(Tensor::randn({4, 3}, g));
    }
    auto fresh = [&](Tensor& theta) {
      theta = start.clone();
      theta.set_requires_grad(true);
      return WeightRegularizer(settings, {{"w", theta}}, 0, nullptr, {}, "none");
    };
    Tensor a, b;
    WeightRegularizer whole = fresh(a);
    for (int t = 0; t < 9; ++t) {
      place(a, points[t], grads[t]);
      whole.update();
    }
    // Stopped after 5 updates (at a point RW does not remember), restored into a new one.
    WeightRegularizer first = fresh(b);
    for (int t = 0; t < 5; ++t) {
      place(b, points[t], grads[t]);
      first.update();
    }
    const TensorMap saved = first.state();
    Tensor c;
    WeightRegularizer resumed = fresh(c);
    resumed.load_state(saved, "saved", 5);
    for (int t = 5; t < 9; ++t) {
      place(c, points[t], grads[t]);
      resumed.update();
    }
    const TensorMap expected = whole.state(), got = resumed.state();
    REQUIRE(expected.size() == got.size());
    for (const auto& [key, t] : expected) {
      INFO(key);
      REQUIRE(got.count(key) == 1);
      CHECK(same_bits(got.at(key), t));
    }
  }
}

TEST_CASE("a regulariser refuses a previous step without its importance and state it does not carry", "[cpu]") {
  Tensor theta = Tensor::ones({2, 2});
  theta.set_requires_grad(true);
  const TensorMap previous_weights = {{"w", Tensor::zeros({2, 2})}};
  RegularizerSettings ewc;
  ewc.kind = RegularizerKind::ewc;
  ewc.importance = 500;
  // The references train on silently here; strata names the checkpoint and what trained it.
  CHECK_THROWS_WITH(
      WeightRegularizer(ewc, {{"w", theta}}, 1, &previous_weights, {{}, "FT (ce only)"}, "run/step0.safetensors"),
      Catch::Contains("run/step0.safetensors holds no EWC importance") && Catch::Contains("FT (ce only)") &&
          Catch::Contains("--method EWC"));
  // PI needs the score, which an EWC step does not write.
  RegularizerSettings pi = ewc;
  pi.kind = RegularizerKind::pi;
  const PreviousMethod from_ewc{{{"fisher.w", Tensor::ones({2, 2})}}, "EWC (ewc x500 alpha 0.9)"};
  CHECK_THROWS_WITH(
      WeightRegularizer(pi, {{"w", theta}}, 1, &previous_weights, from_ewc, "step0.safetensors"),
      Catch::Contains("holds no PI importance ('score.*'") && Catch::Contains("EWC (ewc x500 alpha 0.9)"));
  // A parameter of the old model without its importance.
  const TensorMap two = {{"w", Tensor::zeros({2, 2})}, {"v", Tensor::zeros({3})}};
  Tensor v = Tensor::ones({3});
  v.set_requires_grad(true);
  CHECK_THROWS_WITH(WeightRegularizer(ewc, {{"w", theta}, {"v", v}}, 1, &two, from_ewc, "step0.safetensors"),
                    Catch::Contains("none for the parameter 'v'"));
  // Resuming: state of another method, or an accumulator missing.
  WeightRegularizer step0(ewc, {{"w", theta}}, 0, nullptr, {}, "none");
  CHECK_THROWS_WITH(
      step0.load_state({{"fisher.w", Tensor::ones({2, 2})}, {"delta.w", Tensor::ones({2, 2})}}, "mid.safetensors", 3),
      Catch::Contains("mid.safetensors") && Catch::Contains("'delta.w'") && Catch::Contains("another method"));
  CHECK_THROWS_WITH(step0.load_state({}, "mid.safetensors", 3),
                    Catch::Contains("mid.safetensors: EWC state 'fisher.w' is missing"));
}

TEST_CASE("min-max normalisation maps each tensor onto [0, 1]", "[cpu]") {
  const Tensor m = Tensor::from_vector<float>({2, 4, 3, 6}, {4});
  const std::vector<float> n = min_max_normalized(m).to_vector<float>();
  CHECK(n[0] == 0.0f);
  CHECK(n[1] == Approx(0.5).epsilon(1e-6));
  CHECK(n[3] == Approx(1.0).epsilon(1e-6));
  // A constant tensor becomes zeros, not NaN (the 1e-8).
  for (float v : min_max_normalized(Tensor::full({3}, 7.0)).to_vector<float>()) CHECK(v == 0.0f);
}

TEST_CASE("the fused update and penalty equal update(), penalty() and its backward, iteration by iteration", "[cpu]") {
  for (RegularizerKind kind : {RegularizerKind::ewc, RegularizerKind::pi, RegularizerKind::rw}) {
    INFO(regularizer_name(kind));
    RegularizerSettings settings;
    settings.kind = kind;
    settings.importance = 50;
    settings.iterations = 2;
    Generator g(23);
    const Tensor start = Tensor::randn({5, 4}, g), fresh_start = Tensor::randn({3}, g);
    // "w" exists in the previous model and is penalised; "new" (a new classifier) is not.
    const TensorMap previous_weights = {{"w", Tensor::randn({5, 4}, g)}};
    const PreviousMethod previous{
        {{"fisher.w", Tensor::uniform({5, 4}, 0.0, 2.0, g)}, {"score.w", Tensor::uniform({5, 4}, 0.0, 3.0, g)}},
        "the same method"};
    auto make = [&](Tensor& w, Tensor& fresh) {
      w = start.clone();
      fresh = fresh_start.clone();
      w.set_requires_grad(true);
      fresh.set_requires_grad(true);
      return WeightRegularizer(settings, {{"w", w}, {"new", fresh}}, 1, &previous_weights, previous, "previous");
    };
    Tensor wa, fa, wb, fb;
    WeightRegularizer separate = make(wa, fa), fused = make(wb, fb);
    for (int t = 0; t < 5; ++t) {
      INFO("iteration " << t);
      const Tensor point = Tensor::randn({5, 4}, g), grad = Tensor::randn({5, 4}, g),
                   fresh_grad = Tensor::randn({3}, g);
      place(wa, point, grad);
      place(wb, point, grad);
      place(fa, fresh_start, fresh_grad);
      place(fb, fresh_start, fresh_grad);
      separate.update();
      const Tensor expected = separate.penalty();
      expected.backward();
      const Tensor got = fused.update_and_penalize();
      REQUIRE(got.defined());
      CHECK_FALSE(got.requires_grad());
      CHECK_CLOSE(got, expected.detach());
      CHECK_CLOSE(wb.grad(), wa.grad());
      CHECK(same_bits(fb.grad(), fa.grad()));  // not penalised: its gradient untouched
    }
    // The same formulas; the compiler may contract their multiply-adds differently in the two kernels.
    const TensorMap a = separate.state(), b = fused.state();
    for (const auto& [key, t] : a) {
      INFO(key);
      CHECK_CLOSE(b.at(key), t);
    }
  }
}
