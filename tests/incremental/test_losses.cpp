// Continual losses (incremental/losses.h, SPEC-continual.md §3): parity with the PyTorch formulas of
// tools/torchref/continual_losses.py (forward and gradient, several (C_old, N_new) incl. C_old = 1 and
// N_new = 1, alpha != 1, every reduction), f64 finite-difference gradients, identities that pin the
// channel ranges (unbiased CE = CE when only background is old, unbiased KD = KD when the new
// classes have no mass, zero gradients at the distillation optimum and on channels a loss must not
// touch), the *_from_log_probs variants against the logits-taking losses, the reductions'
// denominators, untouched labels and teachers, and bad input.
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>

#include "engine/ops/channels.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/losses.h"
#include "engine/ops/softmax.h"
#include "incremental/losses.h"
#include "tests/support/compare.h"
#include "tests/support/gradcheck.h"
#include "tests/support/leaves.h"
#include "tests/support/torch_reference.h"
#include "tests/support/tolerances.h"

using namespace strata;
using namespace strata::incremental;
using strata::test::approx;
using strata::test::check_torch_case;
using strata::test::leaf;
using strata::test::TorchCase;

namespace {

constexpr std::pair<int, int> kPairs[] = {{1, 1}, {1, 3}, {3, 1}, {4, 3}, {16, 1}, {6, 5}};  // (C_old, N_new)

Reduction reduction_of(const TorchCase& c) {
  for (Reduction r : {Reduction::none, Reduction::sum, Reduction::mean_valid, Reduction::mean_all}) {
    if (c.text("reduction") == to_string(r)) return r;
  }
  throw Error("unknown reduction '" + c.text("reduction") + "' in " + c.path());
}

// u8 labels (N,H,W) cycling through [0, classes) with roughly every fourth pixel ignored (255).
Tensor cycling_labels(const Shape& shape, int64_t classes) {
  std::vector<uint8_t> v(static_cast<size_t>(shape_numel(shape)));
  for (size_t i = 0; i < v.size(); ++i) {
    int64_t k = static_cast<int64_t>(i * 7 + 2) % (classes + classes / 3 + 1);
    v[i] = static_cast<uint8_t>(k < classes ? k : 255);
  }
  return Tensor::from_vector(v, shape);
}

int64_t count_valid(const Tensor& labels) {
  int64_t valid = 0;
  for (int64_t y : labels.to_vector<int64_t>()) valid += y != 255;
  return valid;
}

std::vector<double> values(const Tensor& t) { return t.to_vector<double>(); }

}  // namespace

// ---- PyTorch parity -------------------------------------------------------------------------------

TEST_CASE("continual KD losses match the PyTorch formulas: C_old, N_new, alpha, reductions", "[torch]") {
  auto kd = [](const std::vector<Tensor>& in, const TorchCase& c) {
    return knowledge_distillation(in[0], in[1], reduction_of(c), c.param("alpha"));
  };
  auto unkd = [](const std::vector<Tensor>& in, const TorchCase& c) {
    return unbiased_knowledge_distillation(in[0], in[1], reduction_of(c), c.param("alpha"));
  };
  auto icarl = [](const std::vector<Tensor>& in, const TorchCase& c) {
    return icarl_distillation(in[0], in[1], reduction_of(c));
  };
  for (auto [c_old, n_new] : kPairs) {
    std::string tag = cat(c_old, "_", n_new);
    for (const char* reduction : {"mean_all", "sum", "none"}) {
      std::vector<const char*> alphas = {"1.0"};
      if (std::string(reduction) == "mean_all") alphas = {"1.0", "0.5", "2.0"};
      if (c_old == 1) alphas.clear();  // both KD losses are identically 0: an identity test covers it
      for (const char* alpha : alphas) {
        std::string suffix = cat(tag, "_", reduction, "_a", alpha);
        TorchCase c("continual_losses", "kd_" + suffix);
        REQUIRE(c["teacher_logits"].size(3) == c_old);
        REQUIRE(c["logits"].size(3) == c_old + n_new);
        check_torch_case("continual_losses", "kd_" + suffix, {"logits", "teacher_logits"}, kd);
        check_torch_case("continual_losses", "unkd_" + suffix, {"logits", "teacher_logits"}, unkd);
      }
      check_torch_case("continual_losses", cat("icarl_distillation_", tag, "_", reduction),
                       {"logits", "teacher_logits"}, icarl);
    }
  }
  check_torch_case("continual_losses", "kd_shifted", {"logits", "teacher_logits"}, kd);
  check_torch_case("continual_losses", "unkd_shifted", {"logits", "teacher_logits"}, unkd);
}

TEST_CASE("distillation under the kd knobs matches PyTorch: temperature, ce, kl, l2, background in and out",
          "[torch]") {
  auto knobs_of = [](const TorchCase& c) {
    DistillationKnobs knobs;
    knobs.temperature = c.param("temperature");
    knobs.loss = c.text("loss") == "kl"   ? DistillationLoss::kl_divergence
                 : c.text("loss") == "l2" ? DistillationLoss::l2
                                          : DistillationLoss::cross_entropy;
    knobs.include_background = c.param("include_background") != 0;
    return knobs;
  };
  auto distil = [&](const std::vector<Tensor>& in, const TorchCase& c) {
    return distillation(in[0], in[1], reduction_of(c), c.param("alpha"), knobs_of(c), c.param("unbiased") != 0);
  };
  int cases = 0;
  for (const char* pair : {"4_3", "6_5"}) {
    for (const char* temperature : {"1.0", "2.5"}) {
      for (const char* loss : {"ce", "kl", "l2"}) {
        for (const char* background : {"bg", "nobg"}) {
          for (const char* unbiased : {"", "_unbiased"}) {
            if (*unbiased && (std::string(loss) == "l2" || std::string(background) == "nobg")) continue;
            check_torch_case("continual_losses",
                             cat("distill_", pair, "_t", temperature, "_", loss, "_", background, unbiased),
                             {"logits", "teacher_logits"}, distil);
            ++cases;
          }
        }
      }
    }
  }
  CHECK(cases == 32);
}

TEST_CASE("distillation with the references' knobs is KD and unbiased KD, and KL is CE less the teacher entropy",
          "[cpu]") {
  Generator g(12);
  const Tensor logits = Tensor::randn({2, 3, 4, 7}, g, DType::f64);
  const Tensor teacher = Tensor::randn({2, 3, 4, 4}, g, DType::f64);
  const DistillationKnobs references;
  CHECK(values(distillation(logits, teacher, Reduction::none, 0.5, references, false)) ==
        values(knowledge_distillation(logits, teacher, Reduction::none, 0.5)));
  CHECK(values(distillation(logits, teacher, Reduction::none, 0.5, references, true)) ==
        values(unbiased_knowledge_distillation(logits, teacher, Reduction::none, 0.5)));
  DistillationKnobs kl;
  kl.loss = DistillationLoss::kl_divergence;
  // A teacher equal to the student's old channels: KL 0, while the soft cross-entropy is the entropy.
  const Tensor same = slice(logits, 0, 4);
  for (double v : values(distillation(same, same, Reduction::none, 1.0, kl, false))) CHECK(std::abs(v) < 1e-15);
  CHECK_CLOSE(distillation(same, same, Reduction::mean_all, 1.0, references, false),
              teacher_entropy(same, Reduction::mean_all));
  // Unbiased KD refuses the knobs it has no form for; too few old channels to leave background out.
  DistillationKnobs l2;
  l2.loss = DistillationLoss::l2;
  CHECK_THROWS_WITH(distillation(logits, teacher, Reduction::mean_all, 1.0, l2, true), Catch::Contains("no L2"));
  DistillationKnobs no_background;
  no_background.include_background = false;
  CHECK_THROWS_WITH(distillation(logits, teacher, Reduction::mean_all, 1.0, no_background, true),
                    Catch::Contains("cannot exclude background"));
  CHECK_THROWS_WITH(distillation(logits, slice(teacher, 0, 1), Reduction::mean_all, 1.0, no_background, false),
                    Catch::Contains("C_old >= 2"));
  DistillationKnobs frozen;
  frozen.temperature = 0;
  CHECK_THROWS_WITH(distillation(logits, teacher, Reduction::mean_all, 1.0, frozen, false),
                    Catch::Contains("temperature must be > 0"));
}

TEST_CASE("unbiased_cross_entropy and icarl_bce match the PyTorch formulas with ignored pixels", "[torch]") {
  auto unce = [](const std::vector<Tensor>& in, const TorchCase& c) {
    return unbiased_cross_entropy(in[0], in[1], static_cast<int64_t>(c.param("old_channels")), reduction_of(c));
  };
  auto bce = [](const std::vector<Tensor>& in, const TorchCase& c) { return icarl_bce(in[0], in[1], reduction_of(c)); };
  for (auto [c_old, n_new] : kPairs) {
    for (const char* reduction : {"mean_all", "mean_valid", "sum", "none"}) {
      std::string suffix = cat(c_old, "_", n_new, "_", reduction);
      TorchCase c("continual_losses", "unce_" + suffix);
      REQUIRE(c["labels"].dtype() == DType::u8);
      REQUIRE(count_valid(c["labels"]) < c["labels"].numel());
      check_torch_case("continual_losses", "unce_" + suffix, {"logits", "labels"}, unce);
      check_torch_case("continual_losses", "icarl_bce_" + suffix, {"logits", "labels"}, bce);
    }
  }
  check_torch_case("continual_losses", "unce_shifted", {"logits", "labels"}, unce);
}

TEST_CASE("icarl_disjoint matches the PyTorch formula: replaced targets, background kept or not, unmasked", "[torch]") {
  auto disjoint = [](const std::vector<Tensor>& in, const TorchCase& c) {
    return icarl_disjoint(in[0], in[1], in[2], reduction_of(c), c.param("keep_background") != 0);
  };
  for (auto [c_old, n_new] : kPairs) {
    for (const char* reduction : {"mean_all", "sum", "none"}) {
      for (const char* bkg : {"", "_bkg"}) {
        const std::string name = cat("icarl_disjoint_", c_old, "_", n_new, "_", reduction, bkg);
        TorchCase c("continual_losses", name);
        REQUIRE(count_valid(c["labels"]) < c["labels"].numel());
        check_torch_case("continual_losses", name, {"logits", "teacher_logits", "labels"}, disjoint);
      }
    }
  }
}

TEST_CASE("feature_distillation matches PyTorch's MSE over all elements", "[torch]") {
  for (const char* reduction : {"mean_all", "sum", "none"}) {
    check_torch_case("continual_losses", cat("feature_distillation_", reduction), {"features", "teacher_features"},
                     [](const std::vector<Tensor>& in, const TorchCase& c) {
                       return feature_distillation(in[0], in[1], reduction_of(c));
                     });
  }
}

// ---- finite differences ---------------------------------------------------------------------------

TEST_CASE("continual losses gradcheck in f64: every loss, edge (C_old, N_new), reductions", "[gradcheck]") {
  Generator g(501);
  for (auto [c_old, n_new] : kPairs) {
    if (c_old + n_new > 10) continue;  // the (16,1) pair adds nothing the smaller ones do not check
    INFO("C_old " << c_old << ", N_new " << n_new);
    const int64_t c_tot = c_old + n_new;
    Tensor logits = leaf({2, 3, 2, c_tot}, g, 2.0);
    Tensor teacher = Tensor::randn({2, 3, 2, c_old}, g, DType::f64);
    Tensor labels = cycling_labels({2, 3, 2}, c_tot);
    for (Reduction r : {Reduction::mean_all, Reduction::sum, Reduction::none}) {
      INFO("reduction " << to_string(r));
      // With C_old = 1 both KD losses are identically 0 (tested below): nothing to differentiate.
      if (c_old > 1) {
        CHECK_GRADCHECK([&](const std::vector<Tensor>& in) { return knowledge_distillation(in[0], teacher, r, 0.7); },
                        {logits});
        CHECK_GRADCHECK(
            [&](const std::vector<Tensor>& in) { return unbiased_knowledge_distillation(in[0], teacher, r, 1.6); },
            {logits});
        CHECK_GRADCHECK(
            [&](const std::vector<Tensor>& in) { return knowledge_distillation_l2(in[0], teacher, r, 0.7); }, {logits});
        DistillationKnobs knobs;
        knobs.temperature = 2.5;
        knobs.loss = DistillationLoss::kl_divergence;
        CHECK_GRADCHECK(
            [&](const std::vector<Tensor>& in) { return distillation(in[0], teacher, r, 0.7, knobs, true); }, {logits});
        knobs.include_background = false;
        knobs.loss = DistillationLoss::l2;
        CHECK_GRADCHECK(
            [&](const std::vector<Tensor>& in) { return distillation(in[0], teacher, r, 0.7, knobs, false); },
            {logits});
      }
      CHECK_GRADCHECK([&](const std::vector<Tensor>& in) { return icarl_distillation(in[0], teacher, r); }, {logits});
      for (bool keep_background : {false, true}) {
        CHECK_GRADCHECK(
            [&](const std::vector<Tensor>& in) { return icarl_disjoint(in[0], teacher, labels, r, keep_background); },
            {logits});
      }
    }
    for (Reduction r : {Reduction::mean_all, Reduction::mean_valid, Reduction::sum, Reduction::none}) {
      INFO("reduction " << to_string(r));
      CHECK_GRADCHECK([&](const std::vector<Tensor>& in) { return unbiased_cross_entropy(in[0], labels, c_old, r); },
                      {logits});
      CHECK_GRADCHECK([&](const std::vector<Tensor>& in) { return icarl_bce(in[0], labels, r); }, {logits});
    }
  }
  Tensor features = leaf({2, 3, 2, 5}, g);
  Tensor teacher_features = Tensor::randn({2, 3, 2, 5}, g, DType::f64);
  for (Reduction r : {Reduction::mean_all, Reduction::sum, Reduction::none}) {
    CHECK_GRADCHECK([&](const std::vector<Tensor>& in) { return feature_distillation(in[0], teacher_features, r); },
                    {features});
  }
}

// ---- identities ---------------------------------------------------------------------------------

TEST_CASE("unbiased_cross_entropy equals cross_entropy when only background is old (C_old = 1)", "[cpu]") {
  Generator g(502);
  Tensor labels = cycling_labels({2, 4, 3}, 5);
  for (Reduction r : {Reduction::none, Reduction::sum, Reduction::mean_valid, Reduction::mean_all}) {
    INFO("reduction " << to_string(r));
    Tensor a = leaf({2, 4, 3, 5}, g, 2.0);
    Tensor b = a.detach().clone();
    b.set_requires_grad(true);
    Tensor unbiased = unbiased_cross_entropy(a, labels, 1, r);
    Tensor plain = cross_entropy(b, labels, r);
    CHECK_CLOSE(unbiased, plain);
    Tensor grad = Tensor::full(plain.shape(), 0.9, DType::f64);
    unbiased.backward(grad);
    plain.backward(grad);
    CHECK_CLOSE(a.grad(), b.grad());
  }
}

TEST_CASE("unbiased_cross_entropy per pixel: old mass for background and old labels, CE for new ones", "[cpu]") {
  Generator g(503);
  const int64_t c_old = 3, c_tot = 6;
  Tensor logits = leaf({2, 3, 4, c_tot}, g, 2.0);
  Tensor labels = cycling_labels({2, 3, 4}, c_tot);
  std::vector<double> unbiased = values(unbiased_cross_entropy(logits, labels, c_old, Reduction::none));
  std::vector<double> plain = values(cross_entropy(logits, labels, Reduction::none));
  std::vector<double> p = values(softmax(logits));
  std::vector<int64_t> y = labels.to_vector<int64_t>();
  int old_pixels = 0, new_pixels = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    INFO("pixel " << i << ", label " << y[i]);
    if (y[i] == 255) {
      CHECK(unbiased[i] == 0.0);
    } else if (y[i] < c_old) {
      double old_mass = 0;
      for (int64_t c = 0; c < c_old; ++c) old_mass += p[i * c_tot + static_cast<size_t>(c)];
      CHECK(unbiased[i] == approx(-std::log(old_mass)));
      ++old_pixels;
    } else {
      CHECK(unbiased[i] == approx(plain[i]));
      ++new_pixels;
    }
  }
  CHECK(old_pixels > 0);
  CHECK(new_pixels > 0);
}

TEST_CASE("the unbiased losses from shared log-probabilities equal the logits-taking ones, bit for bit", "[cpu]") {
  Generator g(507);
  const int64_t c_old = 3, c_tot = 6;
  Tensor logits = leaf({2, 3, 4, c_tot}, g, 2.0);
  Tensor teacher = Tensor::randn({2, 3, 4, c_old}, g, DType::f64);
  Tensor labels = cycling_labels({2, 3, 4}, c_tot);
  for (Reduction r : {Reduction::none, Reduction::sum, Reduction::mean_all}) {
    INFO(to_string(r));
    Tensor log_probs = log_softmax(logits.detach());
    CHECK(values(unbiased_cross_entropy_from_log_probs(log_probs, labels, c_old, r)) ==
          values(unbiased_cross_entropy(logits, labels, c_old, r)));
    CHECK(values(unbiased_knowledge_distillation_from_log_probs(log_probs, teacher, r, 0.5)) ==
          values(unbiased_knowledge_distillation(logits, teacher, r, 0.5)));
  }
  // Gradients flow through the shared log-probabilities to the logits.
  Tensor shared = logits.detach().clone().set_requires_grad(true);
  Tensor log_probs = log_softmax(shared);
  unbiased_cross_entropy_from_log_probs(log_probs, labels, c_old, Reduction::mean_all).backward();
  unbiased_cross_entropy(logits, labels, c_old, Reduction::mean_all).backward();
  CHECK(values(shared.grad()) == values(logits.grad()));
  // Bad input names the loss and log_probs.
  CHECK_THROWS_WITH(unbiased_cross_entropy_from_log_probs(log_probs, labels, c_tot, Reduction::mean_all),
                    Catch::Contains("unbiased_cross_entropy") && Catch::Contains("log_probs") &&
                        Catch::Contains("1 <= C_old < C_tot"));
  CHECK_THROWS_WITH(unbiased_knowledge_distillation_from_log_probs(log_probs, Tensor::zeros({2, 3, 3, 2}, DType::f64),
                                                                   Reduction::mean_all),
                    Catch::Contains("unbiased_knowledge_distillation") && Catch::Contains("log_probs") &&
                        Catch::Contains("differ in N,H,W"));
}

TEST_CASE("unbiased_cross_entropy leaves the caller's labels untouched", "[cpu]") {
  Generator g(504);
  Tensor logits = leaf({2, 3, 4, 6}, g);
  for (DType dtype : {DType::u8, DType::i32, DType::i64}) {
    Tensor labels = cycling_labels({2, 3, 4}, 6).to(dtype);
    std::vector<int64_t> before = labels.to_vector<int64_t>();
    unbiased_cross_entropy(logits, labels, 4, Reduction::mean_all).backward();
    CHECK(labels.to_vector<int64_t>() == before);
  }
}

TEST_CASE("unbiased KD equals KD when the new channels carry no probability", "[cpu]") {
  Generator g(505);
  Tensor teacher = Tensor::randn({2, 3, 2, 4}, g, DType::f64);
  Tensor old_part = Tensor::randn({2, 3, 2, 4}, g, DType::f64);
  // exp(-1e4 - max) underflows to exactly 0 in f64: p̂_0 = p_0 and the softmax is over the old channels.
  Tensor logits_a = concat({old_part, Tensor::full({2, 3, 2, 3}, -1e4, DType::f64)});
  logits_a.set_requires_grad(true);
  Tensor logits_b = logits_a.detach().clone();
  logits_b.set_requires_grad(true);
  for (double alpha : {1.0, 0.5}) {
    Tensor unbiased = unbiased_knowledge_distillation(logits_a, teacher, Reduction::mean_all, alpha);
    Tensor plain = knowledge_distillation(logits_b, teacher, Reduction::mean_all, alpha);
    CHECK_CLOSE(unbiased, plain);
    logits_a.set_grad(Tensor());
    logits_b.set_grad(Tensor());
    unbiased.backward();
    plain.backward();
    CHECK_CLOSE(slice(logits_a.grad(), 0, 4), slice(logits_b.grad(), 0, 4));
  }
}

TEST_CASE("KD and unbiased KD vanish when only background is old (C_old = 1)", "[cpu]") {
  Generator g(506);
  Tensor logits = leaf({2, 3, 2, 4}, g, 2.0);
  Tensor teacher = Tensor::randn({2, 3, 2, 1}, g, DType::f64);
  // One old channel: softmax over it is 1, and the background fold of unbiased KD covers every channel.
  for (double v : values(knowledge_distillation(logits, teacher, Reduction::none))) CHECK(std::abs(v) < 1e-15);
  for (double v : values(unbiased_knowledge_distillation(logits, teacher, Reduction::none))) CHECK(std::abs(v) < 1e-12);
}

TEST_CASE("alpha multiplies the teacher logits before the softmax", "[cpu]") {
  Generator g(507);
  Tensor logits = leaf({2, 3, 2, 6}, g, 2.0);
  Tensor teacher = Tensor::randn({2, 3, 2, 4}, g, DType::f64);
  Tensor scaled = scale(teacher, 2.5);
  CHECK_CLOSE(knowledge_distillation(logits, teacher, Reduction::none, 2.5),
              knowledge_distillation(logits, scaled, Reduction::none, 1.0));
  CHECK_CLOSE(unbiased_knowledge_distillation(logits, teacher, Reduction::none, 2.5),
              unbiased_knowledge_distillation(logits, scaled, Reduction::none, 1.0));
  double a = knowledge_distillation(logits, teacher, Reduction::mean_all, 2.5).item();
  double b = knowledge_distillation(logits, teacher, Reduction::mean_all, 1.0).item();
  CHECK(std::abs(a - b) > 1e-3);
}

TEST_CASE("distillation gradients: zero at the optimum and on the channels each loss must not touch", "[cpu]") {
  Generator g(508);
  const int64_t c_old = 4, c_tot = 7;
  Tensor teacher = Tensor::randn({2, 3, 2, c_old}, g, DType::f64);
  // KD: the student's old-channel softmax equals q = softmax(α·z°) when z_old = α·z° (+ any constant).
  Tensor logits = concat({scale(teacher, 1.5), Tensor::randn({2, 3, 2, c_tot - c_old}, g, DType::f64)});
  logits.set_requires_grad(true);
  knowledge_distillation(logits, teacher, Reduction::mean_all, 1.5).backward();
  for (double v : values(logits.grad())) CHECK(std::abs(v) < 1e-15);

  // iCaRL distillation: d/dz BCE(z, σ(t)) = σ(z) − σ(t) = 0 at z_old = z°; new channels untouched.
  Tensor icarl_logits = concat({teacher, Tensor::randn({2, 3, 2, c_tot - c_old}, g, DType::f64)});
  icarl_logits.set_requires_grad(true);
  icarl_distillation(icarl_logits, teacher, Reduction::mean_all).backward();
  for (double v : values(icarl_logits.grad())) CHECK(std::abs(v) < 1e-15);

  // KD at a random point still never reaches the new channels; unbiased KD does (background fold).
  Tensor random_logits = leaf({2, 3, 2, c_tot}, g, 2.0);
  knowledge_distillation(random_logits, teacher, Reduction::mean_all).backward();
  std::vector<double> grad = values(random_logits.grad());
  double new_norm = 0, old_norm = 0;
  for (size_t i = 0; i < grad.size(); ++i) {
    (static_cast<int64_t>(i) % c_tot < c_old ? old_norm : new_norm) += std::abs(grad[i]);
  }
  CHECK(new_norm == 0.0);
  CHECK(old_norm > 0.0);
  Tensor unbiased_logits = random_logits.detach().clone();
  unbiased_logits.set_requires_grad(true);
  unbiased_knowledge_distillation(unbiased_logits, teacher, Reduction::mean_all).backward();
  new_norm = 0;
  grad = values(unbiased_logits.grad());
  for (size_t i = 0; i < grad.size(); ++i) {
    if (static_cast<int64_t>(i) % c_tot >= c_old) new_norm += std::abs(grad[i]);
  }
  CHECK(new_norm > 0.0);
}

TEST_CASE("teacher tensors receive no gradient", "[cpu]") {
  Generator g(509);
  Tensor logits = leaf({2, 3, 2, 5}, g);
  Tensor teacher = leaf({2, 3, 2, 3}, g);
  Tensor features = leaf({2, 3, 2, 4}, g);
  Tensor teacher_features = leaf({2, 3, 2, 4}, g);
  const Tensor labels = Tensor::from_vector(std::vector<uint8_t>{0, 4, 255, 3, 0, 1, 2, 0, 255, 4, 4, 0}, {2, 3, 2});
  Tensor total = add(add(knowledge_distillation(logits, teacher, Reduction::mean_all),
                         unbiased_knowledge_distillation(logits, teacher, Reduction::mean_all)),
                     add(icarl_distillation(logits, teacher, Reduction::mean_all),
                         feature_distillation(features, teacher_features, Reduction::mean_all)));
  total = add(total, icarl_disjoint(logits, teacher, labels, Reduction::mean_all, true));
  total.backward();
  CHECK(logits.grad().defined());
  CHECK(features.grad().defined());
  CHECK_FALSE(teacher.grad().defined());
  CHECK_FALSE(teacher_features.grad().defined());
}

TEST_CASE("reductions: mean_all divides by every pixel, mean_valid by non-ignored ones", "[cpu]") {
  Generator g(510);
  Tensor logits = leaf({2, 5, 3, 6}, g, 2.0);
  Tensor teacher = Tensor::randn({2, 5, 3, 4}, g, DType::f64);
  Tensor labels = cycling_labels({2, 5, 3}, 6);
  const double pixels = 30, valid = static_cast<double>(count_valid(labels));
  REQUIRE(valid < pixels);
  auto check_labelled = [&](auto loss) {
    std::vector<double> per_pixel = values(loss(Reduction::none));
    std::vector<int64_t> y = labels.to_vector<int64_t>();
    double total = 0;
    for (size_t i = 0; i < y.size(); ++i) {
      if (y[i] == 255) CHECK(per_pixel[i] == 0.0);
      if (y[i] != 255) CHECK(per_pixel[i] > 0.0);
      total += per_pixel[i];
    }
    CHECK(loss(Reduction::sum).item() == approx(total));
    CHECK(loss(Reduction::mean_all).item() == approx(total / pixels));
    CHECK(loss(Reduction::mean_valid).item() == approx(total / valid));
  };
  check_labelled([&](Reduction r) { return unbiased_cross_entropy(logits, labels, 4, r); });
  check_labelled([&](Reduction r) { return icarl_bce(logits, labels, r); });
  for (auto loss : {knowledge_distillation, unbiased_knowledge_distillation}) {
    Tensor none = loss(logits, teacher, Reduction::none, 1.0);
    CHECK(none.shape() == Shape{2, 5, 3});
    double total = 0;
    for (double v : values(none)) total += v;
    CHECK(loss(logits, teacher, Reduction::mean_all, 1.0).item() == approx(total / pixels));
  }
  // iCaRL distillation with mean_all is C_old times the mean BCE over (N,H,W,C_old).
  double mean_bce = 0;
  std::vector<double> z = values(logits), t = values(teacher);
  for (int64_t p = 0; p < 30; ++p) {
    for (int64_t c = 0; c < 4; ++c) {
      double x = z[static_cast<size_t>(p * 6 + c)], target = 1.0 / (1.0 + std::exp(-t[static_cast<size_t>(p * 4 + c)]));
      mean_bce += std::max(x, 0.0) - x * target + std::log1p(std::exp(-std::abs(x)));
    }
  }
  mean_bce /= 30 * 4;
  CHECK(icarl_distillation(logits, teacher, Reduction::mean_all).item() == approx(4 * mean_bce));
}

TEST_CASE("icarl_bce per pixel: the one-hot BCE sum, zero for ignored pixels, all-ignored mean_valid is NaN",
          "[cpu]") {
  Generator g(511);
  Tensor logits = leaf({1, 2, 3, 4}, g, 2.0);
  Tensor labels = Tensor::from_vector(std::vector<uint8_t>{0, 3, 255, 1, 2, 255}, {1, 2, 3});
  std::vector<double> per_pixel = values(icarl_bce(logits, labels, Reduction::none));
  std::vector<double> z = values(logits);
  const int y[] = {0, 3, -1, 1, 2, -1};
  auto softplus = [](double x) { return std::max(x, 0.0) + std::log1p(std::exp(-std::abs(x))); };
  for (size_t i = 0; i < 6; ++i) {
    double expected = 0;
    if (y[i] >= 0) {
      for (int c = 0; c < 4; ++c) expected += c == y[i] ? softplus(-z[i * 4 + c]) : softplus(z[i * 4 + c]);
    }
    CHECK(per_pixel[i] == approx(expected));
  }
  Tensor ignored = Tensor::full({1, 2, 3}, 255, DType::u8);
  Tensor nan = icarl_bce(logits, ignored, Reduction::mean_valid);
  CHECK(std::isnan(nan.item()));
  nan.backward();
  for (double v : values(logits.grad())) CHECK(v == 0.0);
  CHECK(icarl_bce(logits, ignored, Reduction::mean_all).item() == 0.0);
}

TEST_CASE("icarl_disjoint per pixel: old channels against the teacher, the rest one-hot, ignored pixels counted",
          "[cpu]") {
  Generator g(513);
  const int64_t c_old = 2, c_tot = 4;
  Tensor logits = leaf({1, 2, 3, c_tot}, g, 2.0);
  Tensor teacher = Tensor::randn({1, 2, 3, c_old}, g, DType::f64);
  Tensor labels = Tensor::from_vector(std::vector<uint8_t>{0, 3, 255, 2, 0, 255}, {1, 2, 3});
  const std::vector<double> z = values(logits), t = values(teacher);
  const int y[] = {0, 3, -1, 2, 0, -1};
  auto bce = [](double x, double target) { return std::max(x, 0.0) - x * target + std::log1p(std::exp(-std::abs(x))); };
  auto sigmoid = [](double x) { return 1.0 / (1.0 + std::exp(-x)); };
  for (bool keep_background : {false, true}) {
    INFO("keep_background " << keep_background);
    const std::vector<double> per_pixel =
        values(icarl_disjoint(logits, teacher, labels, Reduction::none, keep_background));
    double total = 0;
    for (size_t i = 0; i < 6; ++i) {
      double expected = 0;
      for (int c = 0; c < c_tot; ++c) {
        const double one_hot = c == y[i] ? 1.0 : 0.0;
        const bool from_teacher = c < c_old && !(keep_background && c == 0);
        expected += bce(z[i * c_tot + c], from_teacher ? sigmoid(t[i * c_old + c]) : one_hot);
      }
      CHECK(per_pixel[i] == approx(expected));
      if (y[i] < 0) CHECK(per_pixel[i] > 0.0);  // an ignored pixel still counts
      total += expected;
    }
    CHECK(icarl_disjoint(logits, teacher, labels, Reduction::mean_all, keep_background).item() == approx(total / 6));
  }
  // With no new channel and the background not kept, it is the plain sigmoid distillation.
  Tensor all_old = leaf({1, 2, 3, c_old}, g, 2.0);
  const Tensor old_labels = Tensor::from_vector(std::vector<int64_t>{0, 1, 255, 1, 0, 255}, {1, 2, 3});
  CHECK(icarl_disjoint(all_old, teacher, old_labels, Reduction::mean_all, false).item() ==
        approx(icarl_distillation(all_old, teacher, Reduction::mean_all).item()));
  // Bad input: labels out of range, mean_valid (nothing is masked), a teacher wider than the model.
  std::vector<uint8_t> bad = {0, 7, 1, 1, 1, 1};
  CHECK_THROWS_WITH(icarl_disjoint(logits, teacher, Tensor::from_vector(bad, {1, 2, 3}), Reduction::mean_all, false),
                    Catch::Contains("icarl_disjoint") && Catch::Contains("label 7"));
  CHECK_THROWS_WITH(icarl_disjoint(logits, teacher, labels, Reduction::mean_valid, true),
                    Catch::Contains("icarl_disjoint") && Catch::Contains("mean_valid"));
  CHECK_THROWS_WITH(
      icarl_disjoint(all_old, Tensor::randn({1, 2, 3, 3}, g, DType::f64), old_labels, Reduction::sum, false),
      Catch::Contains("icarl_disjoint") && Catch::Contains("C_old = 3"));
}

TEST_CASE("feature_distillation is zero for identical features and the plain mean of squares otherwise", "[cpu]") {
  Generator g(512);
  Tensor f = leaf({2, 3, 2, 8}, g);
  CHECK(feature_distillation(f, f.detach().clone(), Reduction::mean_all).item() == 0.0);
  Tensor t = Tensor::randn({2, 3, 2, 8}, g, DType::f64);
  std::vector<double> a = values(f), b = values(t);
  double total = 0;
  for (size_t i = 0; i < a.size(); ++i) total += (a[i] - b[i]) * (a[i] - b[i]);
  CHECK(feature_distillation(f, t, Reduction::mean_all).item() == approx(total / 96));
}

TEST_CASE("continual losses reject bad input clearly", "[cpu]") {
  Tensor logits = Tensor::zeros({2, 3, 4, 5});
  Tensor labels = Tensor::zeros({2, 3, 4}, DType::u8);
  CHECK_THROWS_WITH(unbiased_cross_entropy(logits, labels, 5, Reduction::mean_all),
                    Catch::Contains("unbiased_cross_entropy") && Catch::Contains("old_channels = 5") &&
                        Catch::Contains("1 <= C_old < C_tot"));
  CHECK_THROWS_WITH(unbiased_cross_entropy(logits, labels, 0, Reduction::mean_all),
                    Catch::Contains("old_channels = 0"));
  std::vector<uint8_t> y(24, 1);
  y[1 * 12 + 2 * 4 + 3] = 7;
  CHECK_THROWS_WITH(unbiased_cross_entropy(logits, Tensor::from_vector(y, {2, 3, 4}), 2, Reduction::mean_all),
                    Catch::Contains("label 7") && Catch::Contains("(n=1, h=2, w=3)") && Catch::Contains("[0, 5)"));
  CHECK_THROWS_WITH(icarl_bce(logits, Tensor::from_vector(y, {2, 3, 4}), Reduction::mean_all),
                    Catch::Contains("icarl_bce") && Catch::Contains("label 7"));
  CHECK_THROWS_WITH(unbiased_cross_entropy(logits, labels, 2, Reduction::mean_all, 3),
                    Catch::Contains("ignore_index 3 is one of the 5 classes"));
  CHECK_THROWS_WITH(unbiased_cross_entropy(logits, Tensor::zeros({2, 4, 3}, DType::u8), 2, Reduction::mean_all),
                    Catch::Contains("expected labels of shape [2,3,4]"));
  CHECK_THROWS_WITH(unbiased_cross_entropy(logits, Tensor::zeros({2, 3, 4}), 2, Reduction::mean_all),
                    Catch::Contains("u8, i32 or i64"));
  CHECK_THROWS_WITH(knowledge_distillation(logits, Tensor::zeros({2, 3, 4, 6}), Reduction::mean_all),
                    Catch::Contains("knowledge_distillation") && Catch::Contains("C_old = 6"));
  CHECK_THROWS_WITH(unbiased_knowledge_distillation(logits, Tensor::zeros({2, 3, 4, 5}), Reduction::mean_all),
                    Catch::Contains("at least one new channel"));
  CHECK_THROWS_WITH(knowledge_distillation(logits, Tensor::zeros({2, 3, 3, 2}), Reduction::mean_all),
                    Catch::Contains("differ in N,H,W"));
  CHECK_THROWS_WITH(knowledge_distillation(logits, Tensor::zeros({2, 3, 4, 2}, DType::f64), Reduction::mean_all),
                    Catch::Contains("teacher_logits"));
  CHECK_THROWS_WITH(knowledge_distillation(logits, Tensor::zeros({2, 3, 4, 2}), Reduction::mean_valid),
                    Catch::Contains("mean_valid") && Catch::Contains("mean_all"));
  CHECK_THROWS_WITH(icarl_distillation(Tensor::zeros({6, 5}), Tensor::zeros({6, 2}), Reduction::mean_all),
                    Catch::Contains("rank 4 (N,H,W,C)"));
  CHECK_THROWS_WITH(feature_distillation(Tensor::zeros({2, 3, 4, 5}), Tensor::zeros({2, 3, 4, 6}), Reduction::mean_all),
                    Catch::Contains("feature_distillation"));
  CHECK_THROWS_WITH(feature_distillation(Tensor::zeros({2, 3, 4, 5}), Tensor::zeros({2, 3, 4, 5}),
                                         Reduction::mean_valid),
                    Catch::Contains("mean_valid"));
}
