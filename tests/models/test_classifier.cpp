// The incremental classifier: logits are the concatenation of the steps' convs in class order,
// adding a step leaves the old logits bit for bit unchanged, and MiB's balanced initialisation
// splits the old background probability evenly over the background and the new classes.
#include <catch2/catch.hpp>

#include <cmath>

#include "engine/autograd.h"
#include "engine/ops/conv2d.h"
#include "engine/ops/softmax.h"
#include "models/segmentation_model.h"
#include "tests/support/compare.h"

using namespace strata;

TEST_CASE("the classifier concatenates its steps' logits in class order", "[cpu]") {
  Generator g(1);
  models::IncrementalClassifier classifier(8, {3, 2, 1}, g);
  CHECK(classifier.steps() == 3);
  CHECK(classifier.total_classes() == 6);
  CHECK(classifier.classes_per_step() == std::vector<int64_t>{3, 2, 1});
  std::vector<std::string> names;
  for (const auto& [name, t] : classifier.named_parameters()) names.push_back(name);
  CHECK(names == std::vector<std::string>{"0.weight", "0.bias", "1.weight", "1.bias", "2.weight", "2.bias"});
  Tensor features = Tensor::randn({2, 3, 4, 8}, g);
  std::vector<float> logits = classifier.forward(features).to_vector<float>();
  int64_t offset = 0;
  for (int64_t step = 0; step < 3; ++step) {
    nn::Conv2d& conv = classifier.step(step);
    std::vector<float> part = conv2d(features, conv.weight(), conv.bias()).to_vector<float>();
    int64_t k = conv.out_channels();
    for (int64_t pixel = 0; pixel < 24; ++pixel) {
      for (int64_t c = 0; c < k; ++c) REQUIRE(logits[pixel * 6 + offset + c] == part[pixel * k + c]);
    }
    offset += k;
  }
  CHECK_THROWS_WITH(classifier.add_step(0, g), Catch::Contains("at least one class"));
  models::IncrementalClassifier single(8, {3}, g);
  CHECK_THROWS_WITH(single.init_balanced_new_step(), Catch::Contains("needs a new step"));
}

TEST_CASE("adding a step keeps every old logit of the model exactly", "[cpu]") {
  models::ModelConfig config;
  config.depth = 50;
  config.classes = {16};
  models::SegmentationModel model(config);
  model.eval();
  autograd::NoGradGuard no_grad;
  Generator g(2);
  Tensor x = Tensor::randn({1, 37, 45, 3}, g);
  std::vector<float> before = model.forward(x).logits.to_vector<float>();
  model.add_step(3);
  model.add_step(1);
  CHECK(model.config().classes == std::vector<int64_t>{16, 3, 1});
  CHECK(model.state_dict().count("cls.2.weight") == 1);
  std::vector<float> after = model.forward(x).logits.to_vector<float>();
  REQUIRE(after.size() == before.size() / 16 * 20);
  for (size_t pixel = 0; pixel < before.size() / 16; ++pixel) {
    for (size_t c = 0; c < 16; ++c) REQUIRE(after[pixel * 20 + c] == before[pixel * 16 + c]);
  }
}

TEST_CASE("MiB's balanced init splits the old background probability evenly", "[cpu]") {
  models::ModelConfig config;
  config.depth = 50;
  config.classes = {11};
  models::SegmentationModel model(config);
  model.eval();
  autograd::NoGradGuard no_grad;
  Generator g(3);
  Tensor x = Tensor::randn({1, 33, 41, 3}, g);
  std::vector<float> old_p = softmax(model.forward(x).logits).to_vector<float>();
  const int64_t n_new = 4;
  model.add_step(n_new);
  model.classifier().init_balanced_new_step();
  std::vector<float> new_p = softmax(model.forward(x).logits).to_vector<float>();
  const size_t pixels = old_p.size() / 11;
  REQUIRE(new_p.size() == pixels * 15);
  double worst = 0;
  for (size_t pixel = 0; pixel < pixels; ++pixel) {
    const float* o = &old_p[pixel * 11];
    const float* n = &new_p[pixel * 15];
    // Background and every new class get an equal share of the old background probability ...
    double share = o[0] / static_cast<double>(n_new + 1);
    worst = std::max(worst, std::fabs(n[0] - share) / share);
    for (int64_t c = 11; c < 15; ++c) worst = std::max(worst, std::fabs(n[c] - share) / share);
    // ... and the old classes keep theirs.
    for (int64_t c = 1; c < 11; ++c) worst = std::max(worst, std::fabs(static_cast<double>(n[c]) - o[c]) / o[c]);
  }
  CHECK(worst <= test::kF32.rtol);
  nn::Conv2d& step0 = model.classifier().step(0);
  nn::Conv2d& step1 = model.classifier().step(1);
  std::vector<float> w0 = step0.weight().to_vector<float>(), w1 = step1.weight().to_vector<float>();
  for (int64_t c = 0; c < n_new; ++c) {
    CHECK(std::equal(w0.begin(), w0.begin() + 256, w1.begin() + c * 256));
    CHECK(step1.bias().to_vector<float>()[c] == step0.bias().to_vector<float>()[0]);
  }
}
