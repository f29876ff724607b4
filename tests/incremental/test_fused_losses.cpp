// The fused segmentation losses (engine/ops/fused_losses.h) against the unfused compositions they
// replace (incremental/losses.h and cross_entropy on logits upsampled with upsample_bilinear):
// values and gradients for C in {2, 21, 151}, odd low-resolution sizes upsampled to odd crops,
// ignored pixels, several (C_old, N_new), both align_corners, f32 and f64; several terms in one
// call; f64 finite-difference gradients; the method's fused and unfused paths in a training step
// (MiB, ILT, LwF-MC in its three variants); bad input.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <string>
#include <vector>

#include "engine/ops/channels.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/fused_losses.h"
#include "engine/ops/losses.h"
#include "engine/ops/reduce.h"
#include "engine/ops/upsample.h"
#include "incremental/losses.h"
#include "incremental/method.h"
#include "incremental/recipe.h"
#include "incremental/step_session.h"
#include "tests/support/compare.h"
#include "tests/support/gradcheck.h"
#include "tests/support/leaves.h"
#include "tests/support/tolerances.h"

using namespace strata;
using namespace strata::incremental;
using strata::test::approx;

namespace {

constexpr PixelLoss kAllKinds[] = {PixelLoss::cross_entropy,
                                   PixelLoss::unbiased_cross_entropy,
                                   PixelLoss::knowledge_distillation,
                                   PixelLoss::unbiased_knowledge_distillation,
                                   PixelLoss::icarl_bce,
                                   PixelLoss::icarl_distillation,
                                   PixelLoss::icarl_disjoint,
                                   PixelLoss::icarl_disjoint_bkg,
                                   PixelLoss::knowledge_distillation_l2};

struct FusedCase {
  int64_t old_channels, new_channels;
  int64_t batch, low_h, low_w, height, width;
};

// Each class count of the issue with (C_old, N_new) pairs incl. N_new = 1 and C_old = 1, low
// resolutions upsampled by odd, non-integer factors.
constexpr FusedCase kCases[] = {
    {1, 1, 3, 7, 9, 61, 67}, {16, 5, 3, 7, 9, 61, 67},   {20, 1, 2, 5, 4, 33, 29},
    {3, 18, 2, 4, 6, 9, 13}, {101, 50, 2, 7, 9, 61, 67},
};

// u8 labels (N,H,W) over [0, classes) with about one pixel in five ignored (255).
Tensor mixed_labels(int64_t n, int64_t h, int64_t w, int64_t classes, uint64_t seed) {
  Generator g(seed);
  const std::vector<double> u = Tensor::uniform({n * h * w}, 0.0, 1.0, g, DType::f64).to_vector<double>();
  std::vector<uint8_t> v(u.size());
  for (size_t i = 0; i < u.size(); ++i) {
    v[i] = u[i] < 0.2 ? uint8_t{255} : static_cast<uint8_t>(static_cast<int64_t>(u[i] * 1e6) % classes);
  }
  return Tensor::from_vector(v, {n, h, w});
}

// The unfused loss of `kind` on full-resolution logits z and teacher logits t.
Tensor unfused_loss(PixelLoss kind, const Tensor& z, const Tensor& t, const Tensor& labels, int64_t old_channels,
                    Reduction reduction, double alpha) {
  switch (kind) {
    case PixelLoss::cross_entropy: return cross_entropy(z, labels, reduction);
    case PixelLoss::unbiased_cross_entropy: return unbiased_cross_entropy(z, labels, old_channels, reduction);
    case PixelLoss::knowledge_distillation: return knowledge_distillation(z, t, reduction, alpha);
    case PixelLoss::unbiased_knowledge_distillation: return unbiased_knowledge_distillation(z, t, reduction, alpha);
    case PixelLoss::icarl_bce: return icarl_bce(z, labels, reduction);
    case PixelLoss::icarl_distillation: return icarl_distillation(z, t, reduction);
    case PixelLoss::icarl_disjoint: return icarl_disjoint(z, t, labels, reduction, false);
    case PixelLoss::icarl_disjoint_bkg: return icarl_disjoint(z, t, labels, reduction, true);
    case PixelLoss::knowledge_distillation_l2: return knowledge_distillation_l2(z, t, reduction, alpha);
  }
  throw Error("unfused_loss: unknown kind");
}

// A reduction the kind accepts, varied with `i` so every one is exercised.
Reduction reduction_for(PixelLoss kind, size_t i) {
  const bool labelled =
      kind == PixelLoss::cross_entropy || kind == PixelLoss::unbiased_cross_entropy || kind == PixelLoss::icarl_bce;
  const Reduction labelled_choices[] = {Reduction::mean_all, Reduction::mean_valid, Reduction::sum};
  const Reduction other_choices[] = {Reduction::mean_all, Reduction::sum};
  return labelled ? labelled_choices[i % 3] : other_choices[i % 2];
}

}  // namespace

TEST_CASE("fused losses equal the unfused compositions on upsampled logits, values and gradients", "[cpu]") {
  size_t index = 0;
  for (const FusedCase& fc : kCases) {
    const int64_t c_tot = fc.old_channels + fc.new_channels;
    for (DType dtype : {DType::f64, DType::f32}) {
      for (bool align_corners : {false, true}) {
        Generator g(100 + index);
        // Spread like real logits (a few units apart), so the softmaxes are neither flat nor one-hot.
        const Tensor low = test::leaf({fc.batch, fc.low_h, fc.low_w, c_tot}, g, 2.0, 0.0, dtype);
        const Tensor teacher_low = test::leaf({fc.batch, fc.low_h, fc.low_w, fc.old_channels}, g, 2.0, 0.0, dtype);
        const Tensor labels = mixed_labels(fc.batch, fc.height, fc.width, c_tot, 7 + index);
        for (PixelLoss kind : kAllKinds) {
          const bool unbiased =
              kind == PixelLoss::unbiased_cross_entropy || kind == PixelLoss::unbiased_knowledge_distillation;
          const Reduction reduction = reduction_for(kind, index++);
          const double alpha =
              kind == PixelLoss::knowledge_distillation || kind == PixelLoss::knowledge_distillation_l2 ? 0.5 : 1.0;
          INFO("C_old " << fc.old_channels << ", N_new " << fc.new_channels << ", " << dtype_name(dtype)
                        << ", align_corners " << align_corners << ", " << to_string(kind) << ", "
                        << to_string(reduction));
          if (unbiased && fc.new_channels < 1) continue;
          Tensor fused_leaf = test::as_leaf(low, dtype);
          FusedLossOptions options;
          options.old_channels = fc.old_channels;
          options.alpha = alpha;
          options.align_corners = align_corners;
          const Tensor fused = fused_losses(fused_leaf, teacher_low, labels, {{kind, 1.0, reduction}}, options);
          REQUIRE(fused.shape() == Shape{1});
          sum(fused).backward();

          Tensor unfused_leaf = test::as_leaf(low, dtype);
          const Tensor z = upsample_bilinear(unfused_leaf, fc.height, fc.width, align_corners);
          const Tensor t = upsample_bilinear(teacher_low.detach(), fc.height, fc.width, align_corners);
          const Tensor expected = unfused_loss(kind, z, t, labels, fc.old_channels, reduction, alpha);
          expected.backward();
          if (kind == PixelLoss::unbiased_knowledge_distillation && fc.old_channels == 1) {
            // With background the only old class, p̂_0 folds every channel: the loss is 0 in exact
            // arithmetic, and the unfused composition's value is rounding noise a relative
            // comparison cannot judge. The fused op gives the exact 0.
            CHECK(fused.item() == 0.0);
            const std::vector<double> grad = fused_leaf.grad().to_vector<double>();
            CHECK(std::count(grad.begin(), grad.end(), 0.0) == static_cast<std::ptrdiff_t>(grad.size()));
            continue;
          }
          CHECK_CLOSE(fused.reshape({}), expected);
          CHECK_CLOSE(fused_leaf.grad(), unfused_leaf.grad());
        }
      }
    }
  }
}

TEST_CASE("fused losses: several terms in one call are the weighted single-term values and gradients", "[cpu]") {
  Generator g(5);
  const int64_t c_old = 16, c_tot = 21;
  const Tensor low = test::leaf({2, 5, 6, c_tot}, g, 2.0);
  const Tensor teacher_low = test::leaf({2, 5, 6, c_old}, g, 2.0);
  const Tensor labels = mixed_labels(2, 37, 41, c_tot, 3);
  FusedLossOptions options;
  options.old_channels = c_old;
  // MiB: unce + 10 unkd, as Method::loss builds it.
  const std::vector<FusedLossTerm> mib = {{PixelLoss::unbiased_cross_entropy, 1.0, Reduction::mean_all},
                                          {PixelLoss::unbiased_knowledge_distillation, 10.0, Reduction::mean_all}};
  Tensor together = test::as_leaf(low, DType::f64);
  const Tensor values = fused_losses(together, teacher_low, labels, mib, options);
  sum(values).backward();
  Tensor apart = test::as_leaf(low, DType::f64);
  const Tensor unce = fused_losses(apart, teacher_low, labels, {mib[0]}, options);
  const Tensor unkd = fused_losses(apart, teacher_low, labels, {mib[1]}, options);
  add(sum(unce), sum(unkd)).backward();
  CHECK_CLOSE(values, concat({unce, unkd}));
  CHECK_CLOSE(together.grad(), apart.grad());
  CHECK(unkd.item() ==
        approx(10 * fused_losses(low.detach(), teacher_low, labels,
                                 {{PixelLoss::unbiased_knowledge_distillation, 1.0, Reduction::mean_all}}, options)
                        .item()));
}

TEST_CASE("fused losses: f64 gradients match finite differences, each term alone and all together",
          "[cpu][gradcheck]") {
  Generator g(9);
  const int64_t c_old = 3, c_tot = 5;
  const Tensor low = test::leaf({2, 3, 4, c_tot}, g, 1.5);
  const Tensor teacher_low = test::leaf({2, 3, 4, c_old}, g, 1.5).detach();
  const Tensor labels = mixed_labels(2, 7, 9, c_tot, 4);
  for (bool align_corners : {false, true}) {
    FusedLossOptions options;
    options.old_channels = c_old;
    options.alpha = 0.7;
    options.align_corners = align_corners;
    std::vector<std::vector<FusedLossTerm>> calls;
    std::vector<FusedLossTerm> all;
    double weight = 0.5;
    for (PixelLoss kind : kAllKinds) {
      if (kind == PixelLoss::icarl_disjoint || kind == PixelLoss::icarl_disjoint_bkg) continue;  // below
      const FusedLossTerm term{kind, weight += 0.25, reduction_for(kind, all.size())};
      calls.push_back({term});
      // L2 KD shares its per-pixel statistic with the unbiased KD, so it joins the others apart.
      if (kind != PixelLoss::knowledge_distillation_l2) all.push_back(term);
    }
    calls.push_back(all);
    calls.push_back({{PixelLoss::cross_entropy, 1.0, Reduction::mean_valid},
                     {PixelLoss::knowledge_distillation, 2.0, Reduction::mean_all},
                     {PixelLoss::knowledge_distillation_l2, 30.0, Reduction::sum}});
    for (const std::vector<FusedLossTerm>& terms : calls) {
      INFO("align_corners " << align_corners << ", " << terms.size() << " term(s), the first "
                            << to_string(terms[0].kind));
      CHECK_GRADCHECK(
          [&](const std::vector<Tensor>& in) { return sum(fused_losses(in[0], teacher_low, in[1], terms, options)); },
          {low, labels});
    }
  }
}

// LwF-MC's disjoint terms on inputs of their own: their loss (a BCE of every channel, ignored pixels
// included) is large against the gradient of one low-resolution logit, so central differences'
// rounding (about ulp(loss) / step) needs a small map and a sharp teacher to stay below kGradcheck,
// which the inputs above do not give (checked: 1 of 120 elements off by 1.3e-9 there, analytic and
// unfused gradients equal, and the difference shrinking with a larger step).
TEST_CASE("fused losses: LwF-MC's disjoint terms' f64 gradients match finite differences", "[cpu][gradcheck]") {
  Generator g(10);
  const int64_t c_old = 3, c_tot = 5;
  const Tensor low = test::leaf({1, 2, 3, c_tot}, g, 1.5);
  const Tensor teacher_low = test::leaf({1, 2, 3, c_old}, g, 4.0).detach();
  const Tensor labels = mixed_labels(1, 5, 7, c_tot, 5);
  for (bool align_corners : {false, true}) {
    FusedLossOptions options;
    options.old_channels = c_old;
    options.align_corners = align_corners;
    const FusedLossTerm disjoint{PixelLoss::icarl_disjoint, 1.5, Reduction::mean_all};
    const FusedLossTerm disjoint_bkg{PixelLoss::icarl_disjoint_bkg, 0.75, Reduction::sum};
    const FusedLossTerm bce{PixelLoss::icarl_bce, 1.0, Reduction::mean_valid};
    for (const std::vector<FusedLossTerm>& terms :
         std::vector<std::vector<FusedLossTerm>>{{disjoint}, {disjoint_bkg}, {disjoint, disjoint_bkg, bce}}) {
      INFO("align_corners " << align_corners << ", " << terms.size() << " term(s), the first "
                            << to_string(terms[0].kind));
      CHECK_GRADCHECK(
          [&](const std::vector<Tensor>& in) { return sum(fused_losses(in[0], teacher_low, in[1], terms, options)); },
          {low, labels});
    }
  }
}

namespace {

// Two training iterations of step 1 (15-5) of `base`'s model (classes set here) for every method, on
// the fused and the unfused path from the same step-0 weights: the logged terms agree within kF32.
void check_step_losses_match(const models::ModelConfig& base, const std::vector<MethodConfig>& methods) {
  const Task task = Task::create(LabelSpace::voc(), "15-5");
  models::ModelConfig previous_config = base;
  previous_config.classes = {16};
  previous_config.seed = 5;
  const TensorMap weights = models::SegmentationModel(previous_config).state_dict();
  Tensor images = Tensor::zeros({2, 33, 33, 3}, DType::u8);
  {
    std::vector<uint8_t> pixels(static_cast<size_t>(images.numel()));
    for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<uint8_t>((i * 37) % 251);
    images = Tensor::from_vector(pixels, images.shape());
  }
  const Tensor labels = mixed_labels(2, 33, 33, 21, 11);
  for (const MethodConfig& method : methods) {
    std::vector<std::vector<double>> losses[2];
    for (bool fused : {true, false}) {
      StepSetup setup;
      setup.step = 1;
      setup.model = base;
      setup.model.classes = {16, 5};
      setup.model.seed = 6;
      setup.method = method;
      setup.method.fused_losses = fused;
      setup.method.adapt_to(base);
      setup.recipe = reference_recipe(task, 1);
      StepSession session(setup, task, &weights, "previous", "", 10);
      for (int iteration = 0; iteration < 2; ++iteration) {
        const IterationStats stats = session.train_iteration(images, labels);
        CHECK((stats.names.back() == "aux") == base.has_aux());
        losses[fused ? 0 : 1].push_back(stats.terms.to_vector<double>());
      }
    }
    INFO(method.describe());
    REQUIRE(losses[0].size() == losses[1].size());
    for (size_t i = 0; i < losses[0].size(); ++i) {
      REQUIRE(losses[0][i].size() == losses[1][i].size());
      for (size_t k = 0; k < losses[0][i].size(); ++k) {
        INFO("iteration " << i + 1 << ", term " << k);
        CHECK(losses[0][i][k] == approx(losses[1][i][k], test::kF32));
      }
    }
  }
}

}  // namespace

TEST_CASE("fused losses: a training step gives the unfused path's losses at iterations 1 and 2", "[cpu]") {
  const Task task = Task::create(LabelSpace::voc(), "15-5");
  // MiB (unce + unkd), ILT (ce + kd + the unfused de term) and LwF-MC's three variants (bce +
  // icarl, icarl_disjoint with and without the labels' background) cover every logit term a method uses.
  MethodOverrides disjoint, disjoint_bkg;
  disjoint.icarl_disjoint = true;
  disjoint_bkg.icarl_disjoint = true;
  disjoint_bkg.icarl_bkg = true;
  check_step_losses_match(models::small_model_config({16}),
                          {method_preset("MiB", task), method_preset("ILT", task), method_preset("LwF-MC", task),
                           apply_overrides(method_preset("LwF-MC", task), disjoint),
                           apply_overrides(method_preset("LwF-MC", task), disjoint_bkg)});
}

TEST_CASE("fused losses: PSPNet's step (the aux term, align_corners upsampling) gives the unfused path's losses",
          "[cpu]") {
  const Task task = Task::create(LabelSpace::voc(), "15-5");
  models::ModelConfig psp = models::small_model_config({16}, 8);
  psp.arch = models::Architecture::pspnet;
  psp.psp_dropout = 0;  // the two paths draw no masks alike otherwise (the seeds match, the order need not)
  check_step_losses_match(psp, {method_preset("MiB", task), method_preset("LwF", task), method_preset("LwF-MC", task)});
}

TEST_CASE("fused losses: DeepLabV3+'s step (align_corners upsampling) gives the unfused path's losses", "[cpu]") {
  const Task task = Task::create(LabelSpace::voc(), "15-5");
  models::ModelConfig plus = models::small_model_config({16});
  plus.arch = models::Architecture::deeplabv3plus;
  check_step_losses_match(plus, {method_preset("MiB", task), method_preset("ILT", task)});
}

TEST_CASE("fused losses: BiSeNet's step (two aux heads, align_corners upsampling) gives the unfused path's losses",
          "[cpu]") {
  const Task task = Task::create(LabelSpace::voc(), "15-5");
  models::ModelConfig bise = models::small_model_config({16}, 32);
  bise.arch = models::Architecture::bisenet;
  check_step_losses_match(bise, {method_preset("MiB", task), method_preset("LwF", task)});
}

TEST_CASE("fused losses refuse bad input, naming the tensor or option", "[cpu]") {
  Generator g(1);
  const Tensor low = Tensor::randn({2, 3, 4, 5}, g);
  const Tensor teacher_low = Tensor::randn({2, 3, 4, 3}, g);
  const Tensor labels = mixed_labels(2, 7, 9, 5, 1);
  FusedLossOptions options;
  options.old_channels = 3;
  const FusedLossTerm kd{PixelLoss::knowledge_distillation, 1.0, Reduction::mean_all};
  CHECK_THROWS_WITH(fused_losses(low, Tensor(), labels, {kd}, options), Catch::Contains("teacher_logits is undefined"));
  CHECK_THROWS_WITH(fused_losses(low, Tensor::randn({2, 3, 4, 2}, g), labels, {kd}, options),
                    Catch::Contains("old_channels = 3"));
  CHECK_THROWS_WITH(fused_losses(low, teacher_low, labels, {{PixelLoss::cross_entropy, 1.0, Reduction::none}}, options),
                    Catch::Contains("reduction none"));
  CHECK_THROWS_WITH(fused_losses(low, teacher_low, labels, {{kd.kind, 1.0, Reduction::mean_valid}}, options),
                    Catch::Contains("mean_valid"));
  CHECK_THROWS_WITH(fused_losses(low, teacher_low, labels, {{kd.kind, -1.0, Reduction::sum}}, options),
                    Catch::Contains("weight -1"));
  CHECK_THROWS_WITH(fused_losses(low, teacher_low, labels, {}, options), Catch::Contains("1 to 6 terms"));
  CHECK_THROWS_WITH(fused_losses(low, teacher_low, labels,
                                 {{PixelLoss::knowledge_distillation_l2, 1.0, Reduction::mean_all},
                                  {PixelLoss::unbiased_knowledge_distillation, 1.0, Reduction::mean_all}},
                                 options),
                    Catch::Contains("unbiased_knowledge_distillation and knowledge_distillation_l2"));
  FusedLossOptions no_new = options;
  no_new.old_channels = 5;
  CHECK_THROWS_WITH(fused_losses(low, Tensor::randn({2, 3, 4, 5}, g), labels,
                                 {{PixelLoss::unbiased_cross_entropy, 1.0, Reduction::mean_all}}, no_new),
                    Catch::Contains("1 <= old_channels < C = 5"));
  CHECK_THROWS_WITH(fused_losses(low, teacher_low, mixed_labels(3, 7, 9, 5, 1), {kd}, options),
                    Catch::Contains("labels"));
  CHECK_THROWS_WITH(fused_losses(low.to(DType::u8), teacher_low, labels, {kd}, options), Catch::Contains("logits"));
  // A label outside [0, C) that is not ignore_index is named with its position.
  std::vector<uint8_t> bad(2 * 7 * 9, 1);
  bad[10] = 9;
  CHECK_THROWS_WITH(fused_losses(low, teacher_low, Tensor::from_vector(bad, {2, 7, 9}),
                                 {{PixelLoss::cross_entropy, 1.0, Reduction::mean_all}}, options),
                    Catch::Contains("label 9") && Catch::Contains("fused_losses"));
}
