// `strata bench ops`: conv2d forward + backward (data and filter gradients) on the layer shapes of
// a ResNet-50 DeepLabV3 at batch 2 and a 128x128 input (OS16: layer4 dilated, ASPP at 8x8), timed
// for strata and for PyTorch (tools/bench_ops_torch.py) in the same run with the same number of
// threads, printing per-shape times, the ratio strata/PyTorch, and the geometric mean ratio.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "apps/strata/bench_common.h"
#include "apps/strata/commands.h"
#include "apps/strata/python.h"
#include "engine/command_line.h"
#include "engine/json.h"
#include "engine/ops/conv2d.h"
#include "kernels/cpu/gemm.h"

namespace strata::app {

namespace {

struct ConvShape {
  const char* name;
  int64_t n, h, w, c, k, r, s, stride, pad, dilation;
};

// ResNet-50 at 128x128, batch 2: the stem, every distinct 1x1/3x3 of the four stages (first
// blocks carry the stride on the 3x3, as torchvision v1.5), the projection shortcuts, layer4
// dilated for output stride 16, and one ASPP branch (3x3, dilation 6, 2048 -> 256).
const std::vector<ConvShape> kShapes = {
    {"stem 7x7/2 3->64 @128", 2, 128, 128, 3, 64, 7, 7, 2, 3, 1},
    {"l1 1x1 64->64 @32", 2, 32, 32, 64, 64, 1, 1, 1, 0, 1},
    {"l1 3x3 64->64 @32", 2, 32, 32, 64, 64, 3, 3, 1, 1, 1},
    {"l1 1x1 64->256 @32", 2, 32, 32, 64, 256, 1, 1, 1, 0, 1},
    {"l1 1x1 256->64 @32", 2, 32, 32, 256, 64, 1, 1, 1, 0, 1},
    {"l2 3x3/2 128->128 @32", 2, 32, 32, 128, 128, 3, 3, 2, 1, 1},
    {"l2 1x1/2 256->512 @32", 2, 32, 32, 256, 512, 1, 1, 2, 0, 1},
    {"l2 3x3 128->128 @16", 2, 16, 16, 128, 128, 3, 3, 1, 1, 1},
    {"l3 3x3/2 256->256 @16", 2, 16, 16, 256, 256, 3, 3, 2, 1, 1},
    {"l3 3x3 256->256 @8", 2, 8, 8, 256, 256, 3, 3, 1, 1, 1},
    {"l3 1x1 1024->256 @8", 2, 8, 8, 1024, 256, 1, 1, 1, 0, 1},
    {"l4 3x3 d2 512->512 @8", 2, 8, 8, 512, 512, 3, 3, 1, 2, 2},
    {"l4 1x1 512->2048 @8", 2, 8, 8, 512, 2048, 1, 1, 1, 0, 1},
    {"aspp 3x3 d6 2048->256 @8", 2, 8, 8, 2048, 256, 3, 3, 1, 6, 6},
};

std::vector<double> time_strata(const ConvShape& sp) {
  Generator g(0);
  Tensor x = Tensor::randn({sp.n, sp.h, sp.w, sp.c}, g);
  Tensor w = Tensor::randn({sp.k, sp.r, sp.s, sp.c}, g);
  x.set_requires_grad(true);
  w.set_requires_grad(true);
  Conv2dParams params = Conv2dParams::same(sp.stride, sp.pad, sp.dilation);
  auto step = [&] {
    x.set_grad(Tensor());
    w.set_grad(Tensor());
    Tensor y = conv2d(x, w, Tensor(), params);
    y.backward(Tensor::ones(y.shape()));
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
      "usage: strata bench ops [--threads N] [--python PATH]\n\n"
      "Times conv2d forward+backward (data and filter gradients) on ResNet-50 DeepLabV3 layer shapes\n"
      "at batch 2, 128x128 input, for strata and for PyTorch in the same run, and prints the median\n"
      "time per shape, the ratio strata/PyTorch and the geometric mean ratio.\n\n"
      "  --threads N    threads for both (default: OpenMP's default, i.e. the cores)\n"
      "  --python PATH  interpreter with torch (default: %s)\n",
      default_python().c_str());
}

}  // namespace

int run_bench_ops(const Args& args) {
  int threads = omp_get_max_threads();
  std::string python = default_python();
  CommandLine options("bench ops");
  options.integer("--threads", "N", threads, 1);
  options.text("--python", "PATH", python);
  if (!options.parse(args)) {
    print_help();
    return 0;
  }
  omp_set_num_threads(threads);

  std::vector<std::vector<double>> ours;
  for (const ConvShape& sp : kShapes) ours.push_back(time_strata(sp));

  json::Array shape_list;
  for (const ConvShape& sp : kShapes) {
    shape_list.emplace_back(json::Object{{"name", sp.name}, {"n", sp.n}, {"h", sp.h}, {"w", sp.w}, {"c", sp.c},
                                         {"k", sp.k}, {"r", sp.r}, {"s", sp.s}, {"stride", sp.stride},
                                         {"pad", sp.pad}, {"dilation", sp.dilation}});
  }
  json::Value torch = run_python_json(python, "tools/bench_ops_torch.py", json::Value(shape_list),
                                      {std::to_string(threads)});

  std::printf("conv2d forward + backward (dx, dw), batch 2, f32, %d threads; median of repetitions\n", threads);
  std::printf("strata: im2col + OpenBLAS (OpenMP build: %s), NHWC | PyTorch %s: %s, NCHW\n",
              kernels::cpu::blas_uses_openmp() ? "yes" : "no", torch.at("torch").as_string().c_str(),
              torch.at("mkldnn").as_bool() ? "oneDNN" : "native");
  std::printf("\n%-28s %12s %12s %8s\n", "shape (input size)", "strata ms", "PyTorch ms", "ratio");
  double log_sum = 0, worst = 0;
  for (size_t i = 0; i < kShapes.size(); ++i) {
    std::vector<double> theirs;
    for (const json::Value& v : torch.at("results").at(kShapes[i].name).as_array()) theirs.push_back(v.as_double());
    double a = median(ours[i]) * 1e3, b = median(theirs) * 1e3, ratio = a / b;
    log_sum += std::log(ratio);
    worst = std::max(worst, ratio);
    std::printf("%-28s %12.3f %12.3f %8.2f\n", kShapes[i].name, a, b, ratio);
  }
  double geomean = std::exp(log_sum / static_cast<double>(kShapes.size()));
  std::printf("\ngeometric mean ratio strata/PyTorch: %.2f   worst: %.2f   (targets: each <= 1.5, mean <= 1.25)\n",
              geomean, worst);
  return 0;
}

}  // namespace strata::app
