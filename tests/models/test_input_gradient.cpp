// The gradient of a segmentation model's logits with respect to its input images, the quantity
// DeepInversion (Yin et al., CVPR 2020) descends when it optimises images against a frozen network:
// the images are a leaf that requires grad, the model is frozen in eval mode (running statistics),
// and the f64 gradient matches central finite differences (tests/support/gradcheck.h, with the
// whole-network step of tests/support/tolerances.h) through the
// whole DeepLabV3: stem, max-pool, bottlenecks, ASPP with its image pooling, classifier and the
// bilinear upsampling to the input size.
#include <catch2/catch.hpp>

#include "models/segmentation_model.h"
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
