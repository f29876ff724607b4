// `strata summary`: a model's layer tree with output shapes, parameters and forward multiply-adds
// per stage and in total, for an input size, computed analytically (models/summary.h): no kernel
// runs, so any input size costs the same (building the model's parameters, about a second).
#include <cstdio>
#include <string>

#include "apps/strata/commands.h"
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
      "  --verbose                       every layer, not only the stages\n");
}

int parse_int(const std::string& option, const std::string& value) {
  size_t used = 0;
  int n = 0;
  try {
    n = std::stoi(value, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  check(used == value.size() && !value.empty(), option, " expects a number, got '", value, "'");
  return n;
}

}  // namespace

int run_summary(const Args& args) {
  models::ModelConfig config;
  config.initialize = false;  // only the structure is needed
  int64_t height = 512, width = 512;
  bool verbose = false;
  int output_stride = 0;  // 0: the architecture's
  std::string backbone;   // empty: the architecture's
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&]() -> const std::string& {
      check(i + 1 < args.size(), a, " needs a value (see --help)");
      return args[++i];
    };
    if (a == "--help" || a == "-h") {
      print_help();
      return 0;
    } else if (a == "--backbone") {
      backbone = value();
    } else if (a == "--arch") {
      config.arch = models::parse_architecture(value());
    } else if (a == "--head") {
      config.flavour = models::parse_flavour(value());
    } else if (a == "--norm") {
      config.norm = models::parse_norm(value());
    } else if (a == "--output-stride") {
      output_stride = static_cast<int>(parse_int(a, value()));
    } else if (a == "--aux") {
      config.aux = true;
    } else if (a == "--classes") {
      config.classes = models::parse_classes(value());
    } else if (a == "--size") {
      const std::string& v = value();
      size_t x = v.find('x');
      height = parse_int(a, v.substr(0, x));
      width = x == std::string::npos ? height : parse_int(a, v.substr(x + 1));
      check(height >= 1 && width >= 1, "--size must be positive, got '", v, "'");
    } else if (a == "--verbose") {
      verbose = true;
    } else {
      throw Error(cat("unknown option '", a, "' (see --help)"));
    }
  }
  models::apply_backbone(config, backbone.empty() ? models::reference_backbone(config.arch) : backbone);
  config.output_stride = output_stride != 0 ? output_stride : models::reference_output_stride(config.arch);
  models::SegmentationModel model(config);
  std::fputs(models::format_summary(model.summary(height, width), verbose).c_str(), stdout);
  return 0;
}

}  // namespace strata::app
