// The torchvision flavour against torchvision's deeplabv3_resnet50/101 (num_classes 21, aux head,
// output stride 8; tools/torchref/models_torchvision.py): a torchvision state dict loads by name
// (classifier.4 as cls.0), and one forward + cross-entropy backward on a 2x3x65x97 input gives the
// same logits, aux logits, loss, gradient of every parameter and running statistics, in training and
// eval mode. Parameter counts equal torchvision's.
#include <catch2/catch.hpp>

#include "tests/models/model_parity.h"
#include "tests/support/torch_reference.h"

using namespace strata;

namespace {

models::ModelConfig torchvision_config(int depth, bool training) {
  models::ModelConfig config;
  config.flavour = models::Flavour::torchvision;
  config.initialize = false;  // the reference state is loaded next
  config.depth = depth;
  // torchvision dilates only its bottleneck ResNets; ResNet-18/34 run at output stride 32 with
  // DeepLabHead's rates (tools/torchref/models_torchvision.py).
  config.output_stride = depth >= 50 ? 8 : 32;
  if (depth < 50) config.atrous_rates = {12, 24, 36};
  config.classes = {21};
  config.aux = true;
  // Dropout draws random masks: the reference runs torchvision's Dropout modules in eval mode
  // (identity) for the training-mode case, so strata uses p = 0 there (dropout has its own tests).
  if (training) {
    config.aspp_dropout = 0;
    config.aux_dropout = 0;
  }
  return config;
}

void check_torchvision(int depth, bool training) {
  models::SegmentationModel model(torchvision_config(depth, training));
  std::string name = cat("deeplabv3_resnet", depth, depth < 50 ? "_os32" : "");
  {
    test::TorchCase counts("models_torchvision", "parameter_counts");
    CHECK(model.parameter_count() == static_cast<int64_t>(counts.param(cat("resnet", depth))));
    CHECK(model.aux().parameter_count() == static_cast<int64_t>(counts.param(cat("resnet", depth, "_aux"))));
  }
  test::ParityOptions options;
  options.training = training;
  options.aux = true;
  options.renamed = {{"cls.0.", "classifier.4."}};
  test::check_model_parity(model, "models_torchvision", name, options);
}

}  // namespace

TEST_CASE("torchvision deeplabv3_resnet50 in eval mode: logits and gradients match", "[torch]") {
  check_torchvision(50, false);
}

TEST_CASE("torchvision deeplabv3_resnet50 in training mode: logits and gradients and statistics match", "[torch]") {
  check_torchvision(50, true);
}

TEST_CASE("torchvision deeplabv3_resnet101 in eval mode: logits and gradients match", "[torch]") {
  check_torchvision(101, false);
}

TEST_CASE("torchvision deeplabv3_resnet101 in training mode: logits and gradients and statistics match", "[torch]") {
  check_torchvision(101, true);
}

TEST_CASE("torchvision-built DeepLabV3 on ResNet-18 (basic blocks) in eval mode: logits and gradients match",
          "[torch]") {
  check_torchvision(18, false);
}

TEST_CASE("torchvision-built DeepLabV3 on ResNet-18 in training mode: logits and gradients and statistics match",
          "[torch]") {
  check_torchvision(18, true);
}

TEST_CASE("torchvision-built DeepLabV3 on ResNet-34 has torchvision's parameter counts", "[torch]") {
  models::SegmentationModel model(torchvision_config(34, false));
  test::TorchCase counts("models_torchvision", "parameter_counts");
  CHECK(model.parameter_count() == static_cast<int64_t>(counts.param("resnet34")));
  CHECK(model.aux().parameter_count() == static_cast<int64_t>(counts.param("resnet34_aux")));
}
