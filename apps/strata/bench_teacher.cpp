// `strata bench teacher` (bench_teacher.h): the frozen teacher's forward, folded vs unfolded vs
// PyTorch. The teacher is MiB's DeepLabV3-ResNet-50 (mib flavour: In-place ABN with leaky ReLU 0.01,
// output stride 16, 16 classes), randomly initialised and frozen, on random normalised images; each
// side runs its forward with only the upsampled logits kept, as a KD teacher does.
#include "apps/strata/bench_teacher.h"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <string>

#include "apps/strata/commands.h"
#include "apps/strata/python.h"
#include "engine/json.h"
#include "incremental/teacher.h"

namespace strata::app {

namespace {

constexpr const char* kCommand = "bench teacher";
constexpr uint64_t kSeed = 42;
constexpr int kOutputStride = 16;
constexpr double kTimeTarget = 1.3;  // issue 13: the folded forward at least 1.3x faster than the unfolded

models::ModelConfig teacher_config(const TeacherBenchSettings& s) {
  models::ModelConfig config;
  config.flavour = models::Flavour::mib;
  config.depth = s.depth;
  config.output_stride = kOutputStride;
  config.classes = {s.classes};
  config.seed = kSeed;
  return config;
}

// User + system time of the process (all threads).
double process_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

// One teacher's forward measured as the step benchmarks measure a step.
StepMeasurement measure_teacher(incremental::Teacher& teacher, const Tensor& images, const StepBenchSettings& s) {
  auto forward = [&] { models::ForwardResult out = teacher.run(images, models::ForwardOptions{}); };
  return measure_steps(forward, s.warmup, s.steps, s.profile_steps);
}

void print_row(const char* name, double median_s, double mean_s, int64_t rss, const std::string& allocator,
               const std::string& weights) {
  std::printf("%-26s %10.1f ms %10.1f ms %12s %16s %12s\n", name, median_s * 1e3, mean_s * 1e3, megabytes(rss).c_str(),
              allocator.c_str(), weights.c_str());
}

void print_help() {
  std::printf(
      "usage: strata bench teacher [options]\n\n"
      "The frozen teacher's forward on the CPU, three ways in one run: strata's folded teacher (batch norms\n"
      "folded into the convolutions, activation in the conv epilogue, no graph), strata's unfolded teacher\n"
      "(the model's eval forward under no-grad) and PyTorch's eval + no_grad forward of MiB's DeepLabV3 (In-place\n"
      "ABN as batch norm + in-place leaky ReLU, output stride 16). Prints time and peak memory with ratios.\n\n"
      "  --depth 50|101   ResNet depth (default 50)\n"
      "  --classes N      the teacher's classes (default 16)\n"
      "%s(--steps and --profile count forwards)\n",
      step_options_help().c_str());
}

}  // namespace

TeacherBenchResult print_teacher_bench(const TeacherBenchSettings& s) {
  const models::ModelConfig config = teacher_config(s);
  json::Object input = s.step.to_json();
  input.insert(input.end(), {{"depth", s.depth},
                             {"output_stride", kOutputStride},
                             {"classes", json::Array{json::Value(s.classes)}},
                             {"seed", kSeed}});
  std::printf("Running the PyTorch side (tools/bench_teacher_torch.py)...\n");
  std::fflush(stdout);
  const json::Value torch = run_python_json(s.step.python, "tools/bench_teacher_torch.py", json::Value(input), {});
  std::printf("Running the strata side...\n\n");
  std::fflush(stdout);

  TeacherBenchResult r;
  Generator g(kSeed);
  const Tensor images = Tensor::randn({s.step.batch, s.step.height, s.step.width, 3}, g);
  incremental::Teacher unfolded(std::make_shared<models::SegmentationModel>(config),
                                incremental::TeacherForward::unfolded);
  incremental::Teacher folded(std::make_shared<models::SegmentationModel>(config), incremental::TeacherForward::folded);
  r.unfolded_weight_bytes = unfolded.weight_bytes();
  r.folded_weight_bytes = folded.weight_bytes();
  // Memory and the per-op profiles, one teacher at a time.
  r.unfolded = measure_teacher(unfolded, images, s.step);
  r.folded = measure_teacher(folded, images, s.step);
  // The times again, the two forwards interleaved (the order alternating), so that other work on the
  // machine slows both alike: their ratio is the figure this benchmark is for.
  r.folded.seconds.clear();
  r.unfolded.seconds.clear();
  r.folded.cpu_seconds.clear();
  r.unfolded.cpu_seconds.clear();
  for (int i = 0; i < s.step.steps; ++i) {
    for (int k = 0; k < 2; ++k) {
      const bool run_folded = (i + k) % 2 == 0;
      incremental::Teacher& teacher = run_folded ? folded : unfolded;
      StepMeasurement& m = run_folded ? r.folded : r.unfolded;
      const auto t0 = std::chrono::steady_clock::now();
      const double cpu0 = process_seconds();
      { models::ForwardResult out = teacher.run(images, models::ForwardOptions{}); }
      m.seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      m.cpu_seconds.push_back(process_seconds() - cpu0);
    }
  }
  std::vector<double> torch_seconds;
  for (const json::Value& v : torch.at("seconds").as_array()) torch_seconds.push_back(v.as_double());
  r.torch_median_seconds = median(torch_seconds);
  r.torch_rss_increase = torch.at("rss_increase").as_int();

  std::printf("teacher forward: %s\n", config.describe().c_str());
  std::printf(
      "batch %lld, 3x%lldx%lld, f32, %d threads; %d warm-up + %d timed forwards each; only the upsampled "
      "logits kept\n",
      static_cast<long long>(s.step.batch), static_cast<long long>(s.step.height), static_cast<long long>(s.step.width),
      s.step.threads, s.step.warmup, s.step.steps);
  std::printf("PyTorch %s: NCHW, %s, batch norm + in-place leaky ReLU, eval + no_grad, %lld parameters\n\n",
              torch.at("torch").as_string().c_str(), torch.at("mkldnn").as_bool() ? "oneDNN" : "native",
              static_cast<long long>(torch.at("parameters").as_int()));
  std::printf("%-26s %13s %13s %12s %16s %12s\n", "", "median", "mean", "peak RSS+ (1)", "allocator (2)",
              "weights (3)");
  auto above = [](const StepMeasurement& m) { return megabytes(m.allocator_peak - m.allocated_before); };
  print_row("strata folded", median(r.folded.seconds), mean(r.folded.seconds), r.folded.rss_increase, above(r.folded),
            megabytes(r.folded_weight_bytes));
  print_row("strata unfolded", median(r.unfolded.seconds), mean(r.unfolded.seconds), r.unfolded.rss_increase,
            above(r.unfolded), megabytes(r.unfolded_weight_bytes));
  print_row("PyTorch eval + no_grad", r.torch_median_seconds, mean(torch_seconds), r.torch_rss_increase, "", "");
  std::printf("CPU time per forward, median (4): folded %.1f ms, unfolded %.1f ms\n",
              median(r.folded.cpu_seconds) * 1e3, median(r.unfolded.cpu_seconds) * 1e3);

  const double folded_ms = median(r.folded.seconds) * 1e3, unfolded_ms = median(r.unfolded.seconds) * 1e3;
  const double torch_ms = r.torch_median_seconds * 1e3;
  auto ratio = [](int64_t a, int64_t b) { return static_cast<double>(a) / static_cast<double>(b); };
  std::printf(
      "\nfolded vs unfolded: %.2fx faster (target >= %g), time ratio %.2f, allocator peak ratio %.2f, "
      "RSS ratio %.2f\n",
      unfolded_ms / folded_ms, kTimeTarget, folded_ms / unfolded_ms,
      ratio(r.folded.allocator_peak - r.folded.allocated_before,
            r.unfolded.allocator_peak - r.unfolded.allocated_before),
      ratio(r.folded.rss_increase, r.unfolded.rss_increase));
  std::printf("folded vs PyTorch:  time ratio %.2f, RSS ratio %.2f\n", folded_ms / torch_ms,
              ratio(r.folded.rss_increase, r.torch_rss_increase));
  std::printf("unfolded vs PyTorch: time ratio %.2f, RSS ratio %.2f\n", unfolded_ms / torch_ms,
              ratio(r.unfolded.rss_increase, r.torch_rss_increase));
  std::printf(
      "(1) resident-set high-water mark during the forwards minus the resident set before the first, weights and\n"
      "    input already built, the same way for all three (bench_common.h).\n"
      "(2) strata's largest total of live tensors during the forwards above what was live before them\n"
      "    (activations, the returned logits, im2col scratch).\n"
      "(3) the weights the teacher holds: folded weights and biases, or the model's parameters and buffers.\n"
      "(4) user + system time of the process during a forward; strata's two forwards are timed interleaved.\n");
  for (const auto& [name, m] : {std::pair{"folded", &r.folded}, std::pair{"unfolded", &r.unfolded}}) {
    std::printf("\nstrata %s, per op (self time, %d profiled forwards; wall %.1f ms per forward)\n", name,
                s.step.profile_steps, m->profiled_seconds * 1e3 / s.step.profile_steps);
    std::fputs(profiler::format_report(m->ops, 8, s.step.profile_steps).c_str(), stdout);
  }
  return r;
}

int run_bench_teacher(const Args& args) {
  TeacherBenchSettings s;
  auto own = [&](CommandLine& options) {
    options.integer("--depth", "N", s.depth, 1);
    options.integer("--classes", "N", s.classes, 1);
  };
  if (!parse_step_args(args, s.step, kCommand, print_help, own)) return 0;
  print_teacher_bench(s);
  return 0;
}

}  // namespace strata::app
