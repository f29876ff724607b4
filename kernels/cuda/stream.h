// The stream a kernel runs on, and whether to synchronise after each launch (the context's debug
// switch). Host-compilable, so kernel wrapper declarations can take it.
#pragma once

#include <cuda_runtime.h>

namespace strata::kernels::cuda {

struct Stream {
  cudaStream_t handle = nullptr;
  bool sync_after_launch = false;
};

}  // namespace strata::kernels::cuda
