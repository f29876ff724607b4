// engine/profiler.h on a model's training step: every op and its backward is counted once per call
// with its self time, nested scopes are not counted twice, and nothing is recorded while disabled.
// (It lives with the models tests because a model step is what it is for.)
#include <catch2/catch.hpp>

#include <chrono>
#include <map>
#include <thread>

#include "engine/ops/elementwise.h"
#include "engine/ops/losses.h"
#include "engine/profiler.h"
#include "models/segmentation_model.h"

using namespace strata;

namespace {

std::map<std::string, profiler::Entry> entries() {
  std::map<std::string, profiler::Entry> out;
  for (const profiler::Entry& e : profiler::report()) out.emplace(e.name, e);
  return out;
}

}  // namespace

TEST_CASE("the profiler counts every op of a training step and its backward", "[cpu]") {
  models::ModelConfig config;
  config.depth = 50;
  config.initialize = false;
  models::SegmentationModel model(config);
  model.train();
  Generator g(1);
  Tensor x = Tensor::randn({2, 33, 33, 3}, g);
  Tensor labels = Tensor::zeros({2, 33, 33}, DType::i64);

  profiler::reset();
  model.forward(x);
  CHECK(profiler::report().empty());  // disabled by default

  profiler::enable(true);
  Tensor loss = cross_entropy(model.forward(x).logits, labels, Reduction::mean_valid);
  loss.backward();
  profiler::enable(false);
  std::map<std::string, profiler::Entry> ops = entries();
  // ResNet-50: 53 convs in the backbone, 8 in the MiB head, 1 classifier.
  CHECK(ops.at("conv2d").calls == 53 + 7 + 1);
  CHECK(ops.at("conv2d backward").calls == 53 + 7 + 1);
  CHECK(ops.at("inplace_abn").calls == ops.at("inplace_abn backward").calls);
  CHECK(ops.at("cross_entropy").calls == 1);
  CHECK(ops.at("upsample_bilinear backward").calls == 1);
  double self = 0;
  for (const auto& [name, e] : ops) {
    INFO(name);
    CHECK(e.self_seconds >= 0);
    CHECK(e.self_seconds <= e.total_seconds + 1e-9);
    self += e.self_seconds;
  }
  CHECK(self > 0);
  CHECK_THAT(profiler::format_report(profiler::report(), 5, 1), Catch::Contains("conv2d") && Catch::Contains("(all ops)"));
}

TEST_CASE("a composite op's self time excludes the ops it calls", "[cpu]") {
  profiler::reset();
  profiler::enable(true);
  {
    profiler::Scope outer("outer");
    {
      profiler::Scope inner("inner");
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  Generator g(2);
  Tensor a = Tensor::randn({64, 64}, g), b = Tensor::randn({64, 64}, g);
  sub(a, b);  // sub = scale + add
  profiler::enable(false);
  std::map<std::string, profiler::Entry> ops = entries();
  CHECK(ops.at("inner").self_seconds >= 0.019);
  CHECK(ops.at("outer").total_seconds >= 0.024);
  CHECK(ops.at("outer").self_seconds < 0.019);
  CHECK(ops.at("outer").self_seconds >= 0.004);
  CHECK(ops.at("sub").calls == 1);
  CHECK(ops.at("scale").calls == 1);
  CHECK(ops.at("add").calls == 1);
  CHECK(ops.at("sub").self_seconds <= ops.at("sub").total_seconds);
  profiler::reset();
  CHECK(profiler::report().empty());
}
