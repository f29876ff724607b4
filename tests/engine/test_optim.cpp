// SGD and the poly schedule against torch.optim.SGD over several steps, and against its documented
// algorithm on every setting of tests/engine/sgd_cases.h; Adam likewise against torch.optim.Adam and
// the settings of tests/engine/adam_cases.h; state save/restore of both.
#include <catch2/catch.hpp>
#include <cmath>

#include "engine/optim/adam.h"
#include "engine/optim/sgd.h"
#include "tests/engine/adam_cases.h"
#include "tests/engine/sgd_cases.h"
#include "tests/support/compare.h"
#include "tests/support/tolerances.h"
#include "tests/support/torch_reference.h"

using namespace strata;
using strata::test::approx;
using strata::test::kF64Scalar;

namespace {

struct Params {
  Tensor conv, bias;
  nn::NamedTensors named() const { return {{"conv", conv}, {"bias", bias}}; }
};

Params initial_params(const test::TorchCase& c) {
  Params p{c["conv"].clone(), c["bias"].clone()};
  p.conv.set_requires_grad(true);
  p.bias.set_requires_grad(true);
  return p;
}

// A parameter whose gradient the case leaves out at step t gets none (the optimizer skips it).
void feed_gradients(const test::TorchCase& c, Params& p, int t) {
  for (auto [key, param] : {std::pair{"conv", &p.conv}, std::pair{"bias", &p.bias}}) {
    const std::string grad = std::string("grad.") + key + "." + std::to_string(t);
    param->set_grad(c.has(grad) ? c[grad] : Tensor());
  }
}

void check_step(const test::TorchCase& c, const Params& p, int t) {
  INFO("after step " << t);
  CHECK_CLOSE(p.conv, c["conv.after." + std::to_string(t)]);
  CHECK_CLOSE(p.bias, c["bias.after." + std::to_string(t)]);
}

}  // namespace

TEST_CASE("SGD with Nesterov, weight decay, two groups and the poly schedule matches torch.optim.SGD", "[torch]") {
  test::TorchCase c("optim", "sgd_nesterov_poly");
  Params p = initial_params(c);
  optim::SGD sgd({{"body", {{"conv", p.conv}}, 0.01, 0.9, 1e-4, true},
                  {"classifier", {{"bias", p.bias}}, 0.1, 0.9, 1e-4, true}});
  optim::PolyLR schedule(sgd, static_cast<int64_t>(c.param("max_iters")));
  for (int t = 0; t < static_cast<int>(c.param("steps")); ++t) {
    feed_gradients(c, p, t);
    sgd.step();
    schedule.step();
    check_step(c, p, t);
  }
}

TEST_CASE("SGD without momentum and with momentum + dampening matches torch.optim.SGD", "[torch]") {
  for (const char* name : {"sgd_plain", "sgd_momentum_dampening"}) {
    INFO(name);
    test::TorchCase c("optim", name);
    Params p = initial_params(c);
    optim::ParamGroup group{"all", p.named(), 0.05};
    if (std::string(name) == "sgd_momentum_dampening") {
      group.momentum = 0.5;
      group.dampening = 0.3;
      group.weight_decay = 0.01;
    }
    optim::SGD sgd({group});
    for (int t = 0; t < static_cast<int>(c.param("steps")); ++t) {
      feed_gradients(c, p, t);
      sgd.step();
      check_step(c, p, t);
    }
  }
}

TEST_CASE("SGD steps follow torch.optim.SGD's documented algorithm on every setting", "[cpu]") {
  for (DType dtype : {DType::f32, DType::f64}) {
    for (const test::SgdSetting& s : test::sgd_settings()) {
      INFO(s.name << " in " << dtype_name(dtype));
      Generator g(7);
      Tensor w = Tensor::randn({3, 5}, g, dtype);
      w.set_requires_grad(true);
      std::vector<double> p = w.to_vector<double>(), buf(p.size());
      optim::SGD sgd(s.groups({{"w", w}}));
      for (int t = 0; t < 4; ++t) {
        Tensor grad = test::sgd_gradient(w.shape(), dtype, t, 0);
        w.set_grad(grad);
        sgd.step();
        // torch.optim.SGD: d = g + wd p; buf = t == 0 ? d : m buf + (1 - dampening) d;
        // d = nesterov ? d + m buf : buf (with momentum); p -= lr d. In double.
        std::vector<double> gv = grad.to_vector<double>();
        for (size_t i = 0; i < p.size(); ++i) {
          double d = gv[i] + s.weight_decay * p[i];
          if (s.momentum != 0) {
            buf[i] = t == 0 ? d : s.momentum * buf[i] + (1 - s.dampening) * d;
            d = s.nesterov ? d + s.momentum * buf[i] : buf[i];
          }
          p[i] -= s.lr * d;
        }
        INFO("after step " << t);
        CHECK_CLOSE(w, Tensor::from_vector(p, w.shape()).to(dtype));
      }
    }
  }
}

TEST_CASE("PolyLR follows lr0 * (1 - t/T)^0.9 with MiB's floor", "[cpu]") {
  Tensor w = Tensor::zeros({2});
  w.set_requires_grad(true);
  optim::SGD sgd({{"g", {{"w", w}}, 0.01, 0.9, 1e-4, true}});
  optim::PolyLR schedule(sgd, 100, 0.9, 1e-6);
  CHECK(schedule.lr() == approx(0.01, kF64Scalar));
  for (int t = 1; t <= 100; ++t) {
    schedule.step();
    double expected = std::max(0.01 * std::pow(1.0 - t / 100.0, 0.9), 1e-6);
    REQUIRE(schedule.lr() == approx(expected, kF64Scalar));
  }
  CHECK(schedule.lr() == approx(1e-6, kF64Scalar));
  schedule.set_iteration(50);
  CHECK(schedule.lr() == approx(0.01 * std::pow(0.5, 0.9), kF64Scalar));
}

TEST_CASE("SGD state save and restore continue bit for bit", "[cpu]") {
  Generator g(5);
  auto make = [&](Tensor& w) {
    w = Tensor::randn({3, 4}, g);
    w.set_requires_grad(true);
  };
  Tensor a, b;
  make(a);
  b = a.clone();
  b.set_requires_grad(true);
  std::vector<Tensor> grads;
  for (int t = 0; t < 6; ++t) grads.push_back(Tensor::randn({3, 4}, g));

  optim::SGD straight({{"g", {{"w", a}}, 0.1, 0.9, 1e-4, true}});
  for (int t = 0; t < 6; ++t) {
    a.set_grad(grads[static_cast<size_t>(t)]);
    straight.step();
  }

  optim::SGD first({{"g", {{"w", b}}, 0.1, 0.9, 1e-4, true}});
  for (int t = 0; t < 3; ++t) {
    b.set_grad(grads[static_cast<size_t>(t)]);
    first.step();
  }
  Metadata meta;
  TensorMap state = first.state_dict(meta);
  optim::SGD resumed({{"g", {{"w", b}}, 0.1, 0.9, 1e-4, true}});
  resumed.load_state_dict(state, meta);
  CHECK(resumed.steps() == 3);
  for (int t = 3; t < 6; ++t) {
    b.set_grad(grads[static_cast<size_t>(t)]);
    resumed.step();
  }
  CHECK(a.to_vector<float>() == b.to_vector<float>());
}

TEST_CASE("SGD rejects bad configuration and bad state", "[cpu]") {
  Tensor w = Tensor::zeros({2});
  w.set_requires_grad(true);
  CHECK_THROWS_WITH(optim::SGD({{"g", {{"w", w}}, 0.1, 0.0, 0.0, true}}), Catch::Contains("Nesterov"));
  CHECK_THROWS_WITH(optim::SGD({{"a", {{"w", w}}, 0.1}, {"b", {{"w", w}}, 0.1}}),
                    Catch::Contains("more than one group"));
  CHECK_THROWS_WITH(optim::SGD({{"g", {{"w", w}}, -0.1}}), Catch::Contains("negative"));
  optim::SGD sgd({{"g", {{"w", w}}, 0.1, 0.9}});
  CHECK_THROWS_WITH(sgd.load_state_dict({{"momentum_buffer.v", Tensor::zeros({2})}}, {{"sgd.steps", "1"}}),
                    Catch::Contains("unknown parameter 'v'"));
  CHECK_THROWS_WITH(sgd.load_state_dict({{"momentum_buffer.w", Tensor::zeros({3})}}, {{"sgd.steps", "1"}}),
                    Catch::Contains("shape"));
}

TEST_CASE("Adam matches torch.optim.Adam: defaults, weight decay with own betas and skipped steps, AMSGrad",
          "[torch]") {
  for (const char* name : {"adam_defaults", "adam_weight_decay", "adam_amsgrad"}) {
    INFO(name);
    test::TorchCase c("optim", name);
    Params p = initial_params(c);
    std::vector<optim::AdamGroup> groups;
    const std::string n = name;
    if (n == "adam_defaults") groups = {{"all", p.named(), 0.01}};
    if (n == "adam_weight_decay") {
      groups = {{"conv", {{"conv", p.conv}}, 0.02, 0.8, 0.99, 1e-6, 0.05},
                {"bias", {{"bias", p.bias}}, 0.005, 0.5, 0.9, 1e-3, 0.1}};
    }
    if (n == "adam_amsgrad") groups = {{"all", p.named(), 0.01, 0.9, 0.999, 1e-8, 0.01, true}};
    optim::Adam adam(groups);
    for (int t = 0; t < static_cast<int>(c.param("steps")); ++t) {
      feed_gradients(c, p, t);
      adam.step();
      check_step(c, p, t);
    }
  }
}

TEST_CASE("Adam steps follow torch.optim.Adam's documented algorithm on every setting", "[cpu]") {
  for (DType dtype : {DType::f32, DType::f64}) {
    for (const test::AdamSetting& s : test::adam_settings()) {
      INFO(s.name << " in " << dtype_name(dtype));
      Generator g(9);
      Tensor w = Tensor::randn({3, 5}, g, dtype);
      w.set_requires_grad(true);
      std::vector<double> p = w.to_vector<double>(), m(p.size()), v(p.size()), v_max(p.size());
      optim::Adam adam(s.groups({{"w", w}}));
      for (int t = 1; t <= 5; ++t) {
        Tensor grad = test::sgd_gradient(w.shape(), dtype, t, 0);
        w.set_grad(grad);
        adam.step();
        // torch.optim.Adam: g += wd p; m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
        // v_max = max(v_max, v) with AMSGrad; p -= lr / (1 - b1^t) m / (sqrt(v) / sqrt(1 - b2^t) + eps).
        std::vector<double> gv = grad.to_vector<double>();
        for (size_t i = 0; i < p.size(); ++i) {
          double d = gv[i] + s.weight_decay * p[i];
          m[i] = s.beta1 * m[i] + (1 - s.beta1) * d;
          v[i] = s.beta2 * v[i] + (1 - s.beta2) * d * d;
          v_max[i] = std::max(v_max[i], v[i]);
          double second = s.amsgrad ? v_max[i] : v[i];
          double denom = std::sqrt(second) / std::sqrt(1 - std::pow(s.beta2, t)) + s.eps;
          p[i] -= s.lr / (1 - std::pow(s.beta1, t)) * m[i] / denom;
        }
        INFO("after step " << t);
        CHECK_CLOSE(w, Tensor::from_vector(p, w.shape()).to(dtype));
      }
    }
  }
}

TEST_CASE("Adam state save and restore continue bit for bit, AMSGrad and per-parameter steps included", "[cpu]") {
  Generator g(11);
  Tensor a = Tensor::randn({3, 4}, g), c = Tensor::randn({2}, g);
  Tensor b = a.clone(), d = c.clone();
  for (Tensor* t : {&a, &b, &c, &d}) t->set_requires_grad(true);
  std::vector<Tensor> grads;
  for (int t = 0; t < 6; ++t) grads.push_back(Tensor::randn({3, 4}, g));
  std::vector<Tensor> small_grads;
  for (int t = 0; t < 6; ++t) small_grads.push_back(Tensor::randn({2}, g));
  // The second parameter gets gradients only at even steps, so the two step counts differ at the save.
  auto group = [](Tensor& w, Tensor& u) {
    return std::vector<optim::AdamGroup>{{"g", {{"w", w}, {"u", u}}, 0.1, 0.8, 0.9, 1e-6, 0.01, true}};
  };
  auto feed = [&](Tensor& w, Tensor& u, int t) {
    w.set_grad(grads[static_cast<size_t>(t)]);
    u.set_grad(t % 2 == 0 ? small_grads[static_cast<size_t>(t)] : Tensor());
  };
  optim::Adam straight(group(a, c));
  for (int t = 0; t < 6; ++t) {
    feed(a, c, t);
    straight.step();
  }
  optim::Adam first(group(b, d));
  for (int t = 0; t < 3; ++t) {
    feed(b, d, t);
    first.step();
  }
  Metadata meta;
  TensorMap state = first.state_dict(meta);
  CHECK(meta.at("adam.step.w") == "3");
  CHECK(meta.at("adam.step.u") == "2");
  CHECK(state.count("max_exp_avg_sq.w") == 1);
  optim::Adam resumed(group(b, d));
  resumed.load_state_dict(state, meta);
  for (int t = 3; t < 6; ++t) {
    feed(b, d, t);
    resumed.step();
  }
  CHECK(a.to_vector<float>() == b.to_vector<float>());
  CHECK(c.to_vector<float>() == d.to_vector<float>());
}

TEST_CASE("Adam rejects bad configuration and bad state", "[cpu]") {
  Tensor w = Tensor::zeros({2});
  w.set_requires_grad(true);
  CHECK_THROWS_WITH(optim::Adam({{"g", {{"w", w}}, 0.1, 1.0}}), Catch::Contains("betas in [0, 1)"));
  CHECK_THROWS_WITH(optim::Adam({{"g", {{"w", w}}, 0.1, 0.9, -0.1}}), Catch::Contains("betas in [0, 1)"));
  CHECK_THROWS_WITH(optim::Adam({{"a", {{"w", w}}}, {"b", {{"w", w}}}}), Catch::Contains("more than one group"));
  CHECK_THROWS_WITH(optim::Adam({{"g", {{"w", w}}, -0.1}}), Catch::Contains("negative"));
  optim::Adam adam({{"g", {{"w", w}}}});
  Metadata meta{{"adam.step.w", "1"}};
  CHECK_THROWS_WITH(adam.load_state_dict({{"exp_avg.v", Tensor::zeros({2})}}, meta),
                    Catch::Contains("unknown parameter 'v'"));
  CHECK_THROWS_WITH(adam.load_state_dict({{"exp_avg.w", Tensor::zeros({3})}}, meta), Catch::Contains("shape"));
  CHECK_THROWS_WITH(adam.load_state_dict({{"exp_avg.w", Tensor::zeros({2})}}, meta), Catch::Contains("exp_avg_sq.w"));
  CHECK_THROWS_WITH(adam.load_state_dict({{"exp_avg.w", Tensor::zeros({2})}, {"exp_avg_sq.w", Tensor::zeros({2})}}, {}),
                    Catch::Contains("adam.step.w"));
}
