// The mib flavour (In-place ABN backbone, MiB's DeepLabV3 head, incremental classifier) against the
// PyTorch model written from SPEC §4 in tools/torchref/models_mib.py: MiB's state dict loads by
// name, and one forward + cross-entropy backward on a 2x3x65x97 input gives the same logits, loss,
// gradient of every parameter and running statistics in training and eval mode, and the same
// intermediate maps PLOP and ILT read (body, head, low-resolution logits, stage pre-activations).
#include <catch2/catch.hpp>

#include "tests/models/model_parity.h"
#include "tests/support/compare.h"

using namespace strata;

namespace {

models::ModelConfig mib_config(int depth, int output_stride, std::vector<int64_t> classes, int64_t pooling_size) {
  models::ModelConfig config;
  config.flavour = models::Flavour::mib;
  config.initialize = false;  // the reference state is loaded next
  config.depth = depth;
  config.output_stride = output_stride;
  config.classes = std::move(classes);
  config.pooling_size = pooling_size;
  return config;
}

const Tensor& expected_tensor(const SafetensorsFile& file, const std::string& key) {
  auto it = file.tensors.find(key);
  check(it != file.tensors.end(), "MiB reference has no '", key, "'");
  return it->second;
}

void check_mib(const models::ModelConfig& config, const std::string& name, bool training, bool intermediates) {
  models::SegmentationModel model(config);
  {
    SafetensorsFile state = test::load_model_case("models_mib", name + "_state");
    CHECK(model.parameter_count() == static_cast<int64_t>(std::stod(state.metadata.at("parameters"))));
  }
  test::ParityOptions options;
  options.training = training;
  if (intermediates) {
    options.forward.low_res_logits = true;
    options.forward.body = true;
    options.forward.head = true;
    options.forward.stage_pre_activations = true;
    options.check_outputs = [](const models::ForwardResult& result, const SafetensorsFile& expected) {
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
      for (int i = 0; i < 4; ++i) {
        INFO("pre-activation of stage " << i + 1);
        CHECK_CLOSE(result.stage_pre_activations[i], expected_tensor(expected, cat("pre.", i)), test::kF32);
      }
    };
  }
  test::check_model_parity(model, "models_mib", name, options);
}

}  // namespace

TEST_CASE("MiB ResNet-101 OS16 in eval mode: logits and gradients match", "[torch]") {
  check_mib(mib_config(101, 16, {21}, 32), "mib_resnet101_os16", false, false);
}

TEST_CASE("MiB ResNet-101 OS16 in training mode: logits and gradients and statistics match", "[torch]") {
  check_mib(mib_config(101, 16, {21}, 32), "mib_resnet101_os16", true, false);
}

TEST_CASE("MiB ResNet-50 OS8 with three steps in eval mode (sliding pooling window 4): outputs match", "[torch]") {
  check_mib(mib_config(50, 8, {16, 3, 2}, 4), "mib_resnet50_os8_steps", false, true);
}

TEST_CASE("MiB ResNet-50 OS8 with three steps in training mode: outputs and intermediate maps match", "[torch]") {
  check_mib(mib_config(50, 8, {16, 3, 2}, 4), "mib_resnet50_os8_steps", true, true);
}

TEST_CASE("MiB ResNet-50 OS16 in eval mode with an odd pooling window (3): logits and gradients match", "[torch]") {
  check_mib(mib_config(50, 16, {11}, 3), "mib_resnet50_os16_pool3", false, false);
}

TEST_CASE("MiB ResNet-18 (basic blocks) OS16 in eval mode: logits and gradients match", "[torch]") {
  check_mib(mib_config(18, 16, {21}, 32), "mib_resnet18_os16", false, false);
}

TEST_CASE("MiB ResNet-18 OS16 in training mode: logits and gradients and statistics match", "[torch]") {
  check_mib(mib_config(18, 16, {21}, 32), "mib_resnet18_os16", true, false);
}

TEST_CASE("MiB ResNet-34 OS8 with two steps in training mode: outputs and intermediate maps match", "[torch]") {
  check_mib(mib_config(34, 8, {16, 5}, 32), "mib_resnet34_os8_steps", true, true);
}
