// `strata bench distill`: what MiB's distillation losses cost, three ways side by side in one run.
//
// MiB's step-t loss on the logits: unbiased cross-entropy + 10 x unbiased knowledge distillation
// (SPEC-continual.md §3.5), forward and backward, for a batch of low-resolution logits (the model's
// output stride) and the teacher's, against full-resolution labels, for each class count (VOC's 21
// with C_old 16, ADE20K's 151 with C_old 101 by default):
//   fused            engine/ops/fused_losses.h on the low-resolution logits (the trainer's default)
//   strata unfused   upsample_bilinear then incremental/losses.h's compositions (--unfused-losses)
//   PyTorch          F.interpolate then MiB's formulas (tools/bench_distill_torch.py)
// For each: time per step, the resident-set increase during the steps (measured the same way for
// both programs, bench_common.h), and the bytes it must move per image: its inputs read once plus
// every tensor it allocates written once and read once (strata: the allocator's allocations during
// one step; PyTorch: every op's own allocations in its profiler), with the memory-bound time that volume
// implies on an H100 (3.35 TB/s) and an A100 (2.0 TB/s). A lower bound on traffic, not a model of
// caches: it shows what a GPU would gain before there is one. The output ends with one line per
// class count, `C=<n> fused vs PyTorch: time ratio <x>, memory ratio <y>` (strata over PyTorch).
// Before those lines, unless --no-teacher: the teacher's forward, folded vs unfolded vs PyTorch
// eval/no_grad (apps/strata/bench_teacher.h), the other half of what distillation costs.
#include <cstdio>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "apps/strata/bench_common.h"
#include "apps/strata/bench_teacher.h"
#include "apps/strata/commands.h"
#include "apps/strata/python.h"
#include "engine/allocator.h"
#include "engine/json.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/fused_losses.h"
#include "engine/ops/reduce.h"
#include "engine/ops/softmax.h"
#include "engine/ops/upsample.h"
#include "incremental/losses.h"

namespace strata::app {

namespace {

constexpr const char* kCommand = "bench distill";
constexpr uint64_t kSeed = 42;
constexpr double kUnkdWeight = 10;            // MiB's lambda_kd on VOC 15-5 and ADE 100-50
constexpr double kH100BytesPerSecond = 3.35e12;
constexpr double kA100BytesPerSecond = 2.0e12;

struct Settings {
  StepBenchSettings step;
  int64_t low = 32;
  std::vector<int64_t> classes = {21, 151};
  bool teacher = true;             // also the teacher's forward (bench_teacher.h)
  int64_t teacher_size = 128;      // its input side: a ResNet-50 forward at 512 takes seconds on a CPU
};

// C_old for C classes: VOC 15-5's 16 of 21, ADE20K 100-50's 101 of 151, else three quarters.
int64_t old_classes(int64_t classes) {
  if (classes == 21) return 16;
  if (classes == 151) return 101;
  return std::max<int64_t>(1, classes - std::max<int64_t>(1, classes / 4));
}

// Sums the bytes of every allocation made while it is installed on the host allocator.
class AllocationVolume final : public AllocationObserver {
 public:
  AllocationVolume() { cpu_allocator().set_observer(this); }
  ~AllocationVolume() override { cpu_allocator().set_observer(nullptr); }
  AllocationVolume(const AllocationVolume&) = delete;
  AllocationVolume& operator=(const AllocationVolume&) = delete;
  void allocated(const void*, int64_t bytes, int64_t) override { total += bytes; }
  void deallocated(const void*, int64_t, int64_t) override {}
  int64_t total = 0;
};

struct WayResult {
  std::string name;
  double seconds = 0;           // median per step
  int64_t rss_increase = 0;     // bytes
  int64_t traffic_per_image = 0;  // bytes: inputs read once + allocations written and read once
  double first_loss = 0;
};

struct Inputs {
  Tensor logits, teacher, labels;  // (N,h,w,C) f32, (N,h,w,C_old) f32, (N,H,W) u8
};

Inputs random_inputs(const Settings& s, int64_t classes) {
  Generator g(kSeed);
  Inputs in;
  in.logits = scale(Tensor::randn({s.step.batch, s.low, s.low, classes}, g), 2.0);
  in.teacher = scale(Tensor::randn({s.step.batch, s.low, s.low, old_classes(classes)}, g), 2.0);
  std::mt19937 rng(kSeed);
  std::uniform_int_distribution<int> label(0, static_cast<int>(classes) - 1);
  std::uniform_real_distribution<double> unit(0, 1);
  in.labels = Tensor::empty({s.step.batch, s.step.height, s.step.width}, DType::u8);
  uint8_t* y = in.labels.data<uint8_t>();
  for (int64_t i = 0; i < in.labels.numel(); ++i) y[i] = static_cast<uint8_t>(unit(rng) < 0.05 ? 255 : label(rng));
  return in;
}

WayResult measure_way(const std::string& name, const Settings& s, const Inputs& in,
                      const std::function<Tensor(const Tensor& leaf)>& loss) {
  WayResult r;
  r.name = name;
  bool first = true;
  auto step = [&] {
    Tensor leaf = in.logits.detach();
    leaf.set_requires_grad(true);
    Tensor value = loss(leaf);
    value.backward();
    if (first) r.first_loss = value.item();
    first = false;
  };
  const StepMeasurement m = measure_steps(step, s.step.warmup, s.step.steps, s.step.profile_steps);
  r.seconds = median(m.seconds);
  r.rss_increase = m.rss_increase;
  int64_t allocated = 0;
  {
    AllocationVolume volume;
    step();
    allocated = volume.total;
  }
  const int64_t inputs = (in.logits.numel() + in.teacher.numel()) * 4 + in.labels.numel();
  r.traffic_per_image = (inputs + 2 * allocated) / s.step.batch;
  return r;
}

std::vector<WayResult> run_strata(const Settings& s, int64_t classes) {
  const Inputs in = random_inputs(s, classes);
  const int64_t c_old = old_classes(classes);
  FusedLossOptions options;
  options.old_channels = c_old;
  const std::vector<FusedLossTerm> mib = {{PixelLoss::unbiased_cross_entropy, 1.0, Reduction::mean_all},
                                          {PixelLoss::unbiased_knowledge_distillation, kUnkdWeight,
                                           Reduction::mean_all}};
  std::vector<WayResult> out;
  out.push_back(measure_way("fused", s, in, [&](const Tensor& leaf) {
    return sum(fused_losses(leaf, in.teacher, in.labels, mib, options));
  }));
  out.push_back(measure_way("strata unfused", s, in, [&](const Tensor& leaf) {
    const Tensor z = upsample_bilinear(leaf, s.step.height, s.step.width, false);
    const Tensor t = upsample_bilinear(in.teacher, s.step.height, s.step.width, false);
    const Tensor log_p = log_softmax(z);
    return add(incremental::unbiased_cross_entropy_from_log_probs(log_p, in.labels, c_old, Reduction::mean_all),
               scale(incremental::unbiased_knowledge_distillation_from_log_probs(log_p, t, Reduction::mean_all),
                     kUnkdWeight));
  }));
  return out;
}

void print_help() {
  std::printf(
      "usage: strata bench distill [options]\n\n"
      "MiB's distillation losses (unbiased CE + 10 x unbiased KD), forward and backward, three ways in one run:\n"
      "fused (low-resolution logits, the trainer's default), strata unfused (upsampled logits, --unfused-losses)\n"
      "and PyTorch (MiB's formulas on upsampled logits). Time, memory, bytes moved per image and the\n"
      "memory-bound time on an H100 and an A100, per class count.\n\n"
      "  --low N          side of the low-resolution logits (default 32: output stride 16 at 512)\n"
      "  --classes LIST   class counts, comma-separated (default 21,151: C_old 16 and 101)\n"
      "  --teacher-size N input side of the teacher-forward comparison (default 128)\n"
      "  --no-teacher     skip the teacher-forward comparison (folded vs unfolded vs PyTorch)\n"
      "%s",
      step_options_help().c_str());
}

std::vector<int64_t> parse_classes(const std::string& text) {
  std::vector<int64_t> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    try {
      size_t used = 0;
      const long long c = std::stoll(item, &used);
      if (used == item.size() && c >= 2 && c <= 255) {
        out.push_back(c);
        continue;
      }
    } catch (const std::exception&) {
    }
    throw Error(cat(kCommand, ": --classes '", text, "': expected class counts in [2, 255], comma-separated"));
  }
  check(!out.empty(), kCommand, ": --classes needs at least one class count");
  return out;
}

void print_case(int64_t classes, const std::vector<WayResult>& ways, double torch_seconds) {
  std::printf("\nC=%lld (C_old %lld, N_new %lld)\n", static_cast<long long>(classes),
              static_cast<long long>(old_classes(classes)), static_cast<long long>(classes - old_classes(classes)));
  std::printf("%-16s %12s %10s %14s %10s %16s %12s %12s\n", "", "time/step", "vs PyTorch", "memory (RSS+)",
              "vs PyTorch", "bytes/image", "H100 bound", "A100 bound");
  const WayResult& torch = ways.back();
  for (const WayResult& w : ways) {
    std::printf("%-16s %9.1f ms %10.2f %14s %10.3f %13.1f MB %9.3f ms %9.3f ms\n", w.name.c_str(), w.seconds * 1e3,
                w.seconds / torch_seconds, megabytes(w.rss_increase).c_str(),
                static_cast<double>(w.rss_increase) / static_cast<double>(torch.rss_increase),
                static_cast<double>(w.traffic_per_image) / (1024.0 * 1024.0),
                static_cast<double>(w.traffic_per_image) / kH100BytesPerSecond * 1e3,
                static_cast<double>(w.traffic_per_image) / kA100BytesPerSecond * 1e3);
  }
  std::printf("first loss: fused %.6g, strata unfused %.6g, PyTorch %.6g (same formula; own random inputs)\n",
              ways[0].first_loss, ways[1].first_loss, torch.first_loss);
}

}  // namespace

int run_bench_distill(const Args& args) {
  Settings s;
  s.step.height = s.step.width = 512;
  s.step.warmup = 1;
  s.step.steps = 5;
  s.step.profile_steps = 1;
  auto own = [&](CommandLine& options) {
    options.integer("--low", "N", s.low, 1);
    options.value("--classes", "C[,C...]", [&](const std::string& v) { s.classes = parse_classes(v); });
    options.flag("--no-teacher", [&] { s.teacher = false; });
    options.value("--teacher-size", "N", [&](const std::string& v) {
      int64_t width = 0;
      parse_size(v, "--teacher-size", s.teacher_size, width);
      check(s.teacher_size >= 16 && width == s.teacher_size, "--teacher-size '", v, "': expected one side >= 16");
    });
  };
  if (!parse_step_args(args, s.step, kCommand, print_help, own)) return 0;

  json::Array cases;
  for (int64_t c : s.classes) cases.emplace_back(json::Object{{"classes", c}, {"old_classes", old_classes(c)}});
  json::Object input = s.step.to_json();
  input.insert(input.end(), {{"low", s.low}, {"cases", cases}, {"seed", kSeed}});
  std::printf("Running the PyTorch side (tools/bench_distill_torch.py)...\n");
  std::fflush(stdout);
  const json::Value torch = run_python_json(s.step.python, "tools/bench_distill_torch.py", json::Value(input), {});
  std::printf("Running the strata side...\n");
  std::fflush(stdout);

  std::printf("\nMiB's unbiased CE + %g x unbiased KD, forward + backward: batch %lld, logits %lldx%lld -> %lldx%lld, "
              "f32, %d threads, median of %d steps after %d warm-up; PyTorch %s\n",
              kUnkdWeight, static_cast<long long>(s.step.batch), static_cast<long long>(s.low),
              static_cast<long long>(s.low), static_cast<long long>(s.step.height),
              static_cast<long long>(s.step.width), s.step.threads, s.step.steps, s.step.warmup,
              torch.at("torch").as_string().c_str());
  std::printf("memory: resident-set increase during the steps; bytes/image: inputs read once + every tensor "
              "allocated written once and read once (a lower bound on traffic); H100 3.35 TB/s, A100 2.0 TB/s\n");
  std::vector<std::string> summary;
  const json::Array& torch_cases = torch.at("cases").as_array();
  for (size_t i = 0; i < s.classes.size(); ++i) {
    const int64_t classes = s.classes[i];
    std::vector<WayResult> ways = run_strata(s, classes);
    const json::Value& t = torch_cases.at(i);
    WayResult theirs;
    theirs.name = "PyTorch";
    std::vector<double> seconds;
    for (const json::Value& v : t.at("seconds").as_array()) seconds.push_back(v.as_double());
    theirs.seconds = median(seconds);
    theirs.rss_increase = t.at("rss_increase").as_int();
    const int64_t torch_inputs = (s.step.batch * s.low * s.low * (classes + old_classes(classes))) * 4 +
                                 s.step.batch * s.step.height * s.step.width * 8;  // int64 labels
    theirs.traffic_per_image = (torch_inputs + 2 * t.at("allocated_bytes").as_int()) / s.step.batch;
    theirs.first_loss = t.at("first_loss").as_double();
    ways.push_back(theirs);
    print_case(classes, ways, theirs.seconds);
    char line[160];
    std::snprintf(line, sizeof line, "C=%lld fused vs PyTorch: time ratio %.3f, memory ratio %.3f",
                  static_cast<long long>(classes), ways[0].seconds / theirs.seconds,
                  static_cast<double>(ways[0].rss_increase) / static_cast<double>(theirs.rss_increase));
    summary.emplace_back(line);
  }
  if (s.teacher) {
    std::printf("\nThe teacher's forward (MiB's DeepLabV3-ResNet-50, %lld old classes), folded vs unfolded vs PyTorch:\n",
                static_cast<long long>(TeacherBenchSettings{}.classes));
    std::fflush(stdout);
    TeacherBenchSettings teacher;
    teacher.step = s.step;
    teacher.step.height = teacher.step.width = s.teacher_size;
    print_teacher_bench(teacher);
  }
  std::printf("\n");
  for (const std::string& line : summary) std::printf("%s\n", line.c_str());
  return 0;
}

}  // namespace strata::app
