// `strata profile`: where one incremental training iteration's time and memory go, for a method, and
// with --compare what a second method costs on top (FT against MiB: the cost of distillation).
//
// It runs the trainer's own iteration (incremental/step_session.h, StepSession::train_iteration) on a
// synthetic batch (random u8 images and labels of the task's classes, 5% ignored), as `strata bench
// step` does, after building the step's session from a seeded step-0 model (its state dict stands for
// the step-0 checkpoint). Warm-up iterations first (momentum buffers exist, caches are warm), then the
// profiled ones under engine/profiler.h:
//   - per phase, the time of each scope StepSession opens plus "data" (the batch copied onto the
//     device: the loader's decoding runs on worker threads and is `strata bench loader`'s business),
//     and what no scope covers (normalisation, zero_grad), so the rows add up to the wall time;
//   - per op, calls, self time, FLOPs and bytes (profiler::count's convention), the achieved rates
//     against the device's roofline (measured at start: a GEMM and a streaming add) and the op's
//     projected time on an H100 SXM (max(FLOPs / peak, bytes / 3.35 TB/s) at the f32 and the bf16
//     dense peak, ../shared/reference/performance-anchors.md §2.1);
//   - the allocator's peak, split into weights, gradients, optimizer state, input batch, saved
//     activations (student forward, losses), teacher maps, activation gradients, kernel workspace and
//     "other" (profiler::MemoryProfile), summing exactly to the peak.
//
// Errors (strata::Error naming the option): an unknown option, a missing or malformed value, a value
// out of range (iterations >= 1, warm-up >= 0, batch >= 1, crop >= 16), an unknown method, architecture, backbone,
// task or device, a step outside the task or step 0 (a step without a teacher has nothing to profile
// against), --json in a folder that does not exist.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "apps/strata/commands.h"
#include "engine/allocator.h"
#include "engine/json.h"
#include "engine/profiler.h"
#include "incremental/method.h"
#include "incremental/step_session.h"

namespace strata::app {

struct ProfileSettings {
  std::string method = "MiB";
  std::string compare;                // a second method; empty: none
  std::string arch = "deeplabv3";     // deeplabv3 | pspnet | deeplabv3plus | bisenet
  std::string backbone;               // models::kBackboneNames; empty: resnet50 for DeepLabV3, else the
                                      // architecture's reference
  std::string task = "15-5";          // a VOC task
  int step = 1;
  int64_t batch = 2;
  int64_t crop = 128;
  std::string device = "cpu";
  int iterations = 3;
  int warmup = 1;
  int threads = 0;  // 0: OpenMP's default
  int top = 20;     // op rows in the table (the JSON has all)
  std::string json;  // a file for the JSON report; empty: none
  bool calibrate = true;
  // train's flags that change --method's preset (incremental::method_option_names), not --compare's.
  incremental::MethodOverrides method_overrides;
};

// Parses `strata profile`'s arguments into `settings`. Returns false after printing the help for
// --help / -h; throws strata::Error naming the option on anything it cannot use.
bool parse_profile_args(const Args& args, ProfileSettings& settings);
std::string profile_help();

// H100 SXM5 (../shared/reference/performance-anchors.md §2.1, NVIDIA's datasheet figures).
inline constexpr double kH100Bandwidth = 3.35e12;      // bytes/s, HBM3
inline constexpr double kH100PeakF32 = 66.9e12;        // FLOP/s, CUDA cores
inline constexpr double kH100PeakBf16Dense = 989.4e12;  // FLOP/s, tensor cores, dense

// A device's roofline: its peak compute and bandwidth as measured (or 0 when not calibrated).
struct Roofline {
  double flops_per_second = 0;
  double bytes_per_second = 0;
  std::string how;  // what was measured
  // max(flops / peak, bytes / bandwidth); 0 when uncalibrated.
  double seconds(double flops, double bytes) const;
};
// Best of five: an f32 GEMM of 512x512 by 512x512 (linear) and an add of two 4M-element f32 tensors.
Roofline calibrate_roofline(const std::string& device);
double h100_seconds(double flops, double bytes, double peak);

struct PhaseProfile {
  std::string name;  // "data", "teacher forward", ..., "outside the phases"
  double seconds = 0;  // per iteration
  double flops = 0, bytes = 0;  // per iteration, counted by the ops inside the phase
  std::vector<profiler::Entry> ops;  // the scopes inside it, per iteration, most self time first
};

struct OpProfile {
  std::string name;
  double calls = 0, seconds = 0, flops = 0, bytes = 0;  // per iteration; seconds are self time
};

struct MethodProfile {
  std::string method;       // MethodConfig::describe()
  std::string model;        // ModelConfig::describe()
  int iterations = 0;
  double wall_seconds = 0;  // per iteration, data to optimizer step
  std::vector<PhaseProfile> phases;
  std::vector<OpProfile> ops;  // most self time first
  int64_t peak_bytes = 0;      // the allocator's peak over the profiled iterations
  std::vector<profiler::MemoryProfile::Row> memory;  // the rows of profile_memory_rows(), in order
  double last_loss = 0;
  std::vector<std::string> loss_terms;  // the method's active terms
};

// The memory rows, in the order they are reported.
const std::vector<std::string>& profile_memory_rows();
// The row of an allocation made in `context` (engine/profiler.h's allocation_context(): the step's
// phase scopes, the kernels' "workspace" tag) when no owner claims it.
std::string profile_memory_row_of(const char* context);

// The step of settings (settings.method with settings.method_overrides) built as profile_method
// builds it, settings.warmup iterations, then one more with `observer` installed on the device's
// allocator (profiling on, so allocations carry their phase), then `after` with the session and the
// bytes the live allocations had asked for when the observer was installed.
void observe_iteration(const ProfileSettings& settings, AllocationObserver& observer,
                       const std::function<void(incremental::StepSession&, int64_t allocated_before)>& after = {});

// Runs settings.warmup + settings.iterations iterations of `method` and measures them; `overridden`:
// changed by settings.method_overrides (the profiled method; --compare's is the plain preset).
MethodProfile profile_method(const ProfileSettings& settings, const std::string& method, bool overridden = false);

// The tables `strata profile` prints, and its JSON report.
std::string format_profile(const ProfileSettings& settings, const Roofline& roofline,
                           const std::vector<MethodProfile>& runs);
json::Value profile_json(const ProfileSettings& settings, const Roofline& roofline,
                         const std::vector<MethodProfile>& runs);

}  // namespace strata::app
