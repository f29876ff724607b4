// `strata bench pod`: PLOP's Local POD (incremental::local_pod, forward + backward to the student) on
// the six maps PLOP distils for a 512x512 crop of DeepLabV3-ResNet-101 at output stride 16 (stages 2-5
// before their last activation, the head, the small logits of VOC 15-1's step 1 with the student's new
// channel folded into background), timed for strata and for PyTorch (tools/bench_pod_torch.py, PLOP's
// slicing formulation) in the same run with the same threads: per map and all six in one loss, the
// median time and the ratio strata/PyTorch.
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "apps/strata/bench_common.h"
#include "apps/strata/commands.h"
#include "apps/strata/python.h"
#include "engine/command_line.h"
#include "engine/json.h"
#include "incremental/losses.h"

namespace strata::app {

namespace {

struct PodMap {
  const char* name;
  int64_t h, w, teacher_channels, student_channels;
  double factor;
};

// VOC 15-1, step 1: 16 old channels, 17 in the student (SPEC §3.7 (b): factors 0.01 and 0.0005).
const std::vector<PodMap> kMaps = {
    {"stage 2 128x128x256", 128, 128, 256, 256, 0.01}, {"stage 3 64x64x512", 64, 64, 512, 512, 0.01},
    {"stage 4 32x32x1024", 32, 32, 1024, 1024, 0.01},  {"stage 5 32x32x2048", 32, 32, 2048, 2048, 0.01},
    {"head 32x32x256", 32, 32, 256, 256, 0.01},        {"logits 32x32x16 (17)", 32, 32, 16, 17, 0.0005},
};
constexpr int64_t kTotalClasses = 17, kNewClasses = 1;

std::vector<double> time_strata(const std::vector<PodMap>& maps, int64_t batch) {
  Generator g(0);
  std::vector<Tensor> teachers, students;
  std::vector<double> factors;
  for (const PodMap& m : maps) {
    teachers.push_back(Tensor::randn({batch, m.h, m.w, m.teacher_channels}, g));
    students.push_back(Tensor::randn({batch, m.h, m.w, m.student_channels}, g));
    students.back().set_requires_grad(true);
    factors.push_back(m.factor);
  }
  const double schedule = incremental::pod_schedule_factor(kTotalClasses, kNewClasses);
  auto step = [&] {
    for (Tensor& s : students) s.set_grad(Tensor());
    incremental::local_pod(teachers, students, factors, schedule).backward();
  };
  for (int i = 0; i < 2; ++i) step();
  std::vector<double> times;
  auto start = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  while (times.size() < 30 && (elapsed() < 0.5 || times.size() < 3)) {
    auto t0 = std::chrono::steady_clock::now();
    step();
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return times;
}

void print_help() {
  std::printf(
      "usage: strata bench pod [--batch N] [--threads N] [--python PATH]\n\n"
      "Times PLOP's Local POD forward + backward (to the student) on the six maps of a 512x512 crop\n"
      "(DeepLabV3-ResNet-101, output stride 16, VOC 15-1 step 1), per map and all six in one loss, for\n"
      "strata and for PyTorch in the same run, and prints the median times and the ratio strata/PyTorch.\n\n"
      "  --batch N      samples per map (default 1)\n"
      "  --threads N    threads for both (default: OpenMP's default, i.e. the cores)\n"
      "  --python PATH  interpreter with torch (default: %s)\n",
      default_python().c_str());
}

}  // namespace

int run_bench_pod(const Args& args) {
  int threads = omp_get_max_threads();
  int64_t batch = 1;
  std::string python = default_python();
  CommandLine options("bench pod");
  options.integer("--threads", "N", threads, 1);
  options.integer("--batch", "N", batch, 1);
  options.text("--python", "PATH", python);
  if (!options.parse(args)) {
    print_help();
    return 0;
  }
  omp_set_num_threads(threads);

  std::vector<std::vector<double>> ours;
  for (const PodMap& m : kMaps) ours.push_back(time_strata({m}, batch));
  ours.push_back(time_strata(kMaps, batch));

  json::Array map_list;
  for (const PodMap& m : kMaps) {
    map_list.emplace_back(json::Object{{"name", m.name},
                                       {"h", m.h},
                                       {"w", m.w},
                                       {"teacher_channels", m.teacher_channels},
                                       {"student_channels", m.student_channels},
                                       {"factor", m.factor}});
  }
  const double schedule = incremental::pod_schedule_factor(kTotalClasses, kNewClasses);
  json::Value torch = run_python_json(
      python, "tools/bench_pod_torch.py",
      json::Value(json::Object{{"batch", batch}, {"schedule", schedule}, {"maps", json::Value(map_list)}}),
      {std::to_string(threads)});

  std::printf("Local POD forward + backward, batch %lld, f32, %d threads; median of repetitions\n",
              static_cast<long long>(batch), threads);
  std::printf("strata: NHWC, one pass per map | PyTorch %s: NCHW, PLOP's slices\n",
              torch.at("torch").as_string().c_str());
  std::printf("\n%-24s %12s %12s %8s\n", "map", "strata ms", "PyTorch ms", "ratio");
  for (size_t i = 0; i <= kMaps.size(); ++i) {
    const std::string name = i < kMaps.size() ? kMaps[i].name : "all";
    std::vector<double> theirs;
    for (const json::Value& v : torch.at("results").at(name).as_array()) theirs.push_back(v.as_double());
    const double a = median(ours[i]) * 1e3, b = median(theirs) * 1e3;
    std::printf("%-24s %12.3f %12.3f %8.2f\n", i < kMaps.size() ? name.c_str() : "all six (one loss)", a, b, a / b);
  }
  return 0;
}

}  // namespace strata::app
