// The frozen teacher's forward (incremental/teacher.h) three ways in one run, on the CPU: strata's
// folded teacher (the default), strata's unfolded one (the model's eval forward under no-grad) and
// PyTorch's eval + no_grad forward of the same architecture (tools/bench_teacher_torch.py). Used by
// `strata bench teacher` and by `strata bench distill`, which prints it next to the losses.
#pragma once

#include <cstdint>

#include "apps/strata/bench_common.h"

namespace strata::app {

struct TeacherBenchSettings {
  StepBenchSettings step;  // batch 2, 128x128 by default; "steps" are forwards here
  int depth = 50;          // MiB's DeepLabV3-ResNet-<depth>, In-place ABN, output stride 16
  int64_t classes = 16;    // the teacher's channels (VOC 15-5 step 1's old classes)
};

struct TeacherBenchResult {
  StepMeasurement folded, unfolded;
  double torch_median_seconds = 0;
  int64_t torch_rss_increase = 0;
  int64_t folded_weight_bytes = 0, unfolded_weight_bytes = 0;
};

// Runs the three forwards (PyTorch first, as the other benchmarks do), prints one table of times
// (median, mean), peak memory (resident-set increase for all three; strata's allocator peak above
// the weights and the input) and the ratios, and returns the measurements. Throws when the Python
// side fails (naming its command and output).
TeacherBenchResult print_teacher_bench(const TeacherBenchSettings& settings);

}  // namespace strata::app
