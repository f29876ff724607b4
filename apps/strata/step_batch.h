// The random batch the step measurements (`strata profile`, `strata bench step|gpu`, `strata
// summary --memory`) train on: u8 images (N,H,W,3) and labels (N,H,W) in [0, classes) with 5%
// ignored (255), on the CPU, the same for the same arguments (seed 42).
#pragma once

#include <cstdint>

#include "engine/tensor.h"

namespace strata::app {

void random_step_batch(int64_t batch, int64_t height, int64_t width, int classes, Tensor& images, Tensor& labels);

}  // namespace strata::app
