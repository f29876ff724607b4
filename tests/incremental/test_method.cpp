// Methods, teacher and recipes (incremental/method.h, teacher.h, recipe.h; SPEC §3, §3.9, §4.3,
// §4.5): the presets and their task-dependent lambda_kd, flags changing a preset term by term and
// the contradictory ones refused naming both, the active terms per step (LwF-MC's from step 0), the
// loss as the weighted sum of the part-1 losses with their reductions, LwF-MC's total loss of a step
// in its three variants against PyTorch on the fused and the unfused path,
// the maps each method asks for (its forward options), MiB's log_softmax shared by its two terms and
// its loss values kept on the device, MiB's classifier init as the step-start hook, the frozen eval-mode
// teacher, one training iteration through StepSession, and the recipe's defaults.
#include <catch2/catch.hpp>
#include <cmath>
#include <map>

#include "engine/autograd.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/losses.h"
#include "engine/ops/upsample.h"
#include "engine/profiler.h"
#include "incremental/losses.h"
#include "incremental/method.h"
#include "incremental/recipe.h"
#include "incremental/teacher.h"
#include "incremental/trainer.h"
#include "tests/support/compare.h"
#include "tests/support/norms.h"
#include "tests/support/tolerances.h"
#include "tests/support/torch_reference.h"

using namespace strata;
using namespace strata::incremental;
using strata::test::approx;
using strata::test::check_torch_case;
using strata::test::TorchCase;

namespace {

const Task& voc_15_5() {
  static const Task task = Task::create(LabelSpace::voc(), "15-5");
  return task;
}

std::vector<std::string> term_names(const Method& method, int step) {
  std::vector<std::string> names;
  for (const LossTerm& t : method.terms(step)) names.emplace_back(t.name);
  return names;
}

// A small model of the given classes per step (the small configuration at output stride 16).
models::ModelConfig small(std::vector<int64_t> classes, uint64_t seed = 3) {
  models::ModelConfig config = models::small_model_config(std::move(classes));
  config.seed = seed;
  return config;
}

Tensor random_images(int64_t n, int64_t size, uint64_t seed) {
  Generator g(seed);
  return Tensor::randn({n, size, size, 3}, g);
}

// Labels (N,H,W) cycling through [0, classes).
Tensor cycling_labels(int64_t n, int64_t size, int64_t classes) {
  std::vector<uint8_t> v(static_cast<size_t>(n * size * size));
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<uint8_t>((i / 7) % static_cast<size_t>(classes));
  return Tensor::from_vector(v, {n, size, size});
}

// The method on the unfused path, whose Method::loss reads full-resolution logits (these tests hand
// it logits directly; the fused path is tested in test_fused_losses.cpp).
MethodConfig unfused(MethodConfig config) {
  config.fused_losses = false;
  return config;
}

// The preset `method` of `task` with `overrides` is refused with an error containing `message`.
void refused(const Task& task, const std::string& method, const MethodOverrides& overrides,
             const std::string& message) {
  INFO(method << ": " << message);
  CHECK_THROWS_WITH(apply_overrides(method_preset(method, task), overrides), Catch::Contains(message));
}

}  // namespace

TEST_CASE("method presets set the SPEC §3.9 flags, with MiB's lambda_kd 100 only on VOC 15-1 and 10-1", "[cpu]") {
  const MethodConfig ft = method_preset("FT", voc_15_5());
  CHECK(ft.loss_kd == 0);
  CHECK(ft.loss_de == 0);
  CHECK_FALSE(ft.unce);
  CHECK_FALSE(ft.unkd);
  CHECK_FALSE(ft.init_balanced);

  const MethodConfig lwf = method_preset("lwf", voc_15_5());
  CHECK(lwf.name == "LwF");
  CHECK(lwf.loss_kd == 100);
  CHECK(lwf.loss_de == 0);
  CHECK_FALSE(lwf.unkd);

  const MethodConfig ilt = method_preset("ILT", voc_15_5());
  CHECK(ilt.loss_kd == 100);
  CHECK(ilt.loss_de == 100);

  const MethodConfig mib = method_preset("MIB", voc_15_5());
  CHECK(mib.name == "MiB");
  CHECK(mib.unce);
  CHECK(mib.unkd);
  CHECK(mib.init_balanced);
  CHECK(mib.loss_kd == 10);
  CHECK(mib.alpha == 1);
  CHECK(mib.describe() == "MiB (unce, unkd x10, init_balanced)");

  for (const char* name : {"15-1", "15-5s", "15-5s_b", "15-1_w", "10-1"}) {
    INFO(name);
    CHECK(method_preset("MiB", Task::create(LabelSpace::voc(), name)).loss_kd == 100);
  }
  for (const char* name : {"19-1", "15-5", "10-5-5", "5-3"}) {
    INFO(name);
    CHECK(method_preset("MiB", Task::create(LabelSpace::voc(), name)).loss_kd == 10);
  }
  CHECK(method_preset("MiB", Task::create(LabelSpace::ade20k(), "100-10")).loss_kd == 10);
  CHECK(method_preset("MiB", Task::create(LabelSpace::ade20k(), "100-5")).loss_kd == 10);

  // LwF-MC: MiB's --icarl with --icarl_importance 10, the combined variant; MiB's spelling LWF-MC.
  const MethodConfig lwf_mc = method_preset("LWF-MC", voc_15_5());
  CHECK(lwf_mc.name == "LwF-MC");
  CHECK(lwf_mc.icarl);
  CHECK(lwf_mc.icarl_importance == 10);
  CHECK_FALSE(lwf_mc.icarl_disjoint);
  CHECK_FALSE(lwf_mc.icarl_bkg);
  CHECK(lwf_mc.loss_kd == 0);
  CHECK_FALSE(lwf_mc.unce);
  CHECK_FALSE(lwf_mc.init_balanced);
  CHECK(lwf_mc.describe() == "LwF-MC (bce, icarl x10)");
  CHECK(method_preset("lwf-mc", Task::create(LabelSpace::ade20k(), "100-10")).icarl_importance == 10);
  CHECK_FALSE(ft.icarl);
  CHECK_FALSE(mib.icarl);

  CHECK(method_names() == std::vector<std::string>{"FT", "LwF", "LwF-MC", "ILT", "EWC", "PI", "RW", "MiB", "PLOP"});
  CHECK_THROWS_WITH(method_preset("PLOPX", voc_15_5()), Catch::Contains("unknown method 'PLOPX'") &&
                                                            Catch::Contains("FT, LwF, LwF-MC, ILT, EWC, PI, RW, MiB"));
}

TEST_CASE("EWC, PI and RW presets: MiB's values, the PLOP repository's under --convention plop", "[cpu]") {
  const MethodConfig ewc_mib = method_preset("ewc", voc_15_5(), Convention::mib);
  CHECK(ewc_mib.name == "EWC");
  CHECK(ewc_mib.regularizer.kind == RegularizerKind::ewc);
  CHECK(ewc_mib.regularizer.importance == 500);
  CHECK(ewc_mib.regularizer.alpha == 0.9);
  CHECK(ewc_mib.regularizer.normalize);
  CHECK(ewc_mib.describe() == "EWC (ewc x500 alpha 0.9)");
  CHECK(method_preset("EWC", voc_15_5(), Convention::plop).regularizer.importance == 100);
  CHECK(method_preset("EWC", voc_15_5()).regularizer.importance == 100);  // plop is the default convention
  const MethodConfig pi = method_preset("PI", voc_15_5(), Convention::mib);
  CHECK(pi.regularizer.kind == RegularizerKind::pi);
  CHECK(pi.regularizer.importance == 500);
  CHECK(pi.describe() == "PI (pi x500)");
  CHECK(method_preset("pi", voc_15_5(), Convention::plop).regularizer.importance == 100);
  for (Convention convention : {Convention::mib, Convention::plop}) {
    const MethodConfig rw = method_preset("RW", voc_15_5(), convention);
    CHECK(rw.regularizer.kind == RegularizerKind::rw);
    CHECK(rw.regularizer.importance == 100);
    CHECK(rw.regularizer.alpha == 0.9);
    CHECK(rw.regularizer.iterations == 10);
    CHECK(rw.describe() == "RW (rw x100 alpha 0.9 every 10)");
  }
  // Nothing else: CE alone, no teacher; the penalty is not a term of Method::loss.
  for (const char* name : {"EWC", "PI", "RW"}) {
    const Method method(method_preset(name, voc_15_5()));
    CHECK(term_names(method, 1) == std::vector<std::string>{"ce"});
    CHECK_FALSE(method.needs_teacher(1));
    CHECK_FALSE(method.has_regularizer());  // until start_step builds it for a model
  }
  CHECK(method_preset("MiB", voc_15_5()).regularizer.kind == RegularizerKind::none);
}

TEST_CASE("the regulariser flags change EWC, PI and RW, and flags that do not apply are errors naming both", "[cpu]") {
  MethodOverrides o;
  o.reg_importance = 7.5;
  o.reg_alpha = 0.5;
  o.reg_no_normalize = true;
  const MethodConfig ewc = apply_overrides(method_preset("EWC", voc_15_5()), o);
  CHECK(ewc.regularizer.importance == 7.5);
  CHECK(ewc.regularizer.alpha == 0.5);
  CHECK_FALSE(ewc.regularizer.normalize);
  CHECK(ewc.describe() == "EWC+ (ewc x7.5 alpha 0.5 unnormalized)");
  MethodOverrides every;
  every.reg_iterations = 4;
  CHECK(apply_overrides(method_preset("RW", voc_15_5()), every).regularizer.iterations == 4);

  MethodOverrides iterations;
  iterations.reg_iterations = 4;
  CHECK_THROWS_WITH(apply_overrides(method_preset("EWC", voc_15_5()), iterations),
                    Catch::Contains("--reg-iterations") && Catch::Contains("--method EWC"));
  CHECK_THROWS_WITH(apply_overrides(method_preset("PI", voc_15_5()), iterations),
                    Catch::Contains("--reg-iterations") && Catch::Contains("--method PI"));
  MethodOverrides alpha;
  alpha.reg_alpha = 0.5;
  CHECK_THROWS_WITH(apply_overrides(method_preset("PI", voc_15_5()), alpha),
                    Catch::Contains("--reg-alpha") && Catch::Contains("--method PI"));
  MethodOverrides importance;
  importance.reg_importance = 10.0;
  CHECK_THROWS_WITH(apply_overrides(method_preset("MiB", voc_15_5()), importance),
                    Catch::Contains("--reg-importance") && Catch::Contains("--method MiB"));
  MethodOverrides no_normalize;
  no_normalize.reg_no_normalize = true;
  CHECK_THROWS_WITH(apply_overrides(method_preset("FT", voc_15_5()), no_normalize),
                    Catch::Contains("--reg-no-normalize") && Catch::Contains("--method FT"));
  // Values out of range.
  MethodOverrides negative;
  negative.reg_importance = -1.0;
  CHECK_THROWS_WITH(apply_overrides(method_preset("EWC", voc_15_5()), negative),
                    Catch::Contains("--reg-importance must be >= 0"));
  MethodOverrides wide;
  wide.reg_alpha = 1.5;
  CHECK_THROWS_WITH(apply_overrides(method_preset("RW", voc_15_5()), wide), Catch::Contains("--reg-alpha"));
}

TEST_CASE("LwF-MC's flags change its preset, and contradictory ones are errors naming both flags", "[cpu]") {
  const MethodConfig preset = method_preset("LwF-MC", voc_15_5());
  MethodOverrides disjoint;
  disjoint.icarl_disjoint = true;
  const MethodConfig d = apply_overrides(preset, disjoint);
  CHECK(d.icarl_disjoint);
  CHECK(d.describe() == "LwF-MC+ (bce, icarl disjoint)");
  MethodOverrides bkg = disjoint;
  bkg.icarl_bkg = true;
  CHECK(apply_overrides(preset, bkg).describe() == "LwF-MC+ (bce, icarl disjoint bkg)");
  MethodOverrides importance;
  importance.icarl_importance = 2.5;
  CHECK(apply_overrides(preset, importance).icarl_importance == 2.5);
  // --icarl alone is LwF-MC with MiB's default importance 1; composable with KD like any term.
  MethodOverrides icarl_kd;
  icarl_kd.icarl = true;
  icarl_kd.loss_kd = 5.0;
  const MethodConfig ft_icarl = apply_overrides(method_preset("FT", voc_15_5()), icarl_kd);
  CHECK(ft_icarl.describe() == "FT+ (bce, icarl x1, kd x5)");
  CHECK(term_names(Method(ft_icarl), 1) == std::vector<std::string>{"bce", "kd", "icarl"});

  // Combinations MiB's code accepts and silently ignores.
  MethodOverrides unce;
  unce.unce = true;
  CHECK_THROWS_WITH(apply_overrides(preset, unce), Catch::Contains("--unce") && Catch::Contains("--icarl"));
  MethodOverrides icarl_on_mib;
  icarl_on_mib.icarl = true;
  CHECK_THROWS_WITH(apply_overrides(method_preset("MiB", voc_15_5()), icarl_on_mib),
                    Catch::Contains("--unce") && Catch::Contains("--icarl"));
  CHECK_THROWS_WITH(apply_overrides(method_preset("LwF", voc_15_5()), disjoint),
                    Catch::Contains("--icarl-disjoint") && Catch::Contains("needs --icarl"));
  MethodOverrides bkg_only;
  bkg_only.icarl_bkg = true;
  CHECK_THROWS_WITH(apply_overrides(preset, bkg_only),
                    Catch::Contains("--icarl-bkg") && Catch::Contains("needs --icarl-disjoint"));
  CHECK_THROWS_WITH(apply_overrides(method_preset("FT", voc_15_5()), importance),
                    Catch::Contains("--icarl-importance") && Catch::Contains("needs --icarl"));
  MethodOverrides weighted_disjoint = disjoint;
  weighted_disjoint.icarl_importance = 10.0;
  CHECK_THROWS_WITH(apply_overrides(preset, weighted_disjoint),
                    Catch::Contains("--icarl-importance") && Catch::Contains("--icarl-disjoint"));
  MethodOverrides negative;
  negative.icarl_importance = -1.0;
  CHECK_THROWS_WITH(apply_overrides(preset, negative), Catch::Contains("--icarl-importance must be >= 0"));
  // A config built by hand is checked when the method is made.
  MethodConfig hand = preset;
  hand.icarl = false;
  hand.icarl_disjoint = true;
  CHECK_THROWS_WITH(Method(hand), Catch::Contains("--icarl-disjoint"));
}

TEST_CASE("flags change a preset term by term, and each loss is usable alone with its weight", "[cpu]") {
  MethodOverrides o;
  o.loss_kd = 100.0;
  MethodConfig mib100 = apply_overrides(method_preset("MiB", voc_15_5()), o);
  CHECK(mib100.loss_kd == 100);
  CHECK(mib100.unce);
  CHECK(mib100.name == "MiB+");

  // FT + unbiased CE alone; FT + feature distillation alone; KD with alpha.
  MethodOverrides unce_only;
  unce_only.unce = true;
  CHECK(term_names(Method(apply_overrides(method_preset("FT", voc_15_5()), unce_only)), 1) ==
        std::vector<std::string>{"unce"});
  MethodOverrides de_only;
  de_only.loss_de = 5.0;
  const Method de(apply_overrides(method_preset("FT", voc_15_5()), de_only));
  CHECK(term_names(de, 1) == std::vector<std::string>{"ce", "de"});
  CHECK(de.forward_options(1).body);
  CHECK(de.needs_teacher(1));
  MethodOverrides kd_alpha;
  kd_alpha.loss_kd = 3.0;
  kd_alpha.alpha = 2.0;
  const MethodConfig lwf2 = apply_overrides(method_preset("FT", voc_15_5()), kd_alpha);
  CHECK(lwf2.describe() == "FT+ (kd x3, alpha 2)");

  MethodOverrides bad;
  bad.loss_de = -1.0;
  CHECK_THROWS_WITH(apply_overrides(method_preset("ILT", voc_15_5()), bad), Catch::Contains("--loss-de must be >= 0"));
  MethodOverrides zero_alpha;
  zero_alpha.alpha = 0.0;
  CHECK_THROWS_WITH(apply_overrides(method_preset("LwF", voc_15_5()), zero_alpha), Catch::Contains("--alpha"));
}

TEST_CASE("active terms per step: step 0 is plain CE for every method but LwF-MC, which is BCE", "[cpu]") {
  for (const std::string& name : method_names()) {
    const Method m(method_preset(name, voc_15_5()));
    INFO(name);
    CHECK(term_names(m, 0) == std::vector<std::string>{name == "LwF-MC" ? "bce" : "ce"});
    CHECK_FALSE(m.needs_teacher(0));
    CHECK_FALSE(m.forward_options(0).body);
  }
  // LwF-MC at steps >= 1: BCE + 10 x the sigmoid distillation, or the disjoint variant's one BCE.
  const Method lwf_mc(method_preset("LwF-MC", voc_15_5()));
  CHECK(term_names(lwf_mc, 1) == std::vector<std::string>{"bce", "icarl"});
  CHECK(term_names(lwf_mc, 3) == std::vector<std::string>{"bce", "icarl"});
  CHECK(lwf_mc.terms(1)[1].kind == LossKind::icarl_distillation);
  CHECK(lwf_mc.terms(1)[1].weight == 10);
  CHECK(lwf_mc.needs_teacher(1));
  CHECK_FALSE(lwf_mc.forward_options(1).body);
  MethodOverrides disjoint;
  disjoint.icarl_disjoint = true;
  const Method lwf_mc_disjoint(apply_overrides(method_preset("LwF-MC", voc_15_5()), disjoint));
  CHECK(term_names(lwf_mc_disjoint, 0) == std::vector<std::string>{"bce"});
  CHECK(term_names(lwf_mc_disjoint, 1) == std::vector<std::string>{"icarl_disjoint"});
  CHECK(lwf_mc_disjoint.terms(1)[0].kind == LossKind::icarl_disjoint);
  CHECK(lwf_mc_disjoint.terms(1)[0].weight == 1);
  CHECK(lwf_mc_disjoint.needs_teacher(1));
  disjoint.icarl_bkg = true;
  CHECK(Method(apply_overrides(method_preset("LwF-MC", voc_15_5()), disjoint)).terms(1)[0].kind ==
        LossKind::icarl_disjoint_bkg);
  // Importance 0 turns the distillation off: BCE alone, no teacher.
  MethodOverrides off;
  off.icarl_importance = 0.0;
  const Method bce_only(apply_overrides(method_preset("LwF-MC", voc_15_5()), off));
  CHECK(term_names(bce_only, 1) == std::vector<std::string>{"bce"});
  CHECK_FALSE(bce_only.needs_teacher(1));
  CHECK(term_names(Method(method_preset("FT", voc_15_5())), 1) == std::vector<std::string>{"ce"});
  CHECK_FALSE(Method(method_preset("FT", voc_15_5())).needs_teacher(1));
  CHECK(term_names(Method(method_preset("LwF", voc_15_5())), 1) == std::vector<std::string>{"ce", "kd"});
  CHECK(term_names(Method(method_preset("ILT", voc_15_5())), 2) == std::vector<std::string>{"ce", "kd", "de"});
  CHECK(Method(method_preset("ILT", voc_15_5())).forward_options(1).body);
  CHECK_FALSE(Method(method_preset("LwF", voc_15_5())).forward_options(1).body);
  CHECK_FALSE(Method(method_preset("MiB", voc_15_5())).forward_options(1).body);
  CHECK(term_names(Method(method_preset("MiB", voc_15_5())), 1) == std::vector<std::string>{"unce", "unkd"});
  const Method mib(method_preset("MiB", voc_15_5()));
  CHECK(mib.terms(1)[1].weight == 10);
}

TEST_CASE("a method's loss is the weighted sum of the part-1 losses with mean_all reductions", "[cpu]") {
  Generator g(11);
  const int64_t n = 2, h = 6, w = 5, c_old = 4, c_tot = 6;
  Tensor logits = Tensor::randn({n, h, w, c_tot}, g).set_requires_grad(true);
  Tensor teacher_logits = Tensor::randn({n, h, w, c_old}, g);
  Tensor body = Tensor::randn({n, 2, 2, 8}, g).set_requires_grad(true);
  Tensor teacher_body = Tensor::randn({n, 2, 2, 8}, g);
  std::vector<uint8_t> y(static_cast<size_t>(n * h * w));
  for (size_t i = 0; i < y.size(); ++i) y[i] = static_cast<uint8_t>(i % 9 == 0 ? 255 : (i * 5) % c_tot);
  Tensor labels = Tensor::from_vector(y, {n, h, w});
  models::ForwardResult student;
  student.logits = logits;
  student.body = body;
  models::ForwardResult teacher;
  teacher.logits = teacher_logits;
  teacher.body = teacher_body;

  auto expect = [&](const std::string& name, double expected) {
    const Method m(unfused(method_preset(name, voc_15_5())));
    const LossBreakdown loss = m.loss(student, &teacher, labels, c_old, 1);
    INFO(name);
    CHECK(std::fabs(loss.total.item() - expected) <= 1e-5 * std::fabs(expected));
    CHECK(loss.names == term_names(m, 1));
    REQUIRE(loss.values.shape() == Shape{static_cast<int64_t>(loss.names.size())});
    CHECK_FALSE(loss.values.requires_grad());
    double sum = 0;
    for (double value : loss.values.to_vector<double>()) sum += value;
    CHECK(std::fabs(sum - loss.total.item()) <= 1e-5 * std::fabs(expected));
  };
  const double ce = cross_entropy(logits, labels, Reduction::mean_all).item();
  const double kd = knowledge_distillation(logits, teacher_logits, Reduction::mean_all).item();
  const double unce = unbiased_cross_entropy(logits, labels, c_old, Reduction::mean_all).item();
  const double unkd = unbiased_knowledge_distillation(logits, teacher_logits, Reduction::mean_all).item();
  const double de = feature_distillation(body, teacher_body, Reduction::mean_all).item();
  const double bce = icarl_bce(logits, labels, Reduction::mean_all).item();
  const double icarl = icarl_distillation(logits, teacher_logits, Reduction::mean_all).item();
  expect("FT", ce);
  expect("LwF", ce + 100 * kd);
  expect("LwF-MC", bce + 10 * icarl);
  expect("ILT", ce + 100 * kd + 100 * de);
  expect("MiB", unce + 10 * unkd);

  // The gradient reaches the student only, and step 0 ignores the teacher entirely.
  const Method ilt(unfused(method_preset("ILT", voc_15_5())));
  ilt.loss(student, &teacher, labels, c_old, 1).total.backward();
  CHECK(logits.grad().defined());
  CHECK(body.grad().defined());
  CHECK_FALSE(teacher_logits.grad().defined());
  CHECK(std::fabs(ilt.loss(student, nullptr, labels, 0, 0).total.item() - ce) <= 1e-6 * ce);
  CHECK_THROWS_WITH(ilt.loss(student, nullptr, labels, c_old, 1), Catch::Contains("needs the teacher's logits"));
}

TEST_CASE("LwF-MC's loss of a step matches PyTorch on the fused and unfused paths: step 0, three variants", "[torch]") {
  // tools/torchref/continual_losses.py's lwf_mc_total: low-resolution logits upsampled to the labels
  // as the references do, then MiB's composition. The fused path reads the low-resolution logits
  // themselves, the unfused one their upsampling by upsample_bilinear; both against the same case.
  for (const char* pair : {"1_2", "4_3"}) {
    for (const char* variant : {"step0", "step1_combined", "step1_disjoint", "step1_disjoint_bkg"}) {
      const std::string name = cat("lwf_mc_", pair, "_", variant);
      const TorchCase c("continual_losses", name);
      const int step = static_cast<int>(c.param("step"));
      const int64_t c_old = static_cast<int64_t>(c.param("old_channels"));
      MethodOverrides overrides;
      if (step >= 1 && c.text("variant") != "combined") overrides.icarl_disjoint = true;
      if (step >= 1 && c.text("variant") == "disjoint_bkg") overrides.icarl_bkg = true;
      for (bool fused : {true, false}) {
        INFO(name << (fused ? ", fused" : ", unfused"));
        MethodConfig config = apply_overrides(method_preset("LwF-MC", voc_15_5()), overrides);
        config.fused_losses = fused;
        const Method method(config);
        const std::vector<std::string> inputs = step == 0
                                                    ? std::vector<std::string>{"logits", "labels"}
                                                    : std::vector<std::string>{"logits", "teacher_logits", "labels"};
        check_torch_case("continual_losses", name, inputs, [&](const std::vector<Tensor>& in, const TorchCase&) {
          const Tensor& labels = in.back();
          const int64_t h = labels.size(1), w = labels.size(2);
          models::ForwardResult student, teacher;
          if (fused) {
            student.low_res_logits = in[0];
            if (step >= 1) teacher.low_res_logits = in[1];
          } else {
            student.logits = upsample_bilinear(in[0], h, w, false);
            if (step >= 1) teacher.logits = upsample_bilinear(in[1], h, w, false);
          }
          const LossBreakdown loss =
              method.loss(student, step >= 1 ? &teacher : nullptr, labels, step >= 1 ? c_old : 0, step);
          CHECK(loss.names == term_names(method, step));
          return loss.total;
        });
      }
    }
  }
}

TEST_CASE("MiB's loss runs one log_softmax for unce and unkd, with the values of the separate losses", "[cpu]") {
  Generator g(12);
  const int64_t n = 2, h = 5, w = 4, c_old = 3, c_tot = 5;
  Tensor logits = Tensor::randn({n, h, w, c_tot}, g).set_requires_grad(true);
  Tensor teacher_logits = Tensor::randn({n, h, w, c_old}, g);
  std::vector<uint8_t> y(static_cast<size_t>(n * h * w));
  for (size_t i = 0; i < y.size(); ++i) y[i] = static_cast<uint8_t>(i % 7 == 0 ? 255 : (i * 3) % c_tot);
  Tensor labels = Tensor::from_vector(y, {n, h, w});
  models::ForwardResult student;
  student.logits = logits;
  models::ForwardResult teacher;
  teacher.logits = teacher_logits;
  const Method mib(unfused(method_preset("MiB", voc_15_5())));

  profiler::reset();
  profiler::enable(true);
  const LossBreakdown loss = mib.loss(student, &teacher, labels, c_old, 1);
  loss.total.backward();
  profiler::enable(false);
  std::map<std::string, int64_t> calls;
  for (const profiler::Entry& e : profiler::report()) calls[e.name] = e.calls;
  profiler::reset();
  CHECK(calls["log_softmax"] == 1);
  CHECK(calls["log_softmax backward"] == 1);

  // The shared log-probabilities give each term exactly the value of its logits-taking function.
  const Tensor fresh = logits.detach();
  const double unce = unbiased_cross_entropy(fresh, labels, c_old, Reduction::mean_all).item();
  const double unkd = scale(unbiased_knowledge_distillation(fresh, teacher_logits, Reduction::mean_all), 10.0).item();
  CHECK(loss.values.to_vector<double>() == std::vector<double>{unce, unkd});
  CHECK(loss.total.item() == add(Tensor::scalar(unce), Tensor::scalar(unkd)).item());

  // One backward through the shared log_softmax: the gradient of the two separate losses (summed
  // before instead of after log_softmax's backward, so equal within f32 rounding).
  Tensor separate = fresh.clone().set_requires_grad(true);
  add(unbiased_cross_entropy(separate, labels, c_old, Reduction::mean_all),
      scale(unbiased_knowledge_distillation(separate, teacher_logits, Reduction::mean_all), 10.0))
      .backward();
  CHECK_CLOSE(logits.grad(), separate.grad());
}

TEST_CASE("MiB's step-start hook is the balanced classifier init, FT keeps the default init", "[cpu]") {
  models::SegmentationModel with_init(small({16, 5}));
  models::SegmentationModel without(small({16, 5}));
  Method(method_preset("MiB", voc_15_5())).on_step_start(with_init, 1);
  Method(method_preset("FT", voc_15_5())).on_step_start(without, 1);
  const std::vector<float> bias0 = with_init.classifier().step(0).bias().to_vector<float>();
  const std::vector<float> bias1 = with_init.classifier().step(1).bias().to_vector<float>();
  const std::vector<float> untouched0 = without.classifier().step(0).bias().to_vector<float>();
  CHECK(bias0[0] == approx(untouched0[0] - std::log(6.0), test::kF32));
  for (float b : bias1) CHECK(b == bias0[0]);
  CHECK(without.classifier().step(1).bias().to_vector<float>() !=
        with_init.classifier().step(1).bias().to_vector<float>());
  // Nothing happens at step 0.
  models::SegmentationModel step0(small({16}));
  const std::vector<float> before = step0.classifier().step(0).bias().to_vector<float>();
  Method(method_preset("MiB", voc_15_5())).on_step_start(step0, 0);
  CHECK(step0.classifier().step(0).bias().to_vector<float>() == before);
}

TEST_CASE("the teacher is the loaded previous-step model, frozen, in eval mode, without a graph", "[cpu]") {
  models::SegmentationModel previous(small({16}, 21));
  previous.train();
  const TensorMap weights = previous.state_dict();
  // The unfolded teacher runs the model's own forward: bit for bit the previous model's.
  Teacher teacher(small({16}, 99), weights, "previous", Device::cpu(), TeacherForward::unfolded);
  CHECK(teacher.channels() == 16);
  CHECK_FALSE(teacher.model().is_training());
  for (const auto& [name, p] : teacher.model().named_parameters()) {
    INFO(name);
    CHECK_FALSE(p.requires_grad());
  }
  // Its outputs are the previous model's eval-mode outputs, with only the maps asked for.
  const Tensor images = random_images(2, 32, 4);
  previous.eval();
  models::ForwardOptions with_body;
  with_body.body = true;
  const models::ForwardResult expected = previous.forward(images, with_body);
  const models::ForwardResult logits_only = teacher.run(images, models::ForwardOptions{});
  CHECK(logits_only.logits.shape() == Shape{2, 32, 32, 16});
  CHECK_FALSE(logits_only.body.defined());
  CHECK(logits_only.logits.grad_fn() == nullptr);
  CHECK(logits_only.logits.to_vector<float>() == expected.logits.to_vector<float>());
  const models::ForwardResult both = teacher.run(images, with_body);
  CHECK(both.body.to_vector<float>() == expected.body.to_vector<float>());
  // Running it leaves its batch-norm statistics alone.
  const std::vector<float> stats = teacher.model().state_dict().at("body.mod1.bn1.running_mean").to_vector<float>();
  teacher.run(random_images(2, 32, 5), models::ForwardOptions{});
  CHECK(teacher.model().state_dict().at("body.mod1.bn1.running_mean").to_vector<float>() == stats);
  // Weights of another architecture are refused, naming the source.
  CHECK_THROWS_WITH(Teacher(small({15}), weights, "previous", Device::cpu()), Catch::Contains("previous"));
}

TEST_CASE("the default teacher is folded and equals the unfolded one within float rounding", "[cpu]") {
  models::SegmentationModel previous(small({16}, 21));
  Generator norms(8);
  test::randomize_norms(previous, norms);
  const TensorMap weights = previous.state_dict();
  Teacher folded(small({16}, 99), weights, "previous", Device::cpu());
  Teacher unfolded(small({16}, 99), weights, "previous", Device::cpu(), TeacherForward::unfolded);
  CHECK(folded.forward_kind() == TeacherForward::folded);
  CHECK(folded.channels() == 16);
  CHECK(folded.parameter_count() == unfolded.parameter_count());
  // It keeps only its folded weights.
  CHECK_THROWS_WITH(folded.model(), Catch::Contains("folded teacher"));

  const Tensor images = random_images(2, 32, 4);
  models::ForwardOptions with_body;
  with_body.body = true;
  const models::ForwardResult expected = unfolded.run(images, with_body);
  const models::ForwardResult actual = folded.run(images, with_body);
  CHECK(actual.logits.grad_fn() == nullptr);
  CHECK_CLOSE(actual.logits, expected.logits);
  CHECK_CLOSE(actual.body, expected.body);
  CHECK_FALSE(folded.run(images, models::ForwardOptions{}).body.defined());
}

TEST_CASE("the freeze knobs (--freeze-backbone, --freeze-old-classifier) keep those weights at steps >= 1 and compose",
          "[cpu]") {
  const Task task = Task::create(LabelSpace::voc(), "15-5");
  models::SegmentationModel previous(small({16}, 5));
  const TensorMap weights = previous.state_dict();
  Tensor images = Tensor::zeros({2, 32, 32, 3}, DType::u8);
  for (const bool backbone : {false, true}) {
    for (const bool old_classifier : {false, true}) {
      DYNAMIC_SECTION("backbone frozen " << backbone << ", old classifier frozen " << old_classifier) {
        MethodOverrides knobs;
        knobs.freeze_backbone = backbone;
        knobs.freeze_old_classifier = old_classifier;
        StepSetup setup;
        setup.step = 1;
        setup.model = small({16, 5}, 6);
        setup.method = apply_overrides(method_preset("LwF", task), knobs);
        setup.recipe = reference_recipe(task, 1);
        setup.recipe.lr = 0.1;
        StepSession session(setup, task, &weights, "previous", "", 10);
        std::map<std::string, std::vector<float>> before;  // copies: the state dict shares the parameters
        for (const auto& [name, parameter] : session.model().named_parameters()) {
          before[name] = parameter.to_vector<float>();
        }
        for (int i = 0; i < 2; ++i) session.train_iteration(images, cycling_labels(2, 32, 21));
        for (const auto& [name, parameter] : session.model().named_parameters()) {
          const bool in_backbone = name.rfind("body.", 0) == 0;
          const bool old_row = name.rfind("cls.0.", 0) == 0;
          const bool frozen = (backbone && in_backbone) || (old_classifier && old_row);
          INFO(name);
          CHECK(parameter.requires_grad() == !frozen);
          CHECK_FALSE((frozen && parameter.grad().defined()));
          CHECK((parameter.to_vector<float>() == before.at(name)) == frozen);
        }
      }
    }
  }
  MethodOverrides frozen;
  frozen.freeze_backbone = true;
  frozen.freeze_old_classifier = true;
  CHECK(apply_overrides(method_preset("LwF", task), frozen).describe() ==
        "LwF+ (kd x100, backbone frozen, old classifier frozen)");
  // Step 0 always trains everything.
  models::SegmentationModel step0(small({16}, 5));
  Method(apply_overrides(method_preset("FT", task), frozen)).on_step_start(step0, 0);
  for (const auto& [name, parameter] : step0.named_parameters()) CHECK(parameter.requires_grad());
}

TEST_CASE("shared stages (--share-stages) run once, in the teacher, and equal the unshared run with them frozen",
          "[cpu]") {
  const Task task = Task::create(LabelSpace::voc(), "15-5");
  models::SegmentationModel previous(small({16}, 5));
  const TensorMap weights = previous.state_dict();
  Generator g(8);
  const Tensor images = Tensor::uniform({2, 32, 32, 3}, 0.0, 255.0, g).to(DType::u8);
  const Tensor labels = cycling_labels(2, 32, 21);
  for (const std::string method : {"LwF", "PLOP"}) {
    for (int k : {1, 2, 4}) {
      INFO(method << ", --share-stages " << k);
      // conv2d calls of two iterations, loss values and the weights after them.
      struct Run {
        int64_t convolutions = 0;
        std::vector<float> terms;
        TensorMap weights;
      };
      auto run = [&](bool shared) {
        MethodOverrides o;
        if (shared) o.share_stages = k;
        StepSetup setup;
        setup.step = 1;
        setup.model = small({16, 5}, 6);
        if (method == "PLOP") setup.model.output_stride = 8;  // Local POD's scale 4 needs 4x4 maps: 32 / 8
        setup.method = apply_overrides(method_preset(method, task), o);
        setup.recipe = reference_recipe(task, 1);
        setup.recipe.lr = 0.05;
        setup.teacher_forward = TeacherForward::unfolded;  // the student's own ops: comparable bit for bit
        StepSession session(setup, task, &weights, "previous", "", 10);
        if (method == "PLOP") {
          bool given = false;
          session.compute_pseudo_label_thresholds([&]() -> std::optional<ThresholdBatch> {
            if (given) return std::nullopt;
            given = true;
            return ThresholdBatch{images, labels};
          });
        }
        if (!shared) {
          // The unshared run with the same stages frozen: no gradient, batch norm on running statistics.
          for (auto& [name, parameter] : session.model().backbone().parameters_through_stage(k)) {
            parameter.set_requires_grad(false);
          }
          for (const auto& [name, child] : session.model().backbone().children()) {
            if (name == "mod1" || (name.rfind("mod", 0) == 0 && std::stoi(name.substr(3)) <= k + 1)) child->eval();
          }
        }
        Run out;
        profiler::enable();
        profiler::reset();
        for (int i = 0; i < 2; ++i) {
          const Tensor terms = session.train_iteration(images, labels).terms;
          for (float v : terms.to_vector<float>()) out.terms.push_back(v);
        }
        for (const profiler::Entry& e : profiler::report()) {
          if (e.name.rfind("conv2d", 0) == 0 && e.name.find("backward") == std::string::npos) {
            out.convolutions += e.calls;
          }
        }
        profiler::enable(false);
        for (const auto& [name, t] : session.model().state_dict()) out.weights.emplace(name, t.clone());
        return out;
      };
      const Run shared = run(true), unshared = run(false);
      // The student skips the stem's convolution and each shared stage's (3 per block, 1 projection;
      // one block per stage in the small model), twice.
      CHECK(unshared.convolutions - shared.convolutions == 2 * (1 + 4 * k));
      CHECK_CLOSE(Tensor::from_vector(shared.terms, {static_cast<int64_t>(shared.terms.size())}),
                  Tensor::from_vector(unshared.terms, {static_cast<int64_t>(unshared.terms.size())}));
      for (const auto& [name, t] : shared.weights) {
        INFO(name);
        CHECK_CLOSE(t, unshared.weights.at(name));
      }
    }
  }
  MethodOverrides share;
  share.share_stages = 2;
  CHECK(apply_overrides(method_preset("MiB", task), share).describe() ==
        "MiB+ (unce, unkd x10, init_balanced, stages 1-2 shared)");
  CHECK_THROWS_WITH(apply_overrides(method_preset("FT", task), share),
                    Catch::Contains("--share-stages shares the first stages between the teacher and the student"));
  CHECK_THROWS_WITH(apply_overrides(method_preset("EWC", task), share), Catch::Contains("runs no teacher"));
}

TEST_CASE("a step session loads the previous weights, runs the hook and trains one iteration", "[cpu]") {
  const Task task = Task::create(LabelSpace::voc(), "15-5");
  models::SegmentationModel previous(small({16}, 5));
  const TensorMap weights = previous.state_dict();
  StepSetup setup;
  setup.step = 1;
  setup.model = small({16, 5}, 6);
  setup.method = method_preset("MiB", task);
  setup.recipe = reference_recipe(task, 1);
  StepSession session(setup, task, &weights, "previous", "", 10);
  REQUIRE(session.teacher() != nullptr);
  CHECK(session.teacher()->forward_kind() == TeacherForward::folded);
  CHECK(session.old_channels() == 16);
  CHECK(session.schedule().lr() == 0.001);
  // The old parts equal the previous model's; the new classifier got MiB's init.
  const TensorMap loaded = session.model().state_dict();
  CHECK(loaded.at("body.mod5.block1.convs.conv2.weight").to_vector<float>() ==
        weights.at("body.mod5.block1.convs.conv2.weight").to_vector<float>());
  const float shifted = weights.at("cls.0.bias").to_vector<float>()[0] - static_cast<float>(std::log(6.0));
  CHECK(loaded.at("cls.1.bias").to_vector<float>()[0] == approx(shifted, test::kF32));
  // MiB's three groups, Nesterov 0.9, weight decay 1e-4 everywhere.
  const auto& groups = session.optimizer().groups();
  REQUIRE(groups.size() == 3);
  CHECK(groups[0].name == "body");
  CHECK(groups[2].params.size() == 4);
  for (const auto& g : groups) {
    CHECK(g.nesterov);
    CHECK(g.momentum == 0.9);
    CHECK(g.weight_decay == 1e-4);
  }

  const std::vector<float> new_classifier = loaded.at("cls.1.weight").to_vector<float>();
  Tensor images = Tensor::zeros({2, 32, 32, 3}, DType::u8);
  const IterationStats stats = session.train_iteration(images, cycling_labels(2, 32, 21));
  CHECK(stats.images == 2);
  CHECK(stats.lr == 0.001);
  CHECK(stats.names == std::vector<std::string>{"unce", "unkd"});
  CHECK(stats.terms.shape() == Shape{2});
  CHECK(stats.loss.numel() == 1);
  CHECK_FALSE(stats.loss.requires_grad());
  CHECK(std::isfinite(stats.loss.item()));
  CHECK(session.schedule().iteration() == 1);
  CHECK(session.optimizer().steps() == 1);
  CHECK(session.model().state_dict().at("cls.1.weight").to_vector<float>() != new_classifier);

  // The health probe: the gradients' global norm as a host sum would give it, everything finite;
  // then a planted NaN gradient, Inf parameter and Inf statistic, each named.
  {
    double squares = 0;
    for (const auto& [name, parameter] : session.model().named_parameters()) {
      if (!parameter.grad().defined()) continue;
      for (double g : parameter.grad().to_vector<double>()) squares += g * g;
    }
    ModelHealth health = ModelHealth::from(session.health_probe().to_vector<double>());
    CHECK(health.gradient_norm == approx(std::sqrt(squares), test::kF32));
    CHECK(health.gradient_norm > 0);
    CHECK(health.parameters_finite);
    CHECK(health.statistics_finite);
    CHECK(session.first_nonfinite_tensor() == "");
    const auto named = [&](const std::string& key) {
      for (const auto& [name, t] : session.model().named_parameters()) {
        if (name == key) return t;
      }
      for (const auto& [name, t] : session.model().named_buffers()) {
        if (name == key) return t;
      }
      FAIL("no tensor " << key);
      return Tensor();
    };
    Tensor var = named("body.mod1.bn1.running_var");
    var.data<float>()[1] = INFINITY;
    health = ModelHealth::from(session.health_probe().to_vector<double>());
    CHECK(std::isfinite(health.gradient_norm));
    CHECK(health.parameters_finite);
    CHECK_FALSE(health.statistics_finite);
    CHECK(session.first_nonfinite_tensor() == "body.mod1.bn1.running_var");
    Tensor weight = named("body.mod5.block1.convs.conv2.weight");
    weight.grad().data<float>()[0] = NAN;
    health = ModelHealth::from(session.health_probe().to_vector<double>());
    CHECK(std::isnan(health.gradient_norm));
    CHECK(session.first_nonfinite_tensor() == "body.mod5.block1.convs.conv2.weight.grad");
    weight.data<float>()[2] = -INFINITY;
    CHECK_FALSE(ModelHealth::from(session.health_probe().to_vector<double>()).parameters_finite);
    CHECK(session.first_nonfinite_tensor() == "body.mod5.block1.convs.conv2.weight");
    CHECK_THROWS_WITH(ModelHealth::from({1.0}), Catch::Contains("expected the 3 values"));
  }

  // Step >= 1 without previous weights is an error naming the step and task.
  CHECK_THROWS_WITH(StepSession(setup, task, nullptr, "", "", 10),
                    Catch::Contains("step 1 of task 15-5 needs the previous step's weights"));
}

TEST_CASE("reference recipes: lr 0.01 then 0.001, VOC 30 epochs (10-1 later steps 10), ADE 60, batch 24, crop 512",
          "[cpu]") {
  const Recipe voc0 = reference_recipe(voc_15_5(), 0);
  const Recipe voc1 = reference_recipe(voc_15_5(), 1);
  CHECK(voc0.lr == 0.01);
  CHECK(voc1.lr == 0.001);
  CHECK(voc0.epochs == 30);
  CHECK(voc1.epochs == 30);
  CHECK(voc0.batch_size == 24);
  CHECK(voc0.crop_size == 512);
  CHECK(voc0.momentum == 0.9);
  CHECK(voc0.nesterov);
  CHECK(voc0.weight_decay == 1e-4);
  CHECK(voc0.lr_power == 0.9);
  const Task ten_one = Task::create(LabelSpace::voc(), "10-1");
  CHECK(reference_recipe(ten_one, 0).epochs == 30);
  CHECK(reference_recipe(ten_one, 1).epochs == 10);
  CHECK(reference_recipe(ten_one, 10).epochs == 10);
  const Task ade = Task::create(LabelSpace::ade20k(), "100-50");
  CHECK(reference_recipe(ade, 0).epochs == 60);
  CHECK(reference_recipe(ade, 1).epochs == 60);
  CHECK(reference_recipe(ade, 1).lr == 0.001);
  CHECK_THROWS_WITH(reference_recipe(voc_15_5(), 2), Catch::Contains("got step 2"));
}

// ---- PLOP ------------------------------------------------------------------------------------------

TEST_CASE("PLOP's preset: pseudo-labels, Local POD on six maps, adaptive factor, MiB's init, VOC and ADE factors",
          "[cpu]") {
  const Task voc = voc_15_5();
  const MethodConfig plop = method_preset("PLOP", voc);
  CHECK(plop.pod);
  CHECK(plop.pod_factor == 0.01);
  CHECK(plop.pod_logits);
  CHECK(plop.pod_logits_factor == 0.0005);
  CHECK(plop.pseudo);
  CHECK(plop.pseudo_median == PseudoMedian::reference);
  CHECK(plop.pseudo_threshold == 0.001);
  CHECK(plop.classif_adaptive_factor);
  CHECK(plop.init_balanced);
  CHECK_FALSE(plop.unce);
  CHECK(plop.loss_kd == 0);
  CHECK(plop.describe() ==
        "PLOP (init_balanced, pseudo-labels (reference median, threshold >= 0.001), classif_adaptive_factor, local "
        "pod x0.01, logits x0.0005)");
  CHECK(method_preset("plop", voc, Convention::mib).pseudo_median == PseudoMedian::fixed);
  // PLOP's ADE scripts: --pod_factor 0.001 and the logits' factor 0.00001 (not overwritten there).
  const MethodConfig ade = method_preset("PLOP", Task::create(LabelSpace::ade20k(), "100-5"));
  CHECK(ade.pod_factor == 0.001);
  CHECK(ade.pod_logits_factor == 0.00001);

  Method method(plop);
  CHECK(method.step0_is_fine_tuning());  // plain CE at step 0: it may share FT's step-0 checkpoint
  CHECK_FALSE(method.needs_teacher(0));
  CHECK(method.needs_teacher(1));
  CHECK_FALSE(method.needs_pseudo_thresholds(0));
  CHECK(method.needs_pseudo_thresholds(1));
  REQUIRE(method.terms(1).size() == 2);
  CHECK(method.terms(1)[0].kind == LossKind::pseudo_cross_entropy);
  CHECK(std::string(method.terms(1)[0].name) == "pseudo_ce");
  CHECK(method.terms(1)[1].kind == LossKind::local_pod);
  const models::ForwardOptions maps = method.forward_options(1);
  CHECK(maps.stage_pre_activations);
  CHECK(maps.head);
  CHECK(maps.low_res_logits);
  CHECK_FALSE(maps.upsample);
  CHECK_FALSE(maps.body);
  const models::ForwardOptions step0 = method.forward_options(0);
  CHECK_FALSE((step0.stage_pre_activations || step0.head));
}

TEST_CASE("PLOP's flags compose with other methods and contradictory ones name both flags", "[cpu]") {
  const Task voc = voc_15_5();
  MethodOverrides pod_only;
  pod_only.pod = true;
  const MethodConfig mib_pod = apply_overrides(method_preset("MiB", voc), pod_only);
  CHECK(Method(mib_pod).terms(1).back().kind == LossKind::local_pod);
  CHECK(mib_pod.describe() == "MiB+ (unce, unkd x10, init_balanced, local pod x0.01)");

  MethodOverrides unce;
  unce.unce = true;
  refused(voc, "PLOP", unce, "--pseudo and --unce both redefine the background pixels' target");
  MethodOverrides icarl;
  icarl.icarl = true;
  refused(voc, "PLOP", icarl, "--pseudo labels background pixels for the cross-entropy, which --icarl");
  MethodOverrides adaptive;
  adaptive.classif_adaptive_factor = true;
  refused(voc, "FT", adaptive, "--classif-adaptive-factor weighs each image");
  MethodOverrides logits;
  logits.pod_logits = true;
  refused(voc, "MiB", logits, "--pod-logits adds the logits to Local POD's maps and needs --pod local");
  MethodOverrides factor;
  factor.pod_factor = 0.1;
  refused(voc, "MiB", factor, "--pod-factor weighs Local POD and needs --pod local");
  MethodOverrides median;
  median.pseudo_median = PseudoMedian::fixed;
  refused(voc, "FT", median, "--pseudo-median chooses how the pseudo-label thresholds are read and needs --pseudo");
  MethodOverrides threshold;
  threshold.pseudo_threshold = 0.01;
  refused(voc, "LwF", threshold, "--threshold floors the pseudo-label thresholds and needs --pseudo");
  MethodOverrides negative;
  negative.pod_factor = -1;
  refused(voc, "PLOP", negative, "--pod-factor must be >= 0");
}

TEST_CASE("the kd knobs change the distillation term of any method that has one, and name both flags otherwise",
          "[cpu]") {
  const Task voc = voc_15_5();
  MethodOverrides knobs;
  knobs.kd_temperature = 4.0;
  knobs.kd_loss = DistillationLoss::kl_divergence;
  knobs.loss_kd = 10.0;
  // The LwF ablation log's distill_real_kl_t4_include_bg ... disw10.
  const MethodConfig lwf = apply_overrides(method_preset("LwF", voc), knobs);
  CHECK(lwf.describe() == "LwF+ (kd x10 kl T4)");
  CHECK(lwf.kd.temperature == 4.0);
  MethodOverrides l2_no_bg;
  l2_no_bg.kd_loss = DistillationLoss::l2;
  l2_no_bg.kd_exclude_background = true;
  CHECK(apply_overrides(method_preset("ILT", voc), l2_no_bg).describe() == "ILT+ (kd x100 l2 no background, de x100)");
  MethodOverrides temperature;
  temperature.kd_temperature = 2.0;
  CHECK(apply_overrides(method_preset("MiB", voc), temperature).describe() ==
        "MiB+ (unce, unkd x10 T2, init_balanced)");

  refused(voc, "FT", temperature, "--kd-temperature changes the output distillation (kd or unkd), which --method FT");
  refused(voc, "LwF-MC", temperature,
          "--kd-temperature changes the output distillation (kd or unkd), which --method LwF-MC");
  MethodOverrides l2;
  l2.kd_loss = DistillationLoss::l2;
  refused(voc, "MiB", l2,
          "--unkd (MiB's unbiased KD) folds the new classes into background inside a cross-entropy and has "
          "no L2 form; --kd-loss l2");
  refused(voc, "PLOP", l2, "--kd-loss changes the output distillation");
  MethodOverrides no_bg;
  no_bg.kd_exclude_background = true;
  refused(voc, "MiB", no_bg, "--unkd distils background folded with the new classes; --kd-exclude-background");
  MethodOverrides zero;
  zero.kd_temperature = 0.0;
  refused(voc, "LwF", zero, "--kd-temperature must be > 0, got 0");
}

TEST_CASE("the kd knobs give the same losses and gradients on the fused and unfused paths", "[cpu]") {
  Generator g(21);
  const int64_t n = 2, c_old = 5, c_tot = 8;
  const Tensor low = Tensor::randn({n, 4, 5, c_tot}, g);
  const Tensor teacher_low = Tensor::randn({n, 4, 5, c_old}, g);
  std::vector<uint8_t> y(static_cast<size_t>(n * 17 * 19));
  for (size_t i = 0; i < y.size(); ++i) y[i] = static_cast<uint8_t>(i % 11 == 0 ? 255 : (i * 5) % c_tot);
  const Tensor labels = Tensor::from_vector(y, {n, 17, 19});
  struct Run {
    const char* method;
    double temperature;
    DistillationLoss loss;
    bool exclude_background;
    bool icarl;
  };
  const Run runs[] = {{"LwF", 4.0, DistillationLoss::kl_divergence, false, false},
                      {"LwF", 2.0, DistillationLoss::l2, true, false},
                      {"ILT", 1.0, DistillationLoss::cross_entropy, true, false},
                      {"MiB", 3.0, DistillationLoss::kl_divergence, false, false},
                      {"LwF-MC", 0.5, DistillationLoss::l2, false, true}};
  for (const Run& run : runs) {
    INFO(run.method << " T " << run.temperature << " " << distillation_loss_name(run.loss) << " exclude background "
                    << run.exclude_background);
    MethodOverrides o;
    o.kd_temperature = run.temperature;
    o.kd_loss = run.loss;
    if (run.exclude_background) o.kd_exclude_background = true;
    if (run.icarl) o.loss_kd = 7.0;  // LwF-MC with a KD term besides its own: kd keeps its place
    const MethodConfig config = apply_overrides(method_preset(run.method, voc_15_5()), o);
    std::map<bool, LossBreakdown> losses;
    std::map<bool, Tensor> gradients;
    for (bool fused : {true, false}) {
      MethodConfig c = config;
      c.fused_losses = fused;
      Tensor leaf = low.detach().set_requires_grad(true);
      models::ForwardResult student, teacher;
      if (fused) {
        student.low_res_logits = leaf;
        teacher.low_res_logits = teacher_low;
      } else {
        student.logits = upsample_bilinear(leaf, 17, 19, false);
        teacher.logits = upsample_bilinear(teacher_low, 17, 19, false);
      }
      // ILT's de term: the same features on both paths.
      student.body = teacher.body = Tensor::ones({n, 2, 2, 3});
      losses[fused] = Method(c).loss(student, &teacher, labels, c_old, 1);
      losses[fused].total.backward();
      gradients[fused] = leaf.grad();
    }
    CHECK(losses[true].names == losses[false].names);
    CHECK_CLOSE(losses[true].values, losses[false].values);
    CHECK_CLOSE(gradients[true], gradients[false]);
    if (run.icarl) CHECK(losses[true].names == std::vector<std::string>{"bce", "kd", "icarl"});
  }
  // The references' knobs keep kd in the shared fused call, its place among the terms unchanged.
  const Method lwf(method_preset("LwF", voc_15_5()));
  models::ForwardResult student, teacher;
  student.low_res_logits = low;
  teacher.low_res_logits = teacher_low;
  CHECK(lwf.loss(student, &teacher, labels, c_old, 1).names == term_names(lwf, 1));
}

TEST_CASE(
    "a PLOP step computes its thresholds from the teacher, then trains on pseudo-labels and Local POD, the fused "
    "and unfused paths alike",
    "[cpu]") {
  const Task task = voc_15_5();
  models::SegmentationModel previous(small({16}, 5));
  const TensorMap weights = previous.state_dict();
  // u8 images as the loader gives them.
  std::vector<uint8_t> bytes(2 * 64 * 64 * 3);
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>((i * 37) % 251);
  const Tensor images = Tensor::from_vector(bytes, {2, 64, 64, 3});
  const Tensor labels = cycling_labels(2, 64, 21);
  auto session_for = [&](bool fused) {
    StepSetup setup;
    setup.step = 1;
    setup.model = small({16, 5}, 6);
    setup.method = method_preset("PLOP", task);
    setup.method.fused_losses = fused;
    setup.recipe = reference_recipe(task, 1);
    return std::make_unique<StepSession>(setup, task, &weights, "previous", "", 10);
  };
  std::unique_ptr<StepSession> fused = session_for(true), unfused = session_for(false);
  CHECK_THROWS_WITH(fused->train_iteration(images, labels), Catch::Contains("needs PLOP's pseudo-label thresholds"));

  // The pass: two batches of the "training data", the histogram read once at the end.
  for (StepSession* session : {fused.get(), unfused.get()}) {
    int batch = 0;
    std::vector<int64_t> progress;
    session->compute_pseudo_label_thresholds(
        [&]() -> std::optional<ThresholdBatch> {
          if (batch == 2) return std::nullopt;
          ++batch;
          return ThresholdBatch{images, labels};
        },
        [&](int64_t done) { progress.push_back(done); });
    CHECK(progress == std::vector<int64_t>{1, 2});
    REQUIRE(session->method().pseudo_thresholds().has_value());
    CHECK(session->method().pseudo_thresholds()->values.size() == 16);
  }
  CHECK(fused->method().pseudo_thresholds()->values == unfused->method().pseudo_thresholds()->values);

  const IterationStats a = fused->train_iteration(images, labels);
  const IterationStats b = unfused->train_iteration(images, labels);
  CHECK(a.names == std::vector<std::string>{"pseudo_ce", "pod"});
  CHECK(b.names == a.names);
  const std::vector<float> fa = a.terms.to_vector<float>(), fb = b.terms.to_vector<float>();
  CHECK(fa[0] > 0);
  CHECK(fa[1] >= 0);
  for (size_t k = 0; k < fa.size(); ++k) CHECK(fa[k] == approx(fb[k], test::kF32));
  // The step's checkpoint state carries the thresholds; another session restores them bit for bit.
  const TensorMap state = fused->method().state();
  CHECK(state.count("pseudo_thresholds") == 1);
  std::unique_ptr<StepSession> restored = session_for(true);
  Method copy(restored->method().config());
  copy.load_state(state, "checkpoint", 1);
  CHECK(copy.pseudo_thresholds()->values == fused->method().pseudo_thresholds()->values);
  Method ft(method_preset("FT", task));
  CHECK_THROWS_WITH(ft.load_state(state, "ckpt.safetensors", 1),
                    Catch::Contains("ckpt.safetensors: the checkpoint carries pseudo-label thresholds"));
}
