// SegmentationModel::forward returns the upsampled logits and, only on request, the intermediate
// maps; nothing else outlives the call (checked with the allocator's byte counter), with and without
// a training graph. A forward started from another run's shared stages equals the whole forward.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>

#include "engine/autograd.h"
#include "engine/ops/losses.h"
#include "models/segmentation_model.h"

using namespace strata;

namespace {

models::SegmentationModel make_model(models::Flavour flavour, bool aux = false) {
  models::ModelConfig config;
  config.flavour = flavour;
  config.depth = 50;
  config.classes = aux ? std::vector<int64_t>{6} : std::vector<int64_t>{4, 2};
  config.aux = aux;
  config.output_stride = 16;
  config.initialize = false;
  return models::SegmentationModel(config);
}

int64_t allocated() { return memory_stats(Device::cpu()).allocated_bytes; }

int64_t bytes_of(const models::ForwardResult& r) {
  int64_t n = 0;
  for (const Tensor* t : {&r.logits, &r.low_res_logits, &r.body, &r.head}) {
    if (t->defined()) n += static_cast<int64_t>(t->nbytes());
  }
  for (const Tensor& t : r.aux_logits) n += static_cast<int64_t>(t.nbytes());
  for (const Tensor& t : r.stage_pre_activations) {
    if (t.defined()) n += static_cast<int64_t>(t.nbytes());
  }
  return n;
}

}  // namespace

TEST_CASE("forward returns only what was asked for with the documented shapes", "[cpu]") {
  models::SegmentationModel model = make_model(models::Flavour::mib);
  model.eval();
  autograd::NoGradGuard no_grad;
  Generator g(1);
  Tensor x = Tensor::randn({2, 49, 35, 3}, g);

  models::ForwardResult plain = model.forward(x);
  CHECK(plain.logits.shape() == Shape{2, 49, 35, 6});
  CHECK_FALSE(plain.low_res_logits.defined());
  CHECK_FALSE(plain.body.defined());
  CHECK_FALSE(plain.head.defined());
  CHECK(plain.aux_logits.empty());
  for (const Tensor& t : plain.stage_pre_activations) CHECK_FALSE(t.defined());

  models::ForwardOptions all;
  all.low_res_logits = all.body = all.head = all.stage_pre_activations = true;
  models::ForwardResult full = model.forward(x, all);
  CHECK(full.logits.to_vector<float>() == plain.logits.to_vector<float>());
  CHECK(full.low_res_logits.shape() == Shape{2, 4, 3, 6});
  CHECK(full.body.shape() == Shape{2, 4, 3, 2048});
  CHECK(full.head.shape() == Shape{2, 4, 3, 256});
  CHECK(full.stage_pre_activations[0].shape() == Shape{2, 13, 9, 256});
  CHECK(full.stage_pre_activations[1].shape() == Shape{2, 7, 5, 512});
  CHECK(full.stage_pre_activations[2].shape() == Shape{2, 4, 3, 1024});
  CHECK(full.stage_pre_activations[3].shape() == Shape{2, 4, 3, 2048});

  models::ForwardOptions low;
  low.upsample = false;
  models::ForwardResult small = model.forward(x, low);
  CHECK_FALSE(small.logits.defined());
  CHECK(small.low_res_logits.to_vector<float>() == full.low_res_logits.to_vector<float>());

  CHECK_THROWS_WITH(model.forward(x, models::ForwardOptions{true, false, false, false, false, true}),
                    Catch::Contains("no aux head"));
  CHECK_THROWS_WITH(model.forward(Tensor::zeros({2, 49, 35, 4})), Catch::Contains("(N,H,W,3)"));
}

TEST_CASE("without a graph the forward keeps nothing but the returned tensors alive", "[cpu]") {
  for (auto flavour : {models::Flavour::torchvision, models::Flavour::mib}) {
    models::SegmentationModel model = make_model(flavour, flavour == models::Flavour::torchvision);
    Generator g(2);
    Tensor x = Tensor::randn({2, 33, 29, 3}, g);
    for (bool training : {false, true}) {
      model.train(training);
      INFO(models::flavour_name(flavour) << (training ? " training" : " eval"));
      autograd::NoGradGuard no_grad;
      models::ForwardOptions requests[4];
      requests[1].upsample = false;
      requests[2].body = requests[2].head = true;
      requests[3].stage_pre_activations = requests[3].low_res_logits = true;
      requests[3].aux_logits = flavour == models::Flavour::torchvision;
      for (const models::ForwardOptions& options : requests) {
        int64_t before = allocated();
        models::ForwardResult result = model.forward(x, options);
        CHECK(allocated() - before == bytes_of(result));
      }
    }
  }
}

TEST_CASE("after backward only the returned tensors and the gradients stay allocated", "[cpu]") {
  models::SegmentationModel model = make_model(models::Flavour::mib);
  model.train();
  Generator g(3);
  Tensor x = Tensor::randn({2, 33, 29, 3}, g);
  Tensor labels = Tensor::zeros({2, 33, 29}, DType::i64);
  for (bool with_maps : {false, true}) {
    INFO((with_maps ? "with" : "without") << " intermediate maps");
    model.zero_grad();
    models::ForwardOptions options;
    options.body = options.head = options.stage_pre_activations = with_maps;
    int64_t before = allocated();
    models::ForwardResult result = model.forward(x, options);
    Tensor loss = cross_entropy(result.logits, labels, Reduction::mean_all);
    loss.backward();
    int64_t gradients = 0;
    for (const auto& [name, p] : model.named_parameters()) gradients += static_cast<int64_t>(p.grad().nbytes());
    CHECK(allocated() - before == bytes_of(result) + static_cast<int64_t>(loss.nbytes()) + gradients);
  }
}

TEST_CASE("shared stages: a forward started from another run's stage output equals the whole forward", "[cpu]") {
  Generator g(2);
  const Tensor x = Tensor::randn({2, 33, 41, 3}, g);
  for (const models::Flavour flavour : {models::Flavour::mib, models::Flavour::torchvision}) {
    models::SegmentationModel model = make_model(flavour);
    model.eval();
    autograd::NoGradGuard no_grad;
    const models::FoldedSegmentationModel folded(model);
    for (int k = 1; k <= 4; ++k) {
      INFO("flavour " << static_cast<int>(flavour) << ", shared stages " << k);
      models::ForwardOptions options;
      options.stage_pre_activations = options.head = true;
      const models::ForwardResult whole = model.forward(x, options);
      CHECK_FALSE(whole.stage_output.defined());  // not asked for
      options.shared_stages = k;
      const models::ForwardResult teacher = model.forward(x, options);
      REQUIRE(teacher.stage_output.defined());
      CHECK(teacher.stage_output.size(3) == model.backbone().stage_channels(k));
      CHECK(teacher.logits.to_vector<float>() == whole.logits.to_vector<float>());
      const models::ForwardResult student = model.forward(x, options, &teacher);
      CHECK(student.logits.to_vector<float>() == whole.logits.to_vector<float>());
      CHECK(student.head.to_vector<float>() == whole.head.to_vector<float>());
      for (size_t s = 0; s < 4; ++s) {
        CHECK(student.stage_pre_activations[s].to_vector<float>() == whole.stage_pre_activations[s].to_vector<float>());
      }
      CHECK_FALSE(student.stage_output.defined());
      // The folded teacher's stage output: the same map within the folding's rounding.
      const Tensor folded_output = folded.forward(x, options).stage_output;
      REQUIRE(folded_output.shape() == teacher.stage_output.shape());
      const std::vector<float> a = folded_output.to_vector<float>(), b = teacher.stage_output.to_vector<float>();
      double worst = 0, scale = 0;
      for (size_t i = 0; i < a.size(); ++i) {
        worst = std::max(worst, static_cast<double>(std::abs(a[i] - b[i])));
        scale = std::max(scale, static_cast<double>(std::abs(b[i])));
      }
      CHECK(worst <= 1e-4 * scale);
    }
  }
  models::SegmentationModel model = make_model(models::Flavour::mib);
  models::ForwardOptions options;
  options.shared_stages = 2;
  models::ForwardResult none;
  CHECK_THROWS_WITH(model.forward(x, options, &none), Catch::Contains("the other network's stage output"));
  models::ForwardResult wrong;
  wrong.stage_output = Tensor::zeros({2, 5, 6, 7});
  CHECK_THROWS_WITH(model.forward(x, options, &wrong), Catch::Contains("expected stage 2's output (N,h,w,512)"));
  const models::ForwardResult teacher = model.forward(x, options);
  options.stage_pre_activations = true;
  CHECK_THROWS_WITH(model.forward(x, options, &teacher), Catch::Contains("lacks stage 1's pre-activation"));
}
