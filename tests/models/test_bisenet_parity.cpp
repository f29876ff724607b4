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

const Tensor& expected_tensor(const SafetensorsFile& file, const std::string& key) {
  auto it = file.tensors.find(key);
  check(it != file.tensors.end(), "BiSeNet reference has no '", key, "'");
  return it->second;
}

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
  options.forward.low_res_logits = true;
  options.forward.body = true;
  options.forward.head = true;
  options.check_outputs = [](const models::ForwardResult& result, const SafetensorsFile& expected) {
    REQUIRE(result.aux_logits.size() == 2);
    {
      INFO("low-resolution logits");
      CHECK_CLOSE(result.low_res_logits, expected_tensor(expected, "low_res"), test::kF32);
    }
    {
      INFO("body");
      CHECK_CLOSE(result.body, expected_tensor(expected, "body"), test::kF32);
    }
    {
      INFO("head");
      CHECK_CLOSE(result.head, expected_tensor(expected, "head"), test::kF32);
    }
  };
  test::check_model_parity(model, "models_bisenet", "bisenet_resnet18", options);
}

}  // namespace

TEST_CASE("BiSeNet-R18 in eval mode: logits, both aux logits and gradients match the reference's layout", "[torch]") {
  check_bisenet(false);
}

TEST_CASE("BiSeNet-R18 in training mode: logits, aux logits, gradients and statistics match", "[torch]") {
  check_bisenet(true);
}
