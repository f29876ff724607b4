// `strata bench model`: one training step of DeepLabV3-ResNet-50 (torchvision's model: output stride
// 8, ASPP rates 12/24/36, dropout 0.5, batch norm), or with --arch pspnet of semseg's PSPNet (the
// PyTorch side tools/torchref/models_pspnet.py's; dropout off on both sides, as that model runs it),
// on the CPU: forward, cross-entropy on the upsampled logits (+ the aux loss), backward, SGD (momentum
// 0.9, weight decay 1e-4). strata and PyTorch (tools/bench_model_torch.py, NCHW) run the same step in the
// same run with the same thread count. Prints the time per step of each and their ratio, peak
// memory measured the same way for both (resident-set high-water increase during the steps) plus
// strata's allocator peak, and where the time goes per op (strata's engine/profiler.h, PyTorch's
// torch.autograd.profiler).
#include <cstdio>
#include <string>

#include "apps/strata/bench_common.h"
#include "apps/strata/commands.h"
#include "apps/strata/python.h"
#include "engine/json.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/losses.h"
#include "engine/optim/sgd.h"
#include "engine/profiler.h"
#include "models/segmentation_model.h"

namespace strata::app {

namespace {

struct Settings {
  StepBenchSettings step;
  int64_t classes = 21;
  int depth = 50;
  bool aux = false;
  std::string arch = "deeplabv3";
  bool pspnet() const { return arch == "pspnet"; }
  bool bisenet() const { return arch == "bisenet"; }
  bool deeplabv3plus() const { return arch == "deeplabv3plus"; }
  double aux_weight() const { return pspnet() ? 0.4 : bisenet() ? 1.0 : 0.5; }
};

struct StrataResult {
  int64_t parameters = 0;
  StepMeasurement measurement;
};

StrataResult run_strata(const Settings& s) {
  models::ModelConfig config;
  config.arch = models::parse_architecture(s.arch);
  config.flavour = models::Flavour::torchvision;
  config.depth = s.bisenet() ? 18 : s.depth;
  config.output_stride = s.bisenet() ? 32 : s.deeplabv3plus() ? 16 : 8;
  config.aux = s.aux && s.arch == "deeplabv3";
  config.psp_dropout = 0;
  config.classes = {s.classes};
  models::SegmentationModel model(config);
  // The PyTorch DeepLabV3+ runs its dropouts in eval mode (tools/torchref/models_deeplabv3plus.py).
  if (s.deeplabv3plus()) dynamic_cast<models::DeepLabV3PlusHead&>(model.head()).set_dropout(0, 0, 0);
  model.train();
  optim::SGD sgd({optim::ParamGroup{"all", model.named_parameters(), 0.01, 0.9, 1e-4}});
  Generator g(0);
  Tensor x = Tensor::randn({s.step.batch, s.step.height, s.step.width, 3}, g);
  Tensor labels = Tensor::uniform({s.step.batch, s.step.height, s.step.width}, 0, static_cast<double>(s.classes), g).to(DType::i64);

  auto step = [&] {
    sgd.zero_grad();
    models::ForwardOptions options;
    options.aux_logits = s.aux;
    models::ForwardResult out = model.forward(x, options);
    Tensor loss = cross_entropy(out.logits, labels, Reduction::mean_valid);
    if (s.aux) {
      for (const Tensor& aux : out.aux_logits) {
        loss = add(loss, scale(cross_entropy(aux, labels, Reduction::mean_valid), s.aux_weight()));
      }
    }
    out = models::ForwardResult();
    loss.backward();
    profiler::Scope scope("sgd step");
    sgd.step();
  };

  StrataResult r;
  r.parameters = model.parameter_count();
  r.measurement = measure_steps(step, s.step.warmup, s.step.steps, s.step.profile_steps);
  return r;
}

void print_help() {
  std::printf(
      "usage: strata bench model [options]\n\n"
      "One training step (forward, cross-entropy, backward, SGD) of torchvision's DeepLabV3-ResNet-50\n"
      "(output stride 8) on the CPU, strata and PyTorch side by side in one run: time per step, the\n"
      "ratio, peak memory, and a per-op breakdown of both.\n\n"
      "  --arch NAME      deeplabv3 (default), pspnet (semseg's, with its aux head), deeplabv3plus (its\n"
      "                   reference's, output stride 16) or bisenet (BiSeNet v1 on ResNet-18 with its two aux\n"
      "                   heads; --depth applies to the others)\n"
      "  --depth 50|101   ResNet depth (default 50)\n"
      "  --aux            with the aux FCN head (loss + 0.5 x aux loss)\n"
      "%s(the interpreter needs torchvision too)\n",
      step_options_help().c_str());
}

}  // namespace

int run_bench_model(const Args& args) {
  Settings s;
  auto own = [&](CommandLine& options) {
    options.integer("--depth", "N", s.depth, 1);
    options.flag("--aux", s.aux);
    options.value("--arch", "NAME", [&](const std::string& v) {
      models::parse_architecture(v);
      s.arch = v;
    });
  };
  if (!parse_step_args(args, s.step, "bench model", print_help, own)) return 0;
  if (s.pspnet() || s.bisenet()) s.aux = true;

  std::printf("Running the PyTorch side (tools/bench_model_torch.py)...\n");
  std::fflush(stdout);
  json::Object input = s.step.to_json();
  input.insert(input.end(), {{"classes", s.classes}, {"depth", s.depth}, {"aux", s.aux}, {"arch", s.arch}});
  json::Value torch = run_python_json(s.step.python, "tools/bench_model_torch.py", json::Value(input), {});
  std::printf("Running the strata side...\n\n");
  std::fflush(stdout);
  StrataResult ours = run_strata(s);

  if (s.deeplabv3plus()) {
    std::printf(
        "DeepLabV3+-ResNet-%d (its reference's: output stride 16, multi-grid, decoder on stage 1, dropout "
        "off, batch norm), %s parameters\n",
        s.depth, std::to_string(ours.parameters).c_str());
  } else if (s.bisenet()) {
    std::printf(
        "BiSeNet v1 on ResNet-18 (spatial + context path, two aux heads x 1, output stride 32), "
        "%s parameters\n",
        std::to_string(ours.parameters).c_str());
  } else if (s.pspnet()) {
    std::printf(
        "PSPNet-ResNet-%d (semseg's: deep stem, output stride 8, bins 1/2/3/6, aux head x 0.4, dropout off), "
        "%s parameters\n",
        s.depth, std::to_string(ours.parameters).c_str());
  } else {
    std::printf(
        "DeepLabV3-ResNet-%d (torchvision's: output stride 8, ASPP 12/24/36, dropout 0.5, batch norm%s), "
        "%s parameters\n",
        s.depth, s.aux ? ", aux head" : "", std::to_string(ours.parameters).c_str());
  }
  std::printf("one training step: forward, cross-entropy (upsampled logits), backward, SGD momentum 0.9 wd 1e-4\n");
  std::printf("batch %lld, 3x%lldx%lld, %lld classes, f32, %d threads; %d warm-up + %d timed steps each\n",
              static_cast<long long>(s.step.batch), static_cast<long long>(s.step.height),
              static_cast<long long>(s.step.width), static_cast<long long>(s.classes), s.step.threads, s.step.warmup,
              s.step.steps);
  std::printf("strata: NHWC, im2col + OpenBLAS | PyTorch %s (torchvision %s): NCHW, %s, parameters %lld\n\n",
              torch.at("torch").as_string().c_str(), torch.at("torchvision").as_string().c_str(),
              torch.at("mkldnn").as_bool() ? "oneDNN" : "native", static_cast<long long>(torch.at("parameters").as_int()));
  print_step_comparison(ours.measurement, torch, 1.5, 1.0);
  print_profiles(ours.measurement, torch, s.step.profile_steps);
  return 0;
}

}  // namespace strata::app
