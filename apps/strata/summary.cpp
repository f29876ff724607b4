// `strata summary`: a model's layer tree with output shapes, parameters and forward multiply-adds
// per stage and in total, for an input size, computed analytically (models/summary.h): no kernel
// runs, so any input size costs the same (building the model's parameters, about a second). With
// --memory, also a training step's peak memory at a batch and crop, predicted from two small
// measured probes (apps/strata/memory_prediction.h).
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "apps/strata/bench_common.h"
#include "apps/strata/commands.h"
#include "apps/strata/memory_prediction.h"
#include "engine/command_line.h"
#include "engine/device.h"
#include "engine/error.h"
#include "models/segmentation_model.h"

namespace strata::app {

namespace {

void print_help() {
  std::printf(
      "usage: strata summary [options]\n\n"
      "Prints a DeepLabV3 model's stages (every layer with --verbose) with output shapes, parameter\n"
      "counts and forward multiply-adds (GMAC per image: convolutions P*Q*K*C*R*S; norms, pooling and\n"
      "interpolation are not counted), for one input size.\n\n"
      "  --backbone resnet18|34|50|101|small   (default: the architecture's: resnet101, PSPNet resnet50,\n"
      "                                  BiSeNet resnet18; small: strata's ResNet-14 of width 16 with a\n"
      "                                  64-channel head, as train's)\n"
      "  --arch deeplabv3|pspnet|deeplabv3plus|bisenet\n"
      "                                  architecture (default deeplabv3; pspnet: semseg's PSPNet, output\n"
      "                                  stride 8 unless given; deeplabv3plus: DeepLabV3+ with its decoder;\n"
      "                                  bisenet: BiSeNet v1, output stride 32 unless given)\n"
      "  --head mib|torchvision          DeepLabV3's head, state-dict names and backbone layout (default mib)\n"
      "  --norm batch_norm|inplace_abn   (default: batch_norm for torchvision, inplace_abn for mib)\n"
      "  --output-stride 8|16|32         (default 16; pspnet 8)\n"
      "  --aux                           torchvision's auxiliary FCN head on layer3\n"
      "  --classes N[,N...]              classes per step, background in the first (default 21)\n"
      "  --size H[xW]                    input size (default 512)\n"
      "  --verbose                       every layer, not only the stages\n\n"
      "  --memory                        also the peak memory of a training step at --batch x --size (square),\n"
      "                                  predicted from two small measured probes (apps/strata/memory_prediction.h):\n"
      "                                  weights, gradients, optimizer state, saved activations, teacher maps,\n"
      "                                  workspace. The step is `strata profile`'s: MiB's head and In-place ABN\n"
      "                                  at the architecture's output stride (so --head, --norm, --output-stride,\n"
      "                                  --aux and --classes do not apply), with:\n"
      "  --batch N                       images per step (default 24)\n"
      "  --method NAME                   (default MiB)\n"
      "  --task T  --step N              a VOC task and step (default 15-5, 1)\n"
      "  --device DEV                    the CUDA device the probes run on (default cuda; an emulated one predicts\n"
      "                                  the CUDA backend's memory too, slowly)\n");
}

}  // namespace

int run_summary(const Args& args) {
  models::ModelConfig config;
  config.initialize = false;  // only the structure is needed
  int64_t height = 512, width = 512;
  bool verbose = false;
  int output_stride = 0;  // 0: the architecture's
  std::string backbone;   // empty: the architecture's
  bool memory = false;
  ProfileSettings step;  // --memory's step
  step.batch = 24;
  step.device = "cuda";
  step.warmup = 1;
  std::vector<std::string> model_options;  // given, and meaningless with --memory
  CommandLine options;
  // The model options that --memory's step does not take, noted as given.
  auto model_option = [&](const std::string& name, const std::string& argument,
                          std::function<void(const std::string&)> apply) {
    options.value(name, argument, [&model_options, name, apply](const std::string& v) {
      apply(v);
      model_options.push_back(name);
    });
  };
  options.text("--backbone", "NAME", backbone);
  options.value("--arch", "NAME", [&](const std::string& v) { config.arch = models::parse_architecture(v); });
  model_option("--head", "NAME", [&](const std::string& v) { config.flavour = models::parse_flavour(v); });
  model_option("--norm", "NAME", [&](const std::string& v) { config.norm = models::parse_norm(v); });
  model_option("--output-stride", "N",
               [&](const std::string& v) { output_stride = int_at_least("--output-stride", v, 1); });
  model_option("--classes", "N[,N...]", [&](const std::string& v) { config.classes = models::parse_classes(v); });
  options.flag("--aux", [&] {
    config.aux = true;
    model_options.push_back("--aux");
  });
  options.value("--size", "H[xW]", [&](const std::string& v) {
    parse_size(v, "--size", height, width);
    check(height >= 1 && width >= 1, "--size must be positive, got '", v, "'");
  });
  options.flag("--verbose", verbose);
  options.flag("--memory", memory);
  options.integer("--batch", "N", step.batch, 1);
  options.text("--method", "NAME", step.method);
  options.text("--task", "NAME", step.task);
  options.integer("--step", "N", step.step, 0);
  options.text("--device", "DEV", step.device);
  if (!options.parse(args)) {
    print_help();
    return 0;
  }
  models::apply_backbone(config, backbone.empty() ? models::reference_backbone(config.arch) : backbone);
  config.output_stride = output_stride != 0 ? output_stride : models::reference_output_stride(config.arch);
  if (memory) {
    check(model_options.empty(), "--memory predicts the step of `strata profile` (MiB's head, In-place ABN, the ",
          "architecture's output stride): ", model_options.front(), " does not apply to it");
    check(height == width, "--memory needs a square --size (the training crop), got ", height, "x", width);
    config.flavour = models::Flavour::mib;
    config.norm = models::Norm::inplace_abn;
  }
  models::SegmentationModel model(config);
  std::fputs(models::format_summary(model.summary(height, width), verbose).c_str(), stdout);
  if (memory) {
    step.arch = models::architecture_name(config.arch);
    step.backbone = backbone.empty() ? models::reference_backbone(config.arch) : backbone;
    step.crop = height;
    std::printf("%s", emulated_device_warning(parse_device(step.device), step.device).c_str());
    std::printf("\nMeasuring the probes on %s...\n", step.device.c_str());
    std::fflush(stdout);
    std::fputs(format_memory_prediction(step, predict_peak_memory(step)).c_str(), stdout);
  }
  return 0;
}

}  // namespace strata::app
