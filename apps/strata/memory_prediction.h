// The peak memory of a training step at a size too large to run here (`strata summary --memory`),
// from the step's allocations measured at two small probe sizes.
//
// A step allocates and frees the same tensors in the same order whatever its batch and crop (the
// same ops run); only their sizes change, and each size is affine in the step's pixel count
// s = batch x crop^2 (NHWC maps at fixed output strides, constant weights and per-channel vectors).
// So the allocator's trace of one iteration is recorded at two probes (batch 2 at crops 64 and 96),
// each allocation's size is extended to the target's s, the trace is replayed, and its largest live
// total is the predicted peak, with what is live at that moment by row (the phase that allocated it,
// the gradients, and what was held before the iteration: weights, teacher weights, optimizer state).
// The peak's moment moves with the size (at the probes the workspace of backward may dominate, at
// 512x512 the saved activations do), which is why the whole trace is extended rather than the
// probes' peaks. Not affine, hence approximate: per-image tensors (pooled features) and the workspace
// of a cuDNN algorithm chosen per shape. tests/apps holds it to a measured peak within 10% on the
// CUDA backend (emulated in CI; on the small model +1.7% at batch 4 x 224x224 and +4.4% at 4 x
// 192x192, the test's size). CUDA only: the CPU's im2col workspace comes in chunks of a fixed budget
// (kernels/cpu/conv2d.cpp), not affine in the batch, and the extension overshoots it (measured +17%
// at batch 8 x 256x256).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "apps/strata/profile.h"

namespace strata::app {

struct MemoryPrediction {
  struct Row {
    std::string name;
    int64_t probe[2] = {0, 0};  // live at each probe's peak
    int64_t predicted = 0;      // live at the predicted peak
  };
  int64_t probe_batch = 2;
  int64_t probe_crop[2] = {64, 96};
  int64_t probe_peak[2] = {0, 0};  // the largest live total of each probe's iteration
  int64_t allocations = 0;         // allocations and frees of one iteration
  std::vector<Row> rows;
  int64_t predicted_peak = 0;  // the rows' sum
};

// The step of settings (its method with its overrides, architecture, backbone, task, step, device)
// at settings.batch x settings.crop^2, predicted from the probes (each after settings.warmup
// iterations). Throws when the probes' traces differ in anything but sizes.
MemoryPrediction predict_peak_memory(const ProfileSettings& settings);

// The table: each row at the probes' peaks and at the predicted one, then the totals.
std::string format_memory_prediction(const ProfileSettings& settings, const MemoryPrediction& prediction);

}  // namespace strata::app
