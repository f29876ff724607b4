// --arch pspnet against the PyTorch PSPNet written from the paper in semseg's layout
// (tools/torchref/models_pspnet.py): a semseg state dict renamed by tools/convert_weights.py's table
// loads by name, and one forward + backward of cross-entropy + 0.4 x the aux cross-entropy on a
// 2x3x65x97 input gives the same logits (align_corners upsampling), aux logits, loss, gradient of
// every parameter and running statistics in training and eval mode, and the same body, head and
// low-resolution logits. Parameter counts equal the reference's.
#include <catch2/catch.hpp>

#include "tests/models/model_parity.h"
#include "tests/support/compare.h"

using namespace strata;

namespace {

models::ModelConfig pspnet_config(bool training) {
  models::ModelConfig config;
  config.arch = models::Architecture::pspnet;
  config.initialize = false;  // the reference state is loaded next
  config.depth = 50;
  config.output_stride = 8;
  config.classes = {21};
  // Dropout2d draws random masks: the reference runs it in eval mode (identity) for the
  // training-mode case, so strata uses p = 0 there (dropout2d has its own tests).
  if (training) config.psp_dropout = 0;
  return config;
}

void check_pspnet(bool training) {
  models::SegmentationModel model(pspnet_config(training));
  {
    SafetensorsFile state = test::load_model_case("models_pspnet", "pspnet_resnet50_state");
    CHECK(model.parameter_count() == static_cast<int64_t>(std::stod(state.metadata.at("parameters"))));
    CHECK(model.psp_aux().parameter_count() == static_cast<int64_t>(std::stod(state.metadata.at("aux_parameters"))));
  }
  test::ParityOptions options;
  options.training = training;
  options.aux = true;
  options.aux_weight = 0.4;
  test::compare_body_head_and_low_res(options);
  test::check_model_parity(model, "models_pspnet", "pspnet_resnet50", options);
}

}  // namespace

TEST_CASE("PSPNet-R50 in eval mode: logits, aux logits and gradients match semseg's layout", "[torch]") {
  check_pspnet(false);
}

TEST_CASE("PSPNet-R50 in training mode: logits, aux logits, gradients and statistics match", "[torch]") {
  check_pspnet(true);
}
