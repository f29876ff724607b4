// `strata bench step`: one incremental training step on the CPU, strata and PyTorch side by side in
// one run. The setting: VOC task 15-5, step 1 (16 old channels with background, 5 new), MiB's
// DeepLabV3-ResNet-50 (mib flavour: In-place ABN with leaky ReLU 0.01, output stride 16), the method
// chosen by --method with its preset (incremental/method.h), lr 0.001 with the poly schedule, SGD
// Nesterov momentum 0.9, weight decay 1e-4 (incremental/recipe.h), random u8 images and labels in
// 0..20 with 5% ignored (255).
//
// strata's step is the trainer's own: StepSession::train_iteration (normalisation, the frozen
// teacher's forward, the student's forward, Method::loss, backward, SGD, schedule), the session
// built from a step-0 model of the same seed (its state dict stands for the step-0 checkpoint; the
// balanced init runs at construction, not timed). PyTorch's (tools/bench_step_torch.py) runs the
// same architecture from tools/torchref and the same loss formulas, same thread count.
//
// Prints the time per step of each and their ratio, peak memory measured the same way for both
// (resident-set high-water increase during the steps) and their ratio, strata's allocator peak, the
// time of each phase of the step for both, and the per-op profiles (bench_common.h).
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "apps/strata/bench_common.h"
#include "apps/strata/commands.h"
#include "apps/strata/python.h"
#include "apps/strata/step_batch.h"
#include "engine/json.h"
#include "incremental/method.h"
#include "incremental/recipe.h"
#include "incremental/step_session.h"
#include "incremental/task.h"

namespace strata::app {

namespace {

constexpr const char* kCommand = "bench step";

struct Settings {
  StepBenchSettings step;
  std::string method = "mib";
};

struct StrataResult {
  int64_t parameters = 0, teacher_parameters = 0;
  double first_loss = 0;
  StepMeasurement measurement;
};

StrataResult run_strata(const Settings& s, const incremental::Task& task, const incremental::StepSetup& setup) {
  TensorMap previous = bench_step0_weights(setup);
  const int64_t iterations = s.step.warmup + s.step.steps + s.step.profile_steps;
  incremental::StepSession session(setup, task, &previous, "the benchmark's step-0 model", "", iterations);
  previous.clear();  // measure_steps() returns its pages to the system before the baseline
  Tensor images, labels;
  random_step_batch(s.step.batch, s.step.height, s.step.width, task.labels().num_classes(), images, labels);

  StrataResult r;
  r.parameters = session.model().parameter_count();
  if (session.teacher() != nullptr) r.teacher_parameters = session.teacher()->parameter_count();
  bool first = true;
  auto step = [&] {
    incremental::IterationStats stats = session.train_iteration(images, labels);
    // One read, after the first step (a warm-up step unless --warmup 0).
    if (first) r.first_loss = stats.loss.item();
    first = false;
  };
  r.measurement = measure_steps(step, s.step.warmup, s.step.steps, s.step.profile_steps);
  return r;
}

// The time of each phase of the step for both, from the profiled steps.
void print_phases(const StrataResult& ours, const json::Value& torch, int profile_steps) {
  std::printf("\nwhere a step goes, per phase (%d profiled steps each; profilers on)\n", profile_steps);
  std::printf("%-44s %14s %14s %10s\n", "", "strata", "PyTorch", "ratio");
  const json::Value& ranges = torch.at("ranges");
  for (incremental::StepPhase step_phase : incremental::kStepPhases) {
    const char* phase = incremental::step_phase_name(step_phase);
    double strata_ms = 0;
    for (const profiler::Entry& e : ours.measurement.ops) {
      if (e.name == phase) strata_ms = e.total_seconds * 1e3 / profile_steps;
    }
    const json::Value* theirs = ranges.find(phase);
    if (strata_ms == 0 && theirs == nullptr) continue;  // a phase neither ran (FT's teacher)
    const double torch_ms = theirs != nullptr ? theirs->as_double() * 1e3 : 0;
    std::printf("%-44s %11.1f ms %11.1f ms %10.2f\n", phase, strata_ms, torch_ms, strata_ms / torch_ms);
  }
}

// Whether tools/bench_step_torch.py implements the method (its losses: CE or unbiased CE, KD or
// unbiased KD, backbone MSE); LwF-MC's BCE terms, EWC/PI/RW's penalties and PLOP's pseudo-labels and
// Local POD have no PyTorch side there (`strata bench pod` compares Local POD alone).
bool benchmarked(const incremental::MethodConfig& method) {
  return !method.icarl && method.regularizer.kind == incremental::RegularizerKind::none && !method.pod &&
         !method.pseudo;
}

std::vector<std::string> benchmarked_methods() {
  std::vector<std::string> out;
  for (const std::string& m : incremental::method_names()) {
    if (benchmarked(incremental::method_preset(m, bench_task()))) {
      out.push_back(m);
    }
  }
  return out;
}

void print_help() {
  std::string methods;
  for (const std::string& m : benchmarked_methods()) methods += (methods.empty() ? "" : ", ") + m;
  std::printf(
      "usage: strata bench step [options]\n\n"
      "One incremental training step on the CPU, strata and PyTorch side by side in one run: VOC 15-5 step 1\n"
      "(16 old channels, 5 new), MiB's DeepLabV3-ResNet-50 (In-place ABN, output stride 16), the student's\n"
      "forward and backward, the frozen teacher's forward (methods that distil), the method's losses, SGD\n"
      "Nesterov lr 0.001 with the poly schedule. Prints time per step, peak memory, their ratios, per-phase\n"
      "times and per-op profiles.\n\n"
      "  --method NAME    %s (case-insensitive; default mib)\n"
      "%s",
      methods.c_str(), step_options_help().c_str());
}

}  // namespace

int run_bench_step(const Args& args) {
  Settings s;
  auto own = [&](CommandLine& options) { options.text("--method", "NAME", s.method); };
  if (!parse_step_args(args, s.step, kCommand, print_help, own)) return 0;

  const incremental::Task task = bench_task();
  incremental::StepSetup setup =
      bench_step_setup(task, s.method, "resnet50", s.step.batch, s.step.height, Device::cpu());
  check(benchmarked(setup.method), kCommand, ": --method ", s.method,
        " has no PyTorch side in tools/bench_step_torch.py (LwF-MC's BCE terms and EWC/PI/RW's penalties are not "
        "there): compare the methods --help lists, or run `strata profile --method ",
        s.method, "` for strata alone");
  const incremental::MethodConfig& method = setup.method;
  const incremental::Recipe& recipe = setup.recipe;

  json::Object input = s.step.to_json();
  const json::Object step = torch_step_settings(setup, s.step.warmup + s.step.steps + s.step.profile_steps);
  input.insert(input.end(), step.begin(), step.end());

  std::printf("Running the PyTorch side (tools/bench_step_torch.py)...\n");
  std::fflush(stdout);
  json::Value torch = run_python_json(s.step.python, "tools/bench_step_torch.py", json::Value(input), {});
  std::printf("Running the strata side...\n\n");
  std::fflush(stdout);
  StrataResult ours = run_strata(s, task, setup);

  std::printf("VOC %s step %d, %s; %s\n", kBenchTask, kBenchStep, method.describe().c_str(),
              setup.model.describe().c_str());
  std::printf("parameters: student %lld, teacher %lld (PyTorch: %lld, %lld; 0: the method runs no teacher)\n",
              static_cast<long long>(ours.parameters), static_cast<long long>(ours.teacher_parameters),
              static_cast<long long>(torch.at("parameters").as_int()),
              static_cast<long long>(torch.at("teacher_parameters").as_int()));
  std::printf("one step: normalise the u8 batch, %sstudent forward, losses, backward, SGD Nesterov momentum %g wd %g, "
              "lr %g poly %g\n",
              ours.teacher_parameters > 0 ? "teacher forward (eval, no grad), " : "", recipe.momentum,
              recipe.weight_decay, recipe.lr, recipe.lr_power);
  std::printf("batch %lld, 3x%lldx%lld, f32, %d threads; %d warm-up + %d timed steps each; first step's loss: "
              "strata %.4g, PyTorch %.4g (own random weights and data each)\n",
              static_cast<long long>(s.step.batch), static_cast<long long>(s.step.height),
              static_cast<long long>(s.step.width), s.step.threads, s.step.warmup, s.step.steps, ours.first_loss,
              torch.at("first_loss").as_double());
  std::printf("strata: NHWC, im2col + OpenBLAS, In-place ABN | PyTorch %s: NCHW, %s, batch norm + in-place leaky "
              "ReLU (no In-place ABN op)\n\n",
              torch.at("torch").as_string().c_str(), torch.at("mkldnn").as_bool() ? "oneDNN" : "native");
  print_step_comparison(ours.measurement, torch, 1.3, 0.7);
  print_phases(ours, torch, s.step.profile_steps);
  print_profiles(ours.measurement, torch, s.step.profile_steps);
  return 0;
}

}  // namespace strata::app
