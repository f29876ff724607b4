// The gradients DeepInversion (Yin et al., CVPR 2020) descends when it optimises images against a
// frozen network, w.r.t. the images: of a segmentation model's logits, and of the feature-statistics
// loss over its norms' inputs (engine/nn/feature_statistics.h), whose value is also checked against the
// statistics computed here in double. For both:
// the images are a leaf that requires grad, the model is frozen in eval mode (running statistics),
// and the f64 gradient matches central finite differences (tests/support/gradcheck.h, with the
// whole-network step of tests/support/tolerances.h) through the
// whole DeepLabV3: stem, max-pool, bottlenecks, ASPP with its image pooling, classifier and the
// bilinear upsampling to the input size.
#include <catch2/catch.hpp>
#include <cmath>

#include "engine/nn/feature_statistics.h"
#include "models/segmentation_model.h"
#include "tests/models/model_parity.h"
#include "tests/support/compare.h"
#include "tests/support/gradcheck.h"
#include "tests/support/tolerances.h"

using namespace strata;

namespace {

// A tiny DeepLabV3 (ResNet-14 of width 4, 8-channel head) whose running statistics come from one
// training-mode forward, so eval mode normalises with statistics that are neither 0 nor 1.
std::shared_ptr<models::SegmentationModel> frozen_tiny_deeplab(models::Flavour flavour) {
  models::ModelConfig config = models::small_model_config({3, 2}, 16);
  config.flavour = flavour;
  config.norm.reset();
  config.width = 4;
  config.head_channels = 8;
  config.aspp_dropout = 0;
  config.seed = 17;
  auto model = std::make_shared<models::SegmentationModel>(config);
  model->to(DType::f64);
  Generator g(23);
  model->forward(Tensor::randn({2, 24, 24, 3}, g, DType::f64));
  model->eval();
  for (auto [name, p] : model->named_parameters()) p.set_requires_grad(false);
  return model;
}

}  // namespace

TEST_CASE("a frozen DeepLabV3's logits give the f64 gradient w.r.t. the input images", "[gradcheck]") {
  for (models::Flavour flavour : {models::Flavour::mib, models::Flavour::torchvision}) {
    INFO(models::flavour_name(flavour));
    auto model = frozen_tiny_deeplab(flavour);
    Generator g(29);
    Tensor images = Tensor::randn({1, 20, 20, 3}, g, DType::f64);
    images.set_requires_grad(true);
    CHECK_GRADCHECK([&](const std::vector<Tensor>& x) { return model->forward(x[0]).logits; }, {images}, 1234,
                    test::kGradcheckNetworkStep);
  }
}

namespace {

// R_feature of engine/nn/feature_statistics.h from the recorded inputs' values, in double.
double feature_statistics_in_double(const std::vector<nn::NormInput>& inputs, double first_layer_weight) {
  double loss = 0;
  for (size_t l = 0; l < inputs.size(); ++l) {
    const int64_t channels = inputs[l].input.size(3);
    const std::vector<double> x = inputs[l].input.to_vector<double>();
    const std::vector<double> running_mean = inputs[l].running_mean.to_vector<double>();
    const std::vector<double> running_var = inputs[l].running_var.to_vector<double>();
    const size_t rows = x.size() / static_cast<size_t>(channels);
    double mean_distance = 0, var_distance = 0;
    for (size_t c = 0; c < static_cast<size_t>(channels); ++c) {
      double mu = 0, var = 0;
      for (size_t r = 0; r < rows; ++r) mu += x[r * static_cast<size_t>(channels) + c];
      mu /= static_cast<double>(rows);
      for (size_t r = 0; r < rows; ++r) var += std::pow(x[r * static_cast<size_t>(channels) + c] - mu, 2);
      var /= static_cast<double>(rows);
      mean_distance += std::pow(mu - running_mean[c], 2);
      var_distance += std::pow(var - running_var[c], 2);
    }
    loss += (l == 0 ? first_layer_weight : 1.0) * (std::sqrt(mean_distance) + std::sqrt(var_distance));
  }
  return loss;
}

int64_t count_norms(const nn::Module& module) {
  int64_t n = dynamic_cast<const nn::BatchNorm2d*>(&module) || dynamic_cast<const nn::InPlaceABN*>(&module) ? 1 : 0;
  for (const auto& [name, child] : module.children()) n += count_norms(*child);
  return n;
}

}  // namespace

TEST_CASE("the feature-statistics loss records every norm's input in forward order and sums its distances", "[cpu]") {
  for (models::Flavour flavour : {models::Flavour::mib, models::Flavour::torchvision}) {
    INFO(models::flavour_name(flavour));
    auto model = frozen_tiny_deeplab(flavour);
    Generator g(31);
    Tensor images = Tensor::randn({2, 20, 20, 3}, g, DType::f64);
    nn::NormInputRecorder recorder(*model);
    CHECK(static_cast<int64_t>(recorder.layers()) == count_norms(*model));
    model->forward(images);
    const std::vector<nn::NormInput>& inputs = recorder.inputs();
    // Every norm runs once in this model (the MiB head's image branch included, at global pooling).
    CHECK(inputs.size() == recorder.layers());
    CHECK(inputs.front().input.size(1) == 10);  // the stem's norm, before the max-pool: stride 2
    CHECK(inputs.front().input.size(0) == 2);
    Tensor loss = nn::feature_statistics_loss(inputs, 10);
    CHECK(loss.dim() == 0);
    CHECK(loss.item() == test::approx(feature_statistics_in_double(inputs, 10)));
    recorder.clear();
    CHECK(recorder.inputs().empty());
  }
  CHECK_THROWS_WITH(nn::feature_statistics_loss({}), Catch::Contains("no normalisation layer"));
  nn::NormInput wrong{"layer.bn", Tensor::zeros({1, 2, 2, 3}, DType::f64), Tensor::zeros({4}, DType::f64),
                      Tensor::ones({3}, DType::f64)};
  CHECK_THROWS_WITH(nn::feature_statistics_loss({wrong}), Catch::Contains("'layer.bn'"));
}

TEST_CASE("a recorder detaches from the norms when it is destroyed", "[cpu]") {
  auto model = frozen_tiny_deeplab(models::Flavour::mib);
  Generator g(37);
  Tensor images = Tensor::randn({1, 20, 20, 3}, g, DType::f64);
  std::vector<nn::NormInput> kept;
  {
    nn::NormInputRecorder first(*model);
    model->forward(images);
    kept = first.inputs();
  }
  // A forward without a recorder must not call into the destroyed one (ASan would report it).
  model->forward(images);
  nn::NormInputRecorder second(*model);
  model->forward(images);
  CHECK(second.inputs().size() == kept.size());
}

TEST_CASE("DeepInversion's feature-statistics loss gives the f64 gradient w.r.t. the input images", "[gradcheck]") {
  for (models::Flavour flavour : {models::Flavour::mib, models::Flavour::torchvision}) {
    INFO(models::flavour_name(flavour));
    auto model = frozen_tiny_deeplab(flavour);
    nn::NormInputRecorder recorder(*model);
    Generator g(41);
    Tensor images = Tensor::randn({2, 12, 12, 3}, g, DType::f64);
    images.set_requires_grad(true);
    auto loss = [&](const std::vector<Tensor>& x) {
      recorder.clear();
      model->forward(x[0]);
      return nn::feature_statistics_loss(recorder.inputs(), 10);
    };
    CHECK_GRADCHECK(loss, {images}, 1234, test::kGradcheckNetworkStep);
  }
}

TEST_CASE("the feature-statistics loss and its image gradient match NVlabs' DeepInversion hooks in PyTorch",
          "[torch]") {
  // tools/torchref/deep_inversion.py: MiB's ResNet-18 at output stride 16, eval mode, 2x3x33x41 images.
  SafetensorsFile file = test::load_model_case("deep_inversion", "mib_resnet18_os16");
  models::ModelConfig config;
  config.flavour = models::Flavour::mib;
  config.initialize = false;  // the reference state is loaded next
  config.depth = 18;
  config.output_stride = 16;
  config.classes = {21};
  models::SegmentationModel model(config);
  model.load_state_dict(test::with_prefix(file.tensors, "state."));
  model.to(DType::f64);
  model.eval();
  nn::NormInputRecorder recorder(model);
  CHECK(static_cast<double>(recorder.layers()) == std::stod(file.metadata.at("norms")));
  Tensor images = file.tensors.at("x").to(DType::f64);
  images.set_requires_grad(true);
  model.forward(images);
  CHECK(recorder.inputs().size() == recorder.layers());
  Tensor loss = nn::feature_statistics_loss(recorder.inputs(), std::stod(file.metadata.at("first_bn_multiplier")));
  loss.backward();
  // Float64 on both sides, compared within the float32 tolerance as every model parity test
  // (tests/support/tolerances.h: the two libraries sum convolutions in different orders).
  CHECK_CLOSE(loss, file.tensors.at("loss"), test::kF32);
  CHECK_CLOSE(images.grad(), file.tensors.at("grad.x"), test::kF32);
}
