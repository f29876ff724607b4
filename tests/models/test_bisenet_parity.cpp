// --arch bisenet against the PyTorch BiSeNet v1 written from the paper in CoinCheung/BiSeNet's layout
// (tools/torchref/models_bisenet.py): the reference state renamed by tools/convert_weights.py's table
// loads by name, and one forward + backward of the main and both aux cross-entropies on a 2x3x65x97
// input (odd sizes: the context path's nearest resizing is not a plain doubling) gives the same
// logits, aux logits, loss, gradient of every parameter and running statistics in training and eval
// mode, and the same body, head and low-resolution logits. Parameter counts equal the reference's.
#include <catch2/catch.hpp>

#include "tests/models/model_parity.h"
#include "tests/support/compare.h"

using namespace strata;

namespace {

void check_bisenet(bool training) {
  models::ModelConfig config;
  config.arch = models::Architecture::bisenet;
  config.initialize = false;  // the reference state is loaded next
  config.depth = 18;
  config.output_stride = 32;
  config.classes = {21};
  models::SegmentationModel model(config);
  {
    SafetensorsFile state = test::load_model_case("models_bisenet", "bisenet_resnet18_state");
    CHECK(model.parameter_count() == static_cast<int64_t>(std::stod(state.metadata.at("parameters"))));
  }
  test::ParityOptions options;
  options.training = training;
  options.aux = true;
  options.aux_weight = 1.0;
  test::compare_body_head_and_low_res(options);
  test::check_model_parity(model, "models_bisenet", "bisenet_resnet18", options);
}

}  // namespace

TEST_CASE("BiSeNet-R18 in eval mode: logits, both aux logits and gradients match the reference's layout", "[torch]") {
  check_bisenet(false);
}

TEST_CASE("BiSeNet-R18 in training mode: logits, aux logits, gradients and statistics match", "[torch]") {
  check_bisenet(true);
}
