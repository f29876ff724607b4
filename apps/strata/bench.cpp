// `strata bench <name>`: benchmarks that run strata and PyTorch side by side in one run and print
// ratios (DESIGN.md: never a bare time).
#include <cstdio>

#include "apps/strata/commands.h"
#include "engine/error.h"

namespace strata::app {

int run_bench_ops(const Args& args);     // bench_ops.cpp
int run_bench_loader(const Args& args);  // bench_loader.cpp
int run_bench_model(const Args& args);   // bench_model.cpp
int run_bench_step(const Args& args);    // bench_step.cpp
int run_bench_distill(const Args& args);  // bench_distill.cpp
int run_bench_teacher(const Args& args);  // bench_teacher.cpp
int run_bench_pod(const Args& args);      // bench_pod.cpp
int run_bench_gpu(const Args& args);      // bench_gpu.cpp
int run_bench_coco(const Args& args);     // bench_coco.cpp
int run_bench_allreduce(const Args& args);  // bench_allreduce.cpp

const std::vector<Benchmark>& benchmarks() {
  static const std::vector<Benchmark> table = {
      {"ops", "conv2d forward+backward on ResNet-50 layer shapes vs PyTorch (CPU)", run_bench_ops},
      {"model", "a DeepLabV3-ResNet-50 training step vs PyTorch: time, memory, per-op profile (CPU)", run_bench_model},
      {"step", "an incremental training step (teacher, MiB losses, SGD), ResNet-50, vs PyTorch: time, memory (CPU)",
       run_bench_step},
      {"distill",
       "MiB's distillation losses fused vs unfused vs PyTorch at 512x512, C = 21 and 151: time, memory, bytes",
       run_bench_distill},
      {"teacher", "the frozen teacher's forward, folded vs unfolded vs PyTorch eval/no_grad: time, memory (CPU)",
       run_bench_teacher},
      {"pod", "PLOP's Local POD on the six maps of a 512x512 crop, forward+backward vs PyTorch (CPU)", run_bench_pod},
      {"loader", "training loader decode + augment images/s per thread vs PyTorch/torchvision", run_bench_loader},
      {"coco", "reading a COCO instances file and making its label maps vs pycocotools: time, peak memory",
       run_bench_coco},
      {"allreduce", "the data-parallel all-reduce's bus bandwidth, 1 KB to 256 MB on N processes, vs MPI_Allreduce",
       run_bench_allreduce},
      {"gpu",
       "the MiB step of DeepLabV3-R101 at 512x512 on a CUDA device per precision and batch: images/s, peak memory, "
       "roofline share, vs PyTorch f32/TF32/AMP",
       run_bench_gpu},
  };
  return table;
}

int run_bench(const Args& args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    std::printf("usage: strata bench <name> [options]\n\nbenchmarks:\n");
    for (const auto& b : benchmarks()) std::printf("  %-10s %s\n", b.name, b.summary);
    return args.empty() ? 2 : 0;
  }
  for (const auto& b : benchmarks()) {
    if (args[0] == b.name) return b.run(Args(args.begin() + 1, args.end()));
  }
  throw Error(cat("unknown benchmark '", args[0], "' (see `strata bench --help`)"));
}

}  // namespace strata::app
