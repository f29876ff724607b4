// `strata bench model`: one training step of DeepLabV3-ResNet-50 (torchvision's model: output stride
// 8, ASPP rates 12/24/36, dropout 0.5, batch norm) on the CPU: forward, cross-entropy on the
// upsampled logits, backward, SGD (momentum 0.9, weight decay 1e-4). strata and PyTorch
// (tools/bench_model_torch.py, torchvision's deeplabv3_resnet50 in NCHW) run the same step in the
// same run with the same thread count. Prints the time per step of each and their ratio, peak
// memory measured the same way for both (resident-set high-water increase during the steps) plus
// strata's allocator peak, and where the time goes per op (strata's engine/profiler.h, PyTorch's
// torch.autograd.profiler).
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <numeric>
#include <string>
#include <vector>

#include "apps/strata/commands.h"
#include "apps/strata/python.h"
#include "engine/allocator.h"
#include "engine/json.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/losses.h"
#include "engine/optim/sgd.h"
#include "engine/profiler.h"
#include "models/segmentation_model.h"

namespace strata::app {

namespace {

struct Settings {
  int threads = 0;
  int64_t batch = 2, height = 128, width = 128, classes = 21;
  int depth = 50;
  bool aux = false;
  int warmup = 2, steps = 10, profile_steps = 3;
  std::string python;
};

// The resident set (VmRSS) and its high-water mark (VmHWM) of this process, in bytes.
struct Resident {
  int64_t current = 0, peak = 0;
};

Resident resident() {
  std::ifstream status("/proc/self/status");
  Resident r;
  std::string key;
  int64_t kb = 0;
  std::string unit;
  while (status >> key) {
    if (key == "VmRSS:" && status >> kb >> unit) r.current = kb * 1024;
    if (key == "VmHWM:" && status >> kb >> unit) r.peak = kb * 1024;
  }
  return r;
}

// Resets VmHWM to the current resident set (Linux clear_refs, value 5).
bool reset_resident_peak() {
  std::ofstream out("/proc/self/clear_refs");
  out << "5";
  return out.good();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

double mean(const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size()); }

struct StrataResult {
  std::vector<double> seconds;
  int64_t rss_increase = 0;
  int64_t allocator_peak = 0;
  int64_t parameters = 0;
  std::vector<profiler::Entry> ops;
  double profiled_seconds = 0;
};

StrataResult run_strata(const Settings& s) {
  models::ModelConfig config;
  config.flavour = models::Flavour::torchvision;
  config.depth = s.depth;
  config.output_stride = 8;
  config.aux = s.aux;
  config.classes = {s.classes};
  models::SegmentationModel model(config);
  model.train();
  optim::SGD sgd({optim::ParamGroup{"all", model.named_parameters(), 0.01, 0.9, 1e-4}});
  Generator g(0);
  Tensor x = Tensor::randn({s.batch, s.height, s.width, 3}, g);
  Tensor labels = Tensor::uniform({s.batch, s.height, s.width}, 0, static_cast<double>(s.classes), g).to(DType::i64);

  auto step = [&] {
    sgd.zero_grad();
    models::ForwardOptions options;
    options.aux_logits = s.aux;
    models::ForwardResult out = model.forward(x, options);
    Tensor loss = cross_entropy(out.logits, labels, Reduction::mean_valid);
    if (s.aux) loss = add(loss, scale(cross_entropy(out.aux_logits, labels, Reduction::mean_valid), 0.5));
    out = models::ForwardResult();
    loss.backward();
    profiler::Scope scope("sgd step");
    sgd.step();
  };

  StrataResult r;
  r.parameters = model.parameter_count();
  int64_t baseline = resident().current;
  reset_resident_peak();
  reset_peak_memory();
  for (int i = 0; i < s.warmup; ++i) step();
  for (int i = 0; i < s.steps; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    step();
    r.seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  r.rss_increase = resident().peak - baseline;
  r.allocator_peak = memory_stats().peak_allocated_bytes;

  profiler::reset();
  profiler::enable(true);
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < s.profile_steps; ++i) step();
  r.profiled_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  profiler::enable(false);
  r.ops = profiler::report();
  return r;
}

std::string megabytes(int64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f MB", static_cast<double>(bytes) / (1024.0 * 1024.0));
  return text;
}

void print_help() {
  std::printf(
      "usage: strata bench model [options]\n\n"
      "One training step (forward, cross-entropy, backward, SGD) of torchvision's DeepLabV3-ResNet-50\n"
      "(output stride 8) on the CPU, strata and PyTorch side by side in one run: time per step, the\n"
      "ratio, peak memory, and a per-op breakdown of both.\n\n"
      "  --batch N        (default 2)\n"
      "  --size H[xW]     input size (default 128)\n"
      "  --depth 50|101   ResNet depth (default 50)\n"
      "  --aux            with the aux FCN head (loss + 0.5 x aux loss)\n"
      "  --steps N        timed steps after 2 warm-up steps (default 10)\n"
      "  --profile N      extra steps run under the profilers (default 3)\n"
      "  --threads N      threads for both (default: OpenMP's default, i.e. the cores)\n"
      "  --python PATH    interpreter with torch and torchvision (default: %s)\n",
      default_python().c_str());
}

}  // namespace

int run_bench_model(const Args& args) {
  Settings s;
  s.threads = omp_get_max_threads();
  s.python = default_python();
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&]() -> std::string {
      check(i + 1 < args.size(), "bench model: ", a, " needs a value (see --help)");
      return args[++i];
    };
    if (a == "--help" || a == "-h") {
      print_help();
      return 0;
    } else if (a == "--batch") {
      s.batch = std::stoll(value());
    } else if (a == "--size") {
      std::string v = value();
      size_t x = v.find('x');
      s.height = std::stoll(v.substr(0, x));
      s.width = x == std::string::npos ? s.height : std::stoll(v.substr(x + 1));
    } else if (a == "--depth") {
      s.depth = std::stoi(value());
    } else if (a == "--aux") {
      s.aux = true;
    } else if (a == "--steps") {
      s.steps = std::stoi(value());
    } else if (a == "--profile") {
      s.profile_steps = std::stoi(value());
    } else if (a == "--threads") {
      s.threads = std::stoi(value());
    } else if (a == "--python") {
      s.python = value();
    } else {
      throw Error(cat("bench model: unknown option '", a, "' (see --help)"));
    }
  }
  check(s.batch >= 2, "bench model: --batch must be >= 2 (training-mode batch norm of the image-pooling branch)");
  check(s.height >= 16 && s.width >= 16, "bench model: --size must be at least 16");
  check(s.steps >= 1 && s.profile_steps >= 1 && s.threads >= 1, "bench model: --steps, --profile and --threads must be >= 1");
  omp_set_num_threads(s.threads);

  std::printf("Running the PyTorch side (tools/bench_model_torch.py)...\n");
  std::fflush(stdout);
  json::Value torch = run_python_json(
      s.python, "tools/bench_model_torch.py",
      json::Value(json::Object{{"batch", s.batch}, {"height", s.height}, {"width", s.width}, {"classes", s.classes},
                               {"depth", s.depth}, {"aux", s.aux}, {"warmup", s.warmup}, {"steps", s.steps},
                               {"profile_steps", s.profile_steps}, {"threads", s.threads}}),
      {});
  std::printf("Running the strata side...\n\n");
  std::fflush(stdout);
  StrataResult ours = run_strata(s);

  std::vector<double> theirs;
  for (const json::Value& v : torch.at("seconds").as_array()) theirs.push_back(v.as_double());
  const double ours_ms = median(ours.seconds) * 1e3, theirs_ms = median(theirs) * 1e3;
  const int64_t their_rss = torch.at("rss_increase").as_int();

  std::printf("DeepLabV3-ResNet-%d (torchvision's: output stride 8, ASPP 12/24/36, dropout 0.5, batch norm%s), "
              "%s parameters\n",
              s.depth, s.aux ? ", aux head" : "", std::to_string(ours.parameters).c_str());
  std::printf("one training step: forward, cross-entropy (upsampled logits), backward, SGD momentum 0.9 wd 1e-4\n");
  std::printf("batch %lld, 3x%lldx%lld, %lld classes, f32, %d threads; %d warm-up + %d timed steps each\n",
              static_cast<long long>(s.batch), static_cast<long long>(s.height), static_cast<long long>(s.width),
              static_cast<long long>(s.classes), s.threads, s.warmup, s.steps);
  std::printf("strata: NHWC, im2col + OpenBLAS | PyTorch %s (torchvision %s): NCHW, %s, parameters %lld\n\n",
              torch.at("torch").as_string().c_str(), torch.at("torchvision").as_string().c_str(),
              torch.at("mkldnn").as_bool() ? "oneDNN" : "native", static_cast<long long>(torch.at("parameters").as_int()));
  std::printf("%-44s %14s %14s %10s\n", "", "strata", "PyTorch", "ratio");
  std::printf("%-44s %11.1f ms %11.1f ms %10.2f   (target <= 1.5)\n", "time per step, median", ours_ms, theirs_ms,
              ours_ms / theirs_ms);
  std::printf("%-44s %11.1f ms %11.1f ms %10.2f\n", "time per step, mean", mean(ours.seconds) * 1e3,
              mean(theirs) * 1e3, mean(ours.seconds) / mean(theirs));
  std::printf("%-44s %14s %14s %10.2f   (target <= 1)\n", "peak RSS increase during the steps (1)",
              megabytes(ours.rss_increase).c_str(), megabytes(their_rss).c_str(),
              static_cast<double>(ours.rss_increase) / static_cast<double>(their_rss));
  std::printf("%-44s %14s\n", "strata allocator peak during the steps (2)", megabytes(ours.allocator_peak).c_str());
  std::printf(
      "(1) each process's resident-set high-water mark (VmHWM, reset through /proc/self/clear_refs) minus its\n"
      "    resident set just before the first step, model and input already built: everything the steps add\n"
      "    (gradients, momentum buffers, activations, allocator slack), measured the same way for both.\n"
      "(2) the largest total of live strata tensors: weights, gradients, momentum buffers and activations.\n");

  std::printf("\nstrata, per op (self time, %d profiled steps; wall %.1f ms per step)\n", s.profile_steps,
              ours.profiled_seconds * 1e3 / s.profile_steps);
  std::fputs(profiler::format_report(ours.ops, 20, s.profile_steps).c_str(), stdout);
  double op_seconds = 0;
  for (const profiler::Entry& e : ours.ops) op_seconds += e.self_seconds;
  std::printf("%-28s %10s %12.3f   (autograd engine, gradient accumulation outside ops, glue)\n", "(outside ops)", "",
              (ours.profiled_seconds - op_seconds) * 1e3 / s.profile_steps);

  std::printf("\nPyTorch, per op (self CPU time, torch.autograd.profiler, %d profiled steps; wall %.1f ms per step)\n",
              s.profile_steps, torch.at("profiled_seconds").as_double() * 1e3 / s.profile_steps);
  std::printf("%-44s %10s %12s %7s\n", "op", "calls/run", "self ms/run", "%");
  const double total_self = torch.at("ops_total_seconds").as_double();
  for (const json::Value& op : torch.at("ops").as_array()) {
    std::printf("%-44s %10.1f %12.3f %6.1f%%\n", op.at("name").as_string().c_str(),
                static_cast<double>(op.at("calls").as_int()) / s.profile_steps,
                op.at("self_seconds").as_double() * 1e3 / s.profile_steps,
                100.0 * op.at("self_seconds").as_double() / total_self);
  }
  std::printf("%-44s %10s %12.3f %6.1f%%\n", "(all ops)", "", total_self * 1e3 / s.profile_steps, 100.0);
  return 0;
}

}  // namespace strata::app
