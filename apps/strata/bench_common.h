// What the side-by-side training-step benchmarks (`strata bench model`, `strata bench step`) share:
// the measurement of a step (time per step, resident-set high-water increase, allocator peak, a
// profiled run) made the same way as their PyTorch sides (tools/bench_torch_common.py), and the
// tables that print both sides.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "apps/strata/commands.h"
#include "engine/command_line.h"
#include "engine/json.h"
#include "engine/profiler.h"
#include "engine/tensor.h"
#include "incremental/step_session.h"
#include "incremental/task.h"

namespace strata::app {

// The options every step benchmark takes, with their defaults.
struct StepBenchSettings {
  int threads;  // default: OpenMP's (the cores)
  int64_t batch = 2, height = 128, width = 128;
  int warmup = 2, steps = 10, profile_steps = 3;
  std::string python;  // default: default_python()

  StepBenchSettings();
  // Throws naming `command` and the option on values out of range; sets OpenMP's thread count.
  void apply(const std::string& command) const;
  // The fields the PyTorch scripts read: batch, height, width, warmup, steps, profile_steps, threads.
  json::Object to_json() const;
};

// Parses a step benchmark's arguments: StepBenchSettings' options (--batch, --size, --warmup,
// --steps, --profile, --threads, --python), then the benchmark's own, which `own` declares. Returns
// false after printing `help` for --help / -h; throws naming `command` on an unknown option or a bad
// value (engine/command_line.h), then applies settings.
bool parse_step_args(const Args& args, StepBenchSettings& settings, const std::string& command, void (*help)(),
                     const std::function<void(CommandLine&)>& own = {});
// Those options' lines for --help.
std::string step_options_help();

double median(std::vector<double> values);  // of a non-empty vector
double mean(const std::vector<double>& values);
std::string megabytes(int64_t bytes);       // "12.3 MB"

// "H" or "HxW" (the --size option) into height and width; throws naming `option` on bad text.
void parse_size(const std::string& text, const std::string& option, int64_t& height, int64_t& width);

// The incremental step the step benchmarks run (`strata bench step`, `strata bench gpu`): VOC task
// 15-5, step 1 (16 old channels with background, 5 new), seed 42.
inline constexpr const char* kBenchTask = "15-5";
inline constexpr int kBenchStep = 1;
inline constexpr uint64_t kBenchSeed = 42;
incremental::Task bench_task();
// That step's setup: MiB's DeepLabV3 (mib flavour: In-place ABN with leaky ReLU 0.01, output stride
// 16) on `backbone` (models::apply_backbone's names), the classes of steps 0 and 1, `method`'s preset,
// the reference recipe with `batch` and `crop`, on `device`.
incremental::StepSetup bench_step_setup(const incremental::Task& task, const std::string& method,
                                        const std::string& backbone, int64_t batch, int64_t crop, const Device& device);
// The state dict of the step-0 model of the same seed: it stands for the step-0 checkpoint.
TensorMap bench_step0_weights(const incremental::StepSetup& setup);
// What the PyTorch sides (tools/bench_step_torch.py's make_step) read of the step: the model's depth,
// output stride and classes, the method's terms, the optimiser, `max_iterations` of the schedule, the
// seed and the profiler scope name of each phase.
json::Object torch_step_settings(const incremental::StepSetup& setup, int64_t max_iterations);

struct StepMeasurement {
  std::vector<double> seconds;    // each timed step
  std::vector<double> cpu_seconds;  // each timed step's CPU time (user + system, all threads)
  int64_t rss_increase = 0;       // VmHWM after the timed steps minus VmRSS before the first step
  int64_t allocator_peak = 0;     // strata's largest total of live tensors during those steps
  int64_t allocated_before = 0;   // strata's live tensors before the first step (weights, inputs)
  std::vector<profiler::Entry> ops;  // the profiled steps, per op (and per profiler scope)
  double profiled_seconds = 0;    // wall time of the profiled steps
};

// Runs `warmup` steps then `steps` timed ones, measuring memory over both (everything the steps
// add to what was resident before the first, after the C library has returned freed memory to the
// system), then `profile_steps` more under engine/profiler.h.
StepMeasurement measure_steps(const std::function<void()>& step, int warmup, int steps, int profile_steps);

// The comparison table: time per step (median, mean), CPU time per step, peak RSS increase and
// their ratios against the PyTorch side's JSON ("seconds", "cpu_seconds", "rss_increase"), strata's
// allocator peak, with the targets and footnotes saying how CPU time and memory were measured.
void print_step_comparison(const StepMeasurement& ours, const json::Value& torch, double time_target,
                           double memory_target);

// strata's per-op profile (self time) and the PyTorch side's ("ops", "ops_total_seconds",
// "profiled_seconds"), per step.
void print_profiles(const StepMeasurement& ours, const json::Value& torch, int profile_steps);

}  // namespace strata::app
