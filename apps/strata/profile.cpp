// `strata profile` (apps/strata/profile.h): the options, the roofline calibration and the profiled
// iterations of one method. The tables and the JSON are in profile_report.cpp.
#include "apps/strata/profile.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <memory>
#include <random>
#include <stdexcept>

#include "apps/strata/step_batch.h"
#include "engine/atomic_file.h"
#include "engine/device_context.h"
#include "engine/error.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/linear.h"
#include "incremental/method.h"
#include "incremental/options.h"
#include "incremental/recipe.h"
#include "incremental/step_session.h"
#include "incremental/task.h"

namespace strata::app {

namespace {

constexpr const char* kCommand = "profile";
constexpr uint64_t kSeed = 42;
// The profile's own scopes: the batch handed to the step, and the session's construction (whose
// allocations are not part of the step unless they stay).
constexpr const char* kDataScope = "profile: data";
constexpr const char* kSetupScope = "profile: setup";

using Clock = std::chrono::steady_clock;

// Profiling on this thread while it lives, off again however the run ends (a step's error included).
struct ProfilingOn {
  ProfilingOn() { profiler::enable(true); }
  ~ProfilingOn() { profiler::enable(false); }
  ProfilingOn(const ProfilingOn&) = delete;
  ProfilingOn& operator=(const ProfilingOn&) = delete;
};

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

void synchronize(const Device& device) {
  if (device.context != nullptr) device.context->synchronize();
}

// The best of `runs` timings of `work` on `device`.
template <class Work>
double best_seconds(const Device& device, int runs, Work&& work) {
  double best = std::numeric_limits<double>::infinity();
  for (int r = 0; r < runs; ++r) {
    synchronize(device);
    const Clock::time_point start = Clock::now();
    work();
    synchronize(device);
    best = std::min(best, seconds_since(start));
  }
  return best;
}

// The step of `method`, changed by the method flags when it is the profiled one (not --compare's).
incremental::StepSetup step_setup(const ProfileSettings& s, const std::string& method, bool overridden,
                                  const incremental::Task& task, const Device& device) {
  incremental::StepSetup setup;
  setup.step = s.step;
  std::vector<int64_t> classes;
  for (int c : task.classes_per_step(s.step)) classes.push_back(c);
  setup.model.flavour = models::Flavour::mib;
  setup.model.arch = models::parse_architecture(s.arch);
  setup.model.output_stride = models::reference_output_stride(setup.model.arch);
  setup.model.classes = classes;
  const bool deeplabv3 = setup.model.arch == models::Architecture::deeplabv3;
  models::apply_backbone(setup.model, !s.backbone.empty() ? s.backbone
                                      : deeplabv3         ? "resnet50"
                                                          : models::reference_backbone(setup.model.arch));
  setup.model.seed = kSeed;
  setup.method = incremental::method_preset(method, task);
  if (overridden) setup.method = incremental::apply_overrides(setup.method, s.method_overrides);
  setup.method.adapt_to(setup.model);
  setup.recipe = incremental::reference_recipe(task, s.step);
  setup.recipe.batch_size = static_cast<int>(s.batch);
  setup.recipe.crop_size = static_cast<int>(s.crop);
  setup.device = device;
  setup.seed = kSeed;
  return setup;
}

std::vector<const void*> storage_of(const nn::NamedTensors& tensors) {
  std::vector<const void*> out;
  for (const auto& [name, t] : tensors) out.push_back(t.raw_data());
  return out;
}

// The memory row of an allocation context (the scopes StepSession and this file open, the
// kernels' "workspace" tag).
std::string memory_row_of(const char* context) {
  using incremental::StepPhase;
  using incremental::step_phase_name;
  const std::vector<std::string>& rows = profile_memory_rows();
  if (context == nullptr) return rows[4];  // outside every scope: the normalised batch
  const std::string c = context;
  if (c == kDataScope) return rows[4];
  if (c == step_phase_name(StepPhase::student_forward)) return rows[5];
  if (c == step_phase_name(StepPhase::losses)) return rows[6];
  if (c == step_phase_name(StepPhase::teacher_forward)) return rows[7];
  if (c == step_phase_name(StepPhase::backward)) return rows[8];
  if (c == "workspace") return rows[9];
  return rows.back();
}

// The peak's rows now, while the session still holds the peak's weights, gradients and momentum.
std::vector<profiler::MemoryProfile::Row> memory_rows_now(const profiler::MemoryProfile& memory,
                                                          incremental::StepSession& session) {
  const std::vector<std::string>& names = profile_memory_rows();
  std::vector<std::pair<std::string, std::vector<const void*>>> owners;
  models::SegmentationModel& model = session.model();
  std::vector<const void*> weights = storage_of(model.named_parameters());
  for (const void* p : storage_of(model.named_buffers())) weights.push_back(p);
  owners.emplace_back(names[0], weights);
  if (incremental::Teacher* teacher = session.teacher()) {
    // Folded or not, the tensors it holds.
    std::vector<const void*> teacher_weights;
    for (const Tensor& t : teacher->weights()) teacher_weights.push_back(t.raw_data());
    owners.emplace_back(names[1], teacher_weights);
  }
  std::vector<const void*> gradients;
  for (const auto& [name, p] : model.named_parameters()) {
    if (p.grad().defined()) gradients.push_back(p.grad().raw_data());
  }
  owners.emplace_back(names[2], gradients);
  Metadata metadata;
  std::vector<const void*> momentum;
  for (const auto& [name, buffer] : session.optimizer().state_dict(metadata)) momentum.push_back(buffer.raw_data());
  owners.emplace_back(names[3], momentum);

  std::vector<profiler::MemoryProfile::Row> found = memory.peak_breakdown(owners, memory_row_of, names.back());
  std::vector<profiler::MemoryProfile::Row> rows;
  for (const std::string& name : names) {
    profiler::MemoryProfile::Row row{name, 0, 0};
    for (const auto& f : found) {
      if (f.name == name) row = f;
    }
    rows.push_back(row);
  }
  return rows;
}

// The phases of the profiled iterations, per iteration, from the profiler's entries.
std::vector<PhaseProfile> phases_of(const std::vector<profiler::NestedEntry>& nested, double wall, int iterations) {
  std::vector<std::pair<std::string, std::string>> scopes = {{"data", kDataScope}};
  for (incremental::StepPhase phase : incremental::kStepPhases) {
    const std::string scope = incremental::step_phase_name(phase);
    scopes.emplace_back(scope.substr(scope.find(": ") + 2), scope);
  }
  const double per = 1.0 / iterations;
  std::vector<PhaseProfile> phases;
  double covered = 0;
  for (const auto& [name, scope] : scopes) {
    PhaseProfile p;
    p.name = name;
    for (const profiler::NestedEntry& n : nested) {
      if (n.outermost != scope) continue;
      profiler::Entry e = n.entry;
      if (e.name == scope) {
        p.seconds = e.total_seconds * per;
        e.name = "(" + name + " itself)";  // the phase's time outside any op
      }
      e.calls /= iterations;  // every iteration makes the same calls
      e.self_seconds *= per;
      e.total_seconds *= per;
      e.flops *= per;
      e.bytes *= per;
      p.flops += e.flops;
      p.bytes += e.bytes;
      p.ops.push_back(e);
    }
    covered += p.seconds;
    phases.push_back(p);
  }
  PhaseProfile outside;
  outside.name = "outside the phases";
  outside.seconds = wall - covered;
  phases.push_back(outside);
  return phases;
}

std::vector<OpProfile> ops_of(const std::vector<profiler::Entry>& entries, int iterations) {
  const double per = 1.0 / iterations;
  std::vector<OpProfile> ops;
  for (const profiler::Entry& e : entries) {
    ops.push_back(OpProfile{e.name, static_cast<double>(e.calls) * per, e.self_seconds * per, e.flops * per,
                            e.bytes * per});
  }
  return ops;
}

}  // namespace

const std::vector<std::string>& profile_memory_rows() {
  static const std::vector<std::string> rows = {"weights (student)",
                                                "weights (teacher)",
                                                "gradients",
                                                "optimizer state",
                                                "input batch",
                                                "saved activations (student forward)",
                                                "saved activations (losses)",
                                                "teacher maps",
                                                "activation gradients (backward)",
                                                "workspace (kernel scratch)",
                                                "other"};
  return rows;
}

std::string profile_help() {
  std::string methods;
  for (const std::string& m : incremental::method_names()) methods += (methods.empty() ? "" : ", ") + m;
  return cat(
      "usage: strata profile [options]\n\n"
      "Runs incremental training iterations of one setting (the trainer's own iteration on a synthetic batch)\n"
      "and prints where the time and the memory go: per phase, per op (calls, time, FLOPs, bytes, achieved rates\n"
      "against the device's measured roofline, projected H100 time) and the allocator's peak split into weights,\n"
      "gradients, optimizer state, activations, teacher maps and workspace. --compare runs a second method and\n"
      "prints the difference: what distillation costs.\n\n"
      "  --method NAME      ",
      methods, " (case-insensitive; default MiB)\n",
      "  --compare NAME     a second method, e.g. FT (default: none)\n"
      "  --arch NAME        deeplabv3 (default; MiB's head, output stride 16), pspnet, deeplabv3plus or bisenet\n"
      "                     (strata train --help), each at its reference's output stride\n"
      "  --backbone NAME    resnet50 (default; PSPNet's too), resnet18 (BiSeNet's default), resnet34, resnet101\n"
      "                     (DeepLabV3+'s default) or small (the demo's)\n"
      "  --task NAME        a VOC task (default 15-5)\n"
      "  --step N           the step to train, >= 1 (default 1)\n"
      "  --batch-size N     images per batch (default 2)\n"
      "  --crop-size N      square crop, >= 16 (default 128)\n"
      "  --device DEV       cpu (default), cuda or cuda:<i>\n"
      "  --iterations N     profiled iterations (default 3)\n"
      "  --warmup N         iterations before them (default 1)\n"
      "  --threads N        OpenMP threads (default: OpenMP's)\n"
      "  --top N            op rows in the table (default 20; the JSON has all)\n"
      "  --no-calibrate     skip the roofline measurement (no achieved-vs-roofline figures)\n"
      "  --json FILE        also write the report as JSON\n"
      "  and train's flags that change a method (--loss-kd, --kd-temperature, --pod, ...; strata train --help),\n"
      "  applied to --method only, so --compare with the preset shows what they cost\n");
}

bool parse_profile_args(const Args& args, ProfileSettings& s) {
  CommandLine options(kCommand);
  options.value("--method", "NAME", [&](const std::string& v) { s.method = v; });
  options.text("--compare", "NAME", s.compare);
  options.text("--backbone", "NAME", s.backbone);
  options.value("--arch", "NAME", [&](const std::string& v) {
    models::parse_architecture(v);
    s.arch = v;
  });
  options.text("--task", "NAME", s.task);
  options.text("--device", "DEV", s.device);
  options.text("--json", "FILE", s.json);
  options.integer("--step", "N", s.step, 1);
  options.integer("--batch-size", "N", s.batch, 1);
  options.integer("--crop-size", "N", s.crop, 16);
  options.integer("--iterations", "N", s.iterations, 1);
  options.integer("--warmup", "N", s.warmup, 0);
  options.integer("--threads", "N", s.threads, 1);
  options.integer("--top", "N", s.top, 1);
  options.flag("--no-calibrate", [&] { s.calibrate = false; });
  // Train's flags that change a method, parsed as train parses them.
  incremental::TrainOptions method;
  method.method_overrides = s.method_overrides;
  incremental::add_train_options(options, method, incremental::method_option_names());
  if (!options.parse(args)) {
    std::printf("%s", profile_help().c_str());
    return false;
  }
  s.method_overrides = method.method_overrides;
  if (!s.json.empty()) {
    const std::filesystem::path parent = std::filesystem::path(s.json).parent_path();
    check(parent.empty() || std::filesystem::is_directory(parent), kCommand, ": --json '", s.json,
          "': the folder ", parent.string(), " does not exist");
  }
  // The names are checked before any work.
  const incremental::Task task = incremental::Task::create(incremental::LabelSpace::voc(), s.task);
  task.check_step(s.step);
  incremental::apply_overrides(incremental::method_preset(s.method, task), s.method_overrides);
  if (!s.compare.empty()) incremental::method_preset(s.compare, task);
  step_setup(s, s.method, true, task, Device::cpu());
  return true;
}

double Roofline::seconds(double flops, double bytes) const {
  if (flops_per_second <= 0 || bytes_per_second <= 0) return 0;
  return std::max(flops / flops_per_second, bytes / bytes_per_second);
}

double h100_seconds(double flops, double bytes, double peak) {
  return std::max(flops / peak, bytes / kH100Bandwidth);
}

Roofline calibrate_roofline(const std::string& device_text) {
  const Device device = parse_device(device_text);
  constexpr int64_t kGemm = 512, kStream = int64_t{1} << 22;
  constexpr int kRuns = 5;
  Generator g(kSeed);
  Tensor x = Tensor::randn({kGemm, kGemm}, g).to(device), w = Tensor::randn({kGemm, kGemm}, g).to(device);
  const double gemm = best_seconds(device, kRuns, [&] { linear(x, w, Tensor()); });
  Tensor a = Tensor::randn({kStream}, g).to(device), b = Tensor::randn({kStream}, g).to(device);
  const double stream = best_seconds(device, kRuns, [&] { add(a, b); });
  Roofline r;
  r.flops_per_second = 2.0 * kGemm * kGemm * kGemm / gemm;
  r.bytes_per_second = 3.0 * kStream * sizeof(float) / stream;
  r.how = cat("measured now, best of ", kRuns, ": f32 GEMM ", kGemm, "x", kGemm, "x", kGemm, ", add of two ",
              kStream * sizeof(float) >> 20, " MB tensors");
  return r;
}

namespace {

// A step ready to iterate: its session (built from a step-0 model of the same seed, PLOP's
// thresholds computed) and its random batch, on the settings' device.
struct PreparedStep {
  Device device;
  incremental::StepSetup setup;
  std::unique_ptr<incremental::StepSession> session;
  Tensor images, labels;

  // One iteration on a copy of the batch (the data phase), then a device synchronisation.
  incremental::IterationStats iterate() {
    Tensor x, y;
    {
      profiler::Scope scope(kDataScope);
      x = device.is_cpu() ? images.clone() : images.to(device);
      y = device.is_cpu() ? labels.clone() : labels.to(device);
    }
    incremental::IterationStats stats = session->train_iteration(x, y);
    synchronize(device);
    return stats;
  }
};

PreparedStep prepare_step(const ProfileSettings& s, const std::string& method, bool overridden, const Device& device) {
  PreparedStep p;
  p.device = device;
  const incremental::Task task = incremental::Task::create(incremental::LabelSpace::voc(), s.task);
  p.setup = step_setup(s, method, overridden, task, p.device);
  {
    profiler::Scope scope(kSetupScope);
    TensorMap previous;
    {
      models::ModelConfig step0 = p.setup.model;
      step0.classes.pop_back();
      previous = models::SegmentationModel(step0).state_dict();
    }
    // EWC/PI/RW at step >= 1 penalise with the previous step's importance: ones here, which cost
    // what any importance costs.
    incremental::PreviousMethod previous_method{{}, "the profile's previous-step model"};
    if (p.setup.method.regularizer.kind != incremental::RegularizerKind::none) {
      for (const auto& [key, t] : previous) {
        for (const char* prefix : {"fisher.", "score."}) {
          previous_method.state.emplace(prefix + key, Tensor::ones(t.shape(), t.dtype()));
        }
      }
    }
    p.session = std::make_unique<incremental::StepSession>(
        p.setup, task, &previous, "the profile's previous-step model", "", s.warmup + s.iterations, previous_method);
  }
  {
    profiler::Scope scope(kDataScope);
    random_step_batch(s.batch, s.crop, s.crop, task.labels().num_classes(), p.images, p.labels);
  }
  if (p.session->method().needs_pseudo_thresholds(p.setup.step)) {
    // PLOP's pseudo-label thresholds, from the profile's batch as the trainer's pass computes them
    // from the step's data: part of the set-up, not of an iteration.
    profiler::Scope scope(kSetupScope);
    bool given = false;
    p.session->compute_pseudo_label_thresholds([&]() -> std::optional<incremental::ThresholdBatch> {
      if (given) return std::nullopt;
      given = true;
      return incremental::ThresholdBatch{p.images, p.labels};
    });
  }
  return p;
}

}  // namespace

std::string profile_memory_row_of(const char* context) { return memory_row_of(context); }

void observe_iteration(const ProfileSettings& s, AllocationObserver& observer,
                       const std::function<void(incremental::StepSession&, int64_t allocated_before)>& after) {
  profiler::reset();
  ProfilingOn profiling;
  PreparedStep step = prepare_step(s, s.method, true, parse_device(s.device));
  for (int i = 0; i < s.warmup; ++i) step.iterate();
  Allocator& allocator = allocator_for(step.device);
  check(allocator.observer() == nullptr, "observe_iteration: the allocator of ", step.device.str(),
        " is already watched");
  const int64_t allocated_before = allocator.stats().requested_bytes;
  allocator.set_observer(&observer);
  try {
    step.iterate();
  } catch (...) {
    allocator.set_observer(nullptr);
    throw;
  }
  allocator.set_observer(nullptr);
  if (after) after(*step.session, allocated_before);
  profiler::reset();
}

MethodProfile profile_method(const ProfileSettings& s, const std::string& method, bool overridden) {
  profiler::reset();
  ProfilingOn profiling;
  const Device opened = parse_device(s.device);
  profiler::MemoryProfile memory(opened);
  PreparedStep step = prepare_step(s, method, overridden, opened);
  const incremental::StepSetup& setup = step.setup;
  std::unique_ptr<incremental::StepSession>& session = step.session;

  MethodProfile out;
  out.method = setup.method.describe();
  out.model = setup.model.describe();
  out.iterations = s.iterations;
  incremental::IterationStats stats;
  auto iteration = [&] { stats = step.iterate(); };
  for (int i = 0; i < s.warmup; ++i) iteration();
  profiler::reset();
  memory.reset_peak();
  double wall = 0;
  for (int i = 0; i < s.iterations; ++i) {
    const Clock::time_point start = Clock::now();
    iteration();
    wall += seconds_since(start);
    if (memory.peak_moved()) out.memory = memory_rows_now(memory, *session);
  }
  out.wall_seconds = wall / s.iterations;
  out.peak_bytes = memory.peak_bytes();
  out.phases = phases_of(profiler::report_by_outermost(), out.wall_seconds, s.iterations);
  out.ops = ops_of(profiler::report(), s.iterations);
  out.last_loss = stats.loss.item();
  out.loss_terms = stats.names;
  return out;
}

int run_profile(const Args& args) {
  ProfileSettings s;
  if (!parse_profile_args(args, s)) return 0;
  if (s.threads > 0) omp_set_num_threads(s.threads);
  s.threads = omp_get_max_threads();
  std::printf("%s", emulated_device_warning(parse_device(s.device), s.device).c_str());
  Roofline roofline;
  if (s.calibrate) {
    std::printf("Measuring the roofline of %s...\n", s.device.c_str());
    std::fflush(stdout);
    roofline = calibrate_roofline(s.device);
  }
  std::vector<MethodProfile> runs;
  for (const std::string& method : {s.method, s.compare}) {
    if (method.empty()) continue;
    std::printf("Profiling %s: %d warm-up + %d profiled iterations...\n", method.c_str(), s.warmup, s.iterations);
    std::fflush(stdout);
    runs.push_back(profile_method(s, method, runs.empty()));
  }
  std::printf("\n%s", format_profile(s, roofline, runs).c_str());
  if (!s.json.empty()) {
    write_file_atomically(s.json, json::dump(profile_json(s, roofline, runs)) + "\n");
    std::printf("\nJSON report: %s\n", s.json.c_str());
  }
  return 0;
}

}  // namespace strata::app
