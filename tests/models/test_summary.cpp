// Model summaries: the multiply-add counts of reference/performance-anchors.md §1 (which reproduce
// torchvision's published GFLOPS field) and parameter counts equal to torchvision's.
#include <catch2/catch.hpp>

#include <cstdio>

#include "models/segmentation_model.h"
#include "tests/support/torch_reference.h"

using namespace strata;

namespace {

// GMAC to two (or three) decimals, as the anchors state them.
std::string gmac(int64_t macs, int decimals = 2) {
  char text[32];
  std::snprintf(text, sizeof text, "%.*f", decimals, static_cast<double>(macs) * 1e-9);
  return text;
}

models::ModelSummary summarize(models::Flavour flavour, int depth, int output_stride, bool aux, int64_t size) {
  models::ModelConfig config;
  config.flavour = flavour;
  config.depth = depth;
  config.output_stride = output_stride;
  config.aux = aux;
  config.classes = {21};
  config.initialize = false;
  return models::SegmentationModel(config).summary(size, size);
}

const std::vector<std::string> kBackbone = {"stem", "layer1", "layer2", "layer3", "layer4"};

}  // namespace

TEST_CASE("MiB DeepLabV3 on ResNet-101 OS16 at 512x512 costs 67.13 GMAC (backbone 51.82 + head 15.31)", "[cpu]") {
  models::ModelSummary s = summarize(models::Flavour::mib, 101, 16, false, 512);
  CHECK(gmac(s.macs) == "67.13");
  CHECK(gmac(s.macs_of(kBackbone)) == "51.82");
  CHECK(gmac(s.macs_of({"head", "classifier"})) == "15.31");
  // performance-anchors.md §1.3, per stage (three decimals there)
  CHECK(gmac(s.stage("stem").macs, 3) == "0.617");
  CHECK(gmac(s.stage("layer1").macs, 3) == "3.490");
  CHECK(gmac(s.stage("layer2").macs, 3) == "5.369");
  CHECK(gmac(s.stage("layer3").macs, 3) == "27.045");
  CHECK(gmac(s.stage("layer4").macs, 3) == "15.301");
  CHECK(s.stage("layer4").output == Shape{1, 32, 32, 2048});
  CHECK(s.stage("upsample").output == Shape{1, 512, 512, 21});
}

TEST_CASE("MiB DeepLabV3 on ResNet-50 OS16 at 512x512 costs 47.73 GMAC", "[cpu]") {
  models::ModelSummary s = summarize(models::Flavour::mib, 50, 16, false, 512);
  CHECK(gmac(s.macs) == "47.73");
  CHECK(gmac(s.macs_of(kBackbone)) == "32.43");
  CHECK(gmac(s.stage("layer3").macs, 3) == "7.650");
}

TEST_CASE("torchvision deeplabv3_resnet50/101 at 520x520 (OS8 with aux) cost 178.72 and 258.74 GMAC", "[cpu]") {
  CHECK(gmac(summarize(models::Flavour::torchvision, 50, 8, true, 520).macs) == "178.72");
  CHECK(gmac(summarize(models::Flavour::torchvision, 101, 8, true, 520).macs) == "258.74");
}

TEST_CASE("summary parameter counts equal torchvision's", "[torch]") {
  test::TorchCase counts("models_torchvision", "parameter_counts");
  for (int depth : {50, 101}) {
    models::ModelSummary s = summarize(models::Flavour::torchvision, depth, 8, true, 65);
    CHECK(s.parameters == static_cast<int64_t>(counts.param(cat("resnet", depth))));
    CHECK(s.stage("aux").parameters == static_cast<int64_t>(counts.param(cat("resnet", depth, "_aux"))));
  }
}

TEST_CASE("format_summary prints stages by default and every layer when verbose", "[cpu]") {
  models::ModelSummary s = summarize(models::Flavour::mib, 50, 16, false, 512);
  std::string brief = models::format_summary(s, false);
  CHECK_THAT(brief, Catch::Contains("mod4 (6 blocks)") && Catch::Contains("47.73") && Catch::Contains("32.43"));
  CHECK_THAT(brief, !Catch::Contains("body.mod4.block2.convs.conv2"));
  std::string verbose = models::format_summary(s, true);
  CHECK_THAT(verbose, Catch::Contains("body.mod4.block2.convs.conv2") && Catch::Contains("conv 3x3 256->256"));
  CHECK_THAT(verbose, Catch::Contains("body.mod5.block1.convs.conv2") && Catch::Contains("conv 3x3 d2 512->512"));
}

TEST_CASE("summary multiply-adds equal PyTorch's convolution count for every architecture (65x97)", "[torch]") {
  // tools/torchref/models_common.py's conv_macs: forward hooks on every Conv2d of the reference models.
  auto macs = [](models::ModelConfig config) {
    config.classes = {21};
    config.initialize = false;
    return models::SegmentationModel(config).summary(65, 97).macs;
  };
  test::TorchCase counts("models_torchvision", "parameter_counts");
  for (int depth : {50, 101, 18, 34}) {
    INFO("torchvision DeepLabV3-R" << depth);
    models::ModelConfig config;
    config.flavour = models::Flavour::torchvision;
    config.depth = depth;
    config.output_stride = depth >= 50 ? 8 : 32;
    if (depth < 50) config.atrous_rates = {12, 24, 36};
    config.aux = true;
    CHECK(macs(config) == static_cast<int64_t>(counts.param(cat("resnet", depth, "_macs"))));
  }
  {
    INFO("PSPNet-R50");
    models::ModelConfig config;
    config.arch = models::Architecture::pspnet;
    config.depth = 50;
    config.output_stride = 8;
    test::TorchCase reference("models_pspnet", "pspnet_resnet50_state");
    CHECK(macs(config) == static_cast<int64_t>(reference.param("macs")));
  }
  {
    INFO("BiSeNet-R18");
    models::ModelConfig config;
    config.arch = models::Architecture::bisenet;
    config.depth = 18;
    config.output_stride = 32;
    test::TorchCase reference("models_bisenet", "bisenet_resnet18_state");
    CHECK(macs(config) == static_cast<int64_t>(reference.param("macs")));
  }
  for (int output_stride : {16, 8}) {
    INFO("DeepLabV3+-R50 OS" << output_stride);
    models::ModelConfig config;
    config.arch = models::Architecture::deeplabv3plus;
    config.depth = 50;
    config.output_stride = output_stride;
    test::TorchCase reference("models_deeplabv3plus", cat("deeplabv3plus_resnet50_os", output_stride, "_state"));
    CHECK(macs(config) == static_cast<int64_t>(reference.param("macs")));
  }
}
