// ResNet structure: strides and dilations per block in both layouts and every output stride, the
// feature sizes they give on odd input sizes, state-dict names, and summaries that agree with real
// forwards.
#include <catch2/catch.hpp>

#include "engine/autograd.h"
#include "models/segmentation_model.h"

using namespace strata;

namespace {

// "s<stride>d<dilation>" of every block of stage `stage` (1..4).
std::vector<std::string> geometry(const models::ResNet& resnet, int stage) {
  std::vector<std::string> out;
  for (const auto& block : resnet.stage(stage)) out.push_back(cat("s", block->stride(), "d", block->dilation()));
  return out;
}

models::ResNet make_resnet(models::Layout layout, int output_stride, int depth = 50) {
  Generator g(1);
  return models::ResNet(models::ResNetConfig{depth, output_stride, models::Norm::batch_norm, layout, false}, g);
}

using V = std::vector<std::string>;

}  // namespace

TEST_CASE("torchvision layout: the first block of a dilated stage keeps the previous dilation", "[cpu]") {
  models::ResNet os8 = make_resnet(models::Layout::torchvision, 8);
  CHECK(geometry(os8, 1) == V{"s1d1", "s1d1", "s1d1"});
  CHECK(geometry(os8, 2) == V{"s2d1", "s1d1", "s1d1", "s1d1"});
  CHECK(geometry(os8, 3) == V{"s1d1", "s1d2", "s1d2", "s1d2", "s1d2", "s1d2"});
  CHECK(geometry(os8, 4) == V{"s1d2", "s1d4", "s1d4"});
  models::ResNet os16 = make_resnet(models::Layout::torchvision, 16);
  CHECK(geometry(os16, 3) == V{"s2d1", "s1d1", "s1d1", "s1d1", "s1d1", "s1d1"});
  CHECK(geometry(os16, 4) == V{"s1d1", "s1d2", "s1d2"});
  models::ResNet os32 = make_resnet(models::Layout::torchvision, 32);
  CHECK(geometry(os32, 4) == V{"s2d1", "s1d1", "s1d1"});
  // The first block of every stage projects (channels change), the others do not.
  for (int s = 1; s <= 4; ++s) {
    CHECK(os16.stage(s)[0]->has_projection());
    CHECK_FALSE(os16.stage(s)[1]->has_projection());
  }
}

TEST_CASE("mib layout: every block of a stage uses the stage's dilation", "[cpu]") {
  models::ResNet os16 = make_resnet(models::Layout::mib, 16);
  CHECK(geometry(os16, 1) == V{"s1d1", "s1d1", "s1d1"});
  CHECK(geometry(os16, 2) == V{"s2d1", "s1d1", "s1d1", "s1d1"});
  CHECK(geometry(os16, 3) == V{"s2d1", "s1d1", "s1d1", "s1d1", "s1d1", "s1d1"});
  CHECK(geometry(os16, 4) == V{"s1d2", "s1d2", "s1d2"});
  models::ResNet os8 = make_resnet(models::Layout::mib, 8);
  CHECK(geometry(os8, 3) == V{"s1d2", "s1d2", "s1d2", "s1d2", "s1d2", "s1d2"});
  CHECK(geometry(os8, 4) == V{"s1d4", "s1d4", "s1d4"});
  CHECK(os8.stage(4)[0]->conv2().params().pad_h == 4);
}

TEST_CASE("ResNet depth and output stride are validated", "[cpu]") {
  Generator g(2);
  CHECK_THROWS_WITH(models::ResNet(models::ResNetConfig{26, 16}, g),
                    Catch::Contains("depth must be 18, 34, 50 or 101, got 26"));
  CHECK_THROWS_WITH(models::ResNet(models::ResNetConfig{50, 4}, g), Catch::Contains("output stride must be 8, 16 or 32"));
  CHECK(models::ResNet::blocks_per_stage(101) == std::vector<int>{3, 4, 23, 3});
}

TEST_CASE("ResNet-18/34 stack basic blocks: two 3x3 convolutions, dilated alike, channels 64..512", "[cpu]") {
  models::ResNet r18 = make_resnet(models::Layout::mib, 8, 18);
  CHECK(geometry(r18, 3) == V{"s1d2", "s1d2"});
  CHECK(geometry(r18, 4) == V{"s1d4", "s1d4"});
  CHECK_FALSE(r18.stage(1)[0]->bottleneck());
  CHECK_FALSE(r18.stage(1)[0]->has_projection());  // 64 -> 64 at stride 1: the identity shortcut
  CHECK(r18.stage(2)[0]->has_projection());
  CHECK(r18.stage(4)[1]->conv2().params().pad_h == 4);
  CHECK(r18.out_channels() == 512);
  CHECK(r18.stage3_channels() == 256);
  CHECK(r18.config().layers() == 18);
  models::ResNet r34 = make_resnet(models::Layout::torchvision, 16, 34);
  CHECK(geometry(r34, 4) == V{"s1d1", "s1d2", "s1d2"});
  CHECK(r34.config().layers() == 34);
  CHECK(r34.stage_channels(2) == 128);
  std::vector<std::string> names;
  for (const auto& [name, p] : r34.named_parameters()) {
    if (name.rfind("layer2.0.", 0) == 0) names.push_back(name);
  }
  CHECK(names == V{"layer2.0.conv1.weight", "layer2.0.bn1.weight", "layer2.0.bn1.bias", "layer2.0.conv2.weight",
                   "layer2.0.bn2.weight", "layer2.0.bn2.bias", "layer2.0.downsample.0.weight",
                   "layer2.0.downsample.1.weight", "layer2.0.downsample.1.bias"});
}

TEST_CASE("state-dict names follow torchvision and MiB", "[cpu]") {
  models::ModelConfig config;
  config.depth = 50;
  config.initialize = false;
  config.flavour = models::Flavour::torchvision;
  config.aux = true;
  TensorMap tv = models::SegmentationModel(config).state_dict();
  for (const char* key : {"backbone.conv1.weight", "backbone.bn1.num_batches_tracked", "backbone.layer1.0.conv1.weight",
                          "backbone.layer3.0.downsample.0.weight", "backbone.layer4.2.bn3.running_var",
                          "classifier.0.convs.0.0.weight", "classifier.0.convs.3.1.bias",
                          "classifier.0.convs.4.1.weight", "classifier.0.convs.4.2.running_mean",
                          "classifier.0.project.0.weight", "classifier.1.weight", "classifier.2.weight",
                          "aux_classifier.0.weight", "aux_classifier.4.bias", "cls.0.weight", "cls.0.bias"}) {
    INFO(key);
    CHECK(tv.count(key) == 1);
  }
  CHECK(tv.at("classifier.0.convs.3.0.weight").shape() == Shape{256, 3, 3, 2048});
  CHECK(tv.count("backbone.layer1.0.conv1.bias") == 0);

  config.flavour = models::Flavour::mib;
  config.aux = false;
  config.classes = {16, 1};
  TensorMap mib = models::SegmentationModel(config).state_dict();
  for (const char* key : {"body.mod1.conv1.weight", "body.mod1.bn1.running_var", "body.mod2.block1.proj_conv.weight",
                          "body.mod2.block1.proj_bn.bias", "body.mod3.block4.convs.conv2.weight",
                          "body.mod5.block3.convs.bn3.weight", "head.map_convs.3.weight", "head.map_bn.weight",
                          "head.red_conv.weight", "head.global_pooling_conv.weight", "head.global_pooling_bn.bias",
                          "head.pool_red_conv.weight", "head.red_bn.running_mean", "cls.0.weight", "cls.1.bias"}) {
    INFO(key);
    CHECK(mib.count(key) == 1);
  }
  CHECK(mib.at("head.map_bn.weight").shape() == Shape{1024});
  CHECK(mib.count("body.mod1.bn1.num_batches_tracked") == 0);  // In-place ABN has no counter
  CHECK(mib.count("body.mod2.block2.proj_conv.weight") == 0);
}

TEST_CASE("summary shapes and parameters agree with real forwards at odd sizes", "[cpu]") {
  for (auto flavour : {models::Flavour::torchvision, models::Flavour::mib}) {
    for (int os : {8, 16, 32}) {
      models::ModelConfig config;
      config.flavour = flavour;
      config.depth = 50;
      config.output_stride = os;
      config.aux = flavour == models::Flavour::torchvision;
      config.classes = {5, 2};
      config.initialize = false;
      if (config.aux) config.classes = {7};
      models::SegmentationModel model(config);
      model.eval();
      INFO(config.describe());
      autograd::NoGradGuard no_grad;
      Generator g(3);
      Tensor x = Tensor::randn({1, 41, 53, 3}, g);
      models::ForwardOptions options;
      options.low_res_logits = options.body = options.head = options.stage_pre_activations = true;
      options.aux_logits = config.aux;
      models::ForwardResult result = model.forward(x, options);
      models::ModelSummary summary = model.summary(41, 53);
      CHECK(summary.parameters == model.parameter_count());
      CHECK(summary.stage("layer4").output == result.body.shape());
      CHECK(summary.stage("head").output == result.head.shape());
      CHECK(summary.stage("classifier").output == result.low_res_logits.shape());
      CHECK(summary.stage("upsample").output == result.logits.shape());
      for (int s = 0; s < 4; ++s) {
        CHECK(summary.stage(cat("layer", s + 1)).output == result.stage_pre_activations[s].shape());
      }
      int64_t expected = (41 + os - 1) / os;  // every stride-2 layer rounds up on odd sizes
      CHECK(result.body.size(1) == expected);
      if (config.aux) CHECK(result.aux_logits.at(0).shape() == result.logits.shape());
    }
  }
}

TEST_CASE("parameters_through_stage: the stem and the first K stages, none for K = 0, in both layouts", "[cpu]") {
  for (const models::Layout layout : {models::Layout::torchvision, models::Layout::mib}) {
    models::ResNet net = make_resnet(layout, 16);
    const bool tv = layout == models::Layout::torchvision;
    CHECK(net.parameters_through_stage(0).empty());
    size_t previous = 0;
    for (int k = 1; k <= 4; ++k) {
      INFO("layout " << (tv ? "torchvision" : "mib") << ", K " << k);
      const nn::NamedTensors shared = net.parameters_through_stage(k);
      CHECK(shared.size() > previous);
      previous = shared.size();
      size_t expected = 0;
      for (const auto& [name, parameter] : net.named_parameters()) {
        bool in = name.rfind(tv ? "conv1." : "mod1.", 0) == 0 || (tv && name.rfind("bn1.", 0) == 0);
        for (int s = 1; s <= k; ++s) in = in || name.rfind(net.stage_name(s) + ".", 0) == 0;
        expected += in;
      }
      CHECK(shared.size() == expected);
    }
    CHECK(net.parameters_through_stage(4).size() == net.named_parameters().size());
    CHECK_THROWS_WITH(net.parameters_through_stage(5), Catch::Contains("stages are 1..4, got 5"));
  }
}
