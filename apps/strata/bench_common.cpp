#include "apps/strata/bench_common.h"

#include <malloc.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <numeric>
#include <random>

#include "apps/strata/python.h"
#include "engine/allocator.h"
#include "engine/error.h"
#include "incremental/method.h"
#include "incremental/recipe.h"
#include "models/segmentation_model.h"

namespace strata::app {

namespace {

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

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// User + system time of the whole process (every thread), in seconds.
double process_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

}  // namespace

StepBenchSettings::StepBenchSettings() : threads(omp_get_max_threads()), python(default_python()) {}

void StepBenchSettings::apply(const std::string& command) const {
  check(batch >= 2, command, ": --batch must be >= 2 (training-mode batch norm of the image-pooling branch)");
  check(height >= 16 && width >= 16, command, ": --size must be at least 16");
  check(warmup >= 0, command, ": --warmup must be >= 0");
  check(steps >= 1 && profile_steps >= 1 && threads >= 1, command, ": --steps, --profile and --threads must be >= 1");
  omp_set_num_threads(threads);
}

json::Object StepBenchSettings::to_json() const {
  return json::Object{{"batch", batch},   {"height", height},         {"width", width},    {"warmup", warmup},
                      {"steps", steps},   {"profile_steps", profile_steps}, {"threads", threads}};
}

bool parse_step_args(const Args& args, StepBenchSettings& settings, const std::string& command, void (*help)(),
                     const std::function<void(CommandLine&)>& own) {
  CommandLine options(command);
  options.value("--batch", "N", [&](const std::string& v) { settings.batch = parse_integer("--batch", v); });
  options.value("--size", "H[xW]",
                [&](const std::string& v) { parse_size(v, "--size", settings.height, settings.width); });
  options.integer("--warmup", "N", settings.warmup, 0);
  options.integer("--steps", "N", settings.steps, 1);
  options.integer("--profile", "N", settings.profile_steps, 1);
  options.integer("--threads", "N", settings.threads, 1);
  options.text("--python", "EXE", settings.python);
  if (own) own(options);
  if (!options.parse(args)) {
    help();
    return false;
  }
  settings.apply(command);
  return true;
}

std::string step_options_help() {
  return cat(
      "  --batch N        images per step (default 2)\n"
      "  --size H[xW]     input size (default 128)\n"
      "  --warmup N       untimed steps first (default 2)\n"
      "  --steps N        timed steps (default 10)\n"
      "  --profile N      extra steps run under the profilers (default 3)\n"
      "  --threads N      threads for both (default: OpenMP's default, i.e. the cores)\n"
      "  --python PATH    interpreter with torch (default: ",
      default_python(), ")\n");
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

double mean(const std::vector<double>& v) {
  return std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}

std::string megabytes(int64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f MB", static_cast<double>(bytes) / (1024.0 * 1024.0));
  return text;
}

void parse_size(const std::string& text, const std::string& option, int64_t& height, int64_t& width) {
  const size_t x = text.find('x');
  try {
    size_t used = 0;
    height = std::stoll(text.substr(0, x), &used);
    check(used == (x == std::string::npos ? text.size() : x), "");
    width = height;
    if (x != std::string::npos) {
      width = std::stoll(text.substr(x + 1), &used);
      check(used == text.size() - x - 1, "");
    }
  } catch (const std::exception&) {
    throw Error(cat(option, " '", text, "': expected H or HxW (pixels)"));
  }
}

StepMeasurement measure_steps(const std::function<void()>& step, int warmup, int steps, int profile_steps) {
  StepMeasurement r;
  // Memory freed while building (e.g. a step-0 model's weights) goes back to the system first, so
  // the steps cannot reuse its pages unseen: the increase counts every page the steps touch.
  malloc_trim(0);
  const int64_t baseline = resident().current;
  r.allocated_before = memory_stats().allocated_bytes;
  reset_resident_peak();
  reset_peak_memory();
  for (int i = 0; i < warmup; ++i) step();
  for (int i = 0; i < steps; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    const double cpu0 = process_cpu_seconds();
    step();
    r.seconds.push_back(seconds_since(t0));
    r.cpu_seconds.push_back(process_cpu_seconds() - cpu0);
  }
  r.rss_increase = resident().peak - baseline;
  r.allocator_peak = memory_stats().peak_allocated_bytes;

  profiler::reset();
  profiler::enable(true);
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < profile_steps; ++i) step();
  r.profiled_seconds = seconds_since(t0);
  profiler::enable(false);
  r.ops = profiler::report();
  return r;
}

void print_step_comparison(const StepMeasurement& ours, const json::Value& torch, double time_target,
                           double memory_target) {
  auto numbers = [&](const char* key) {
    std::vector<double> values;
    for (const json::Value& v : torch.at(key).as_array()) values.push_back(v.as_double());
    return values;
  };
  const std::vector<double> theirs = numbers("seconds"), their_cpu = numbers("cpu_seconds");
  const double ours_ms = median(ours.seconds) * 1e3, theirs_ms = median(theirs) * 1e3;
  const int64_t their_rss = torch.at("rss_increase").as_int();
  std::printf("%-44s %14s %14s %10s\n", "", "strata", "PyTorch", "ratio");
  std::printf("%-44s %11.1f ms %11.1f ms %10.2f   (target <= %g)\n", "time per step, median", ours_ms, theirs_ms,
              ours_ms / theirs_ms, time_target);
  std::printf("%-44s %11.1f ms %11.1f ms %10.2f\n", "time per step, mean", mean(ours.seconds) * 1e3,
              mean(theirs) * 1e3, mean(ours.seconds) / mean(theirs));
  std::printf("%-44s %11.1f ms %11.1f ms %10.2f\n", "CPU time per step, median (3)", median(ours.cpu_seconds) * 1e3,
              median(their_cpu) * 1e3, median(ours.cpu_seconds) / median(their_cpu));
  std::printf("%-44s %14s %14s %10.2f   (target <= %g)\n", "peak RSS increase during the steps (1)",
              megabytes(ours.rss_increase).c_str(), megabytes(their_rss).c_str(),
              static_cast<double>(ours.rss_increase) / static_cast<double>(their_rss), memory_target);
  std::printf("%-44s %14s   (%s before the first step)\n", "strata allocator peak during the steps (2)",
              megabytes(ours.allocator_peak).c_str(), megabytes(ours.allocated_before).c_str());
  std::printf(
      "(1) each process's resident-set high-water mark (VmHWM, reset through /proc/self/clear_refs) minus its\n"
      "    resident set just before the first step, models and inputs already built: everything the steps add\n"
      "    (gradients, momentum buffers, activations, allocator slack), measured the same way for both.\n"
      "(2) the largest total of live strata tensors: weights, gradients, momentum buffers and activations.\n"
      "(3) user + system time of the whole process (all threads) during a step: less sensitive than wall time\n"
      "    to other jobs sharing the cores, but it also counts threads spinning while they wait for work.\n");
}

void print_profiles(const StepMeasurement& ours, const json::Value& torch, int profile_steps) {
  std::printf("\nstrata, per op (self time, %d profiled steps; wall %.1f ms per step)\n", profile_steps,
              ours.profiled_seconds * 1e3 / profile_steps);
  std::fputs(profiler::format_report(ours.ops, 20, profile_steps).c_str(), stdout);
  double op_seconds = 0;
  for (const profiler::Entry& e : ours.ops) op_seconds += e.self_seconds;
  std::printf("%-28s %10s %12.3f   (autograd engine, gradient accumulation outside ops, glue)\n", "(outside ops)", "",
              (ours.profiled_seconds - op_seconds) * 1e3 / profile_steps);

  std::printf("\nPyTorch, per op (self CPU time, torch.autograd.profiler, %d profiled steps; wall %.1f ms per step)\n",
              profile_steps, torch.at("profiled_seconds").as_double() * 1e3 / profile_steps);
  std::printf("%-44s %10s %12s %7s\n", "op", "calls/run", "self ms/run", "%");
  const double total_self = torch.at("ops_total_seconds").as_double();
  for (const json::Value& op : torch.at("ops").as_array()) {
    std::printf("%-44s %10.1f %12.3f %6.1f%%\n", op.at("name").as_string().c_str(),
                static_cast<double>(op.at("calls").as_int()) / profile_steps,
                op.at("self_seconds").as_double() * 1e3 / profile_steps,
                100.0 * op.at("self_seconds").as_double() / total_self);
  }
  std::printf("%-44s %10s %12.3f %6.1f%%\n", "(all ops)", "", total_self * 1e3 / profile_steps, 100.0);
}

incremental::Task bench_task() { return incremental::Task::create(incremental::LabelSpace::voc(), kBenchTask); }

incremental::StepSetup bench_step_setup(const incremental::Task& task, const std::string& method,
                                        const std::string& backbone, int64_t batch, int64_t crop,
                                        const Device& device) {
  incremental::StepSetup setup;
  setup.step = kBenchStep;
  setup.model.flavour = models::Flavour::mib;
  models::apply_backbone(setup.model, backbone);
  setup.model.output_stride = 16;
  setup.model.classes.clear();
  for (int c : task.classes_per_step(kBenchStep)) setup.model.classes.push_back(c);
  setup.model.seed = kBenchSeed;
  setup.method = incremental::method_preset(method, task);
  setup.recipe = incremental::reference_recipe(task, kBenchStep);
  setup.recipe.batch_size = static_cast<int>(batch);
  setup.recipe.crop_size = static_cast<int>(crop);
  setup.device = device;
  setup.seed = kBenchSeed;
  return setup;
}

TensorMap bench_step0_weights(const incremental::StepSetup& setup) {
  models::ModelConfig step0 = setup.model;
  step0.classes.pop_back();
  return models::SegmentationModel(step0).state_dict();
}

json::Object torch_step_settings(const incremental::StepSetup& setup, int64_t max_iterations) {
  const incremental::MethodConfig& method = setup.method;
  const incremental::Recipe& recipe = setup.recipe;
  json::Array classes;
  for (int64_t c : setup.model.classes) classes.emplace_back(c);
  // The profiler scope names of the phases the PyTorch side runs, by phase (a list by position broke
  // when the regulariser's phase joined).
  using incremental::StepPhase;
  json::Object phases;
  for (const auto& [key, phase] :
       {std::pair{"teacher_forward", StepPhase::teacher_forward},
        std::pair{"student_forward", StepPhase::student_forward}, std::pair{"losses", StepPhase::losses},
        std::pair{"backward", StepPhase::backward}, std::pair{"optimizer_step", StepPhase::optimizer_step}}) {
    phases.emplace_back(key, std::string(incremental::step_phase_name(phase)));
  }
  return {{"depth", setup.model.depth},
          {"output_stride", setup.model.output_stride},
          {"classes", classes},
          {"unce", method.unce},
          {"unkd", method.unkd},
          {"loss_kd", method.loss_kd},
          {"loss_de", method.loss_de},
          {"alpha", method.alpha},
          {"init_balanced", method.init_balanced},
          {"lr", recipe.lr},
          {"momentum", recipe.momentum},
          {"weight_decay", recipe.weight_decay},
          {"nesterov", recipe.nesterov},
          {"lr_power", recipe.lr_power},
          {"max_iterations", max_iterations},
          {"seed", kBenchSeed},
          {"phases", phases}};
}

}  // namespace strata::app
