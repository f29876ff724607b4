// --arch deeplabv3plus against the PyTorch DeepLabV3+ written from the paper in its reference's layout
// (tools/torchref/models_deeplabv3plus.py): the reference's state dict renamed by
// tools/convert_weights.py's table loads by name, and one forward + cross-entropy backward on a
// 2x3x65x97 input gives the same logits (align_corners upsampling), loss, gradient of every parameter
// and running statistics in training and eval mode, and the same body, head (decoder output) and
// low-resolution logits, at output stride 16 and 8 (the multi-grid dilations). Parameter counts equal
// the reference's.
#include <catch2/catch.hpp>

#include "tests/models/model_parity.h"
#include "tests/support/compare.h"

using namespace strata;

namespace {

void check_deeplabv3plus(int output_stride, bool training) {
  models::ModelConfig config;
  config.arch = models::Architecture::deeplabv3plus;
  config.initialize = false;  // the reference state is loaded next
  config.depth = 50;
  config.output_stride = output_stride;
  config.classes = {21};
  models::SegmentationModel model(config);
  // Dropout draws random masks: the reference runs it in eval mode (identity) for the training-mode
  // case, so strata uses p = 0 there (dropout has its own tests).
  if (training) dynamic_cast<models::DeepLabV3PlusHead&>(model.head()).set_dropout(0, 0, 0);
  const std::string name = cat("deeplabv3plus_resnet50_os", output_stride);
  {
    SafetensorsFile state = test::load_model_case("models_deeplabv3plus", name + "_state");
    CHECK(model.parameter_count() == static_cast<int64_t>(std::stod(state.metadata.at("parameters"))));
  }
  test::ParityOptions options;
  options.training = training;
  test::compare_body_head_and_low_res(options);
  test::check_model_parity(model, "models_deeplabv3plus", name, options);
}

}  // namespace

TEST_CASE("DeepLabV3+-R50 OS16 in eval mode: logits and gradients match the reference's layout", "[torch]") {
  check_deeplabv3plus(16, false);
}

TEST_CASE("DeepLabV3+-R50 OS16 in training mode: logits, gradients and statistics match", "[torch]") {
  check_deeplabv3plus(16, true);
}

TEST_CASE("DeepLabV3+-R50 OS8 in training mode: logits, gradients and statistics match", "[torch]") {
  check_deeplabv3plus(8, true);
}
