// The CPU backend as a kernel sees it: every CPU kernel takes a `const Backend&` as its last
// argument, as every CUDA kernel takes kernels::cuda::Backend (kernels/cuda/backend.h). The two
// backends' kernels of one operation therefore have the same name and the same arguments, and an op
// calls them from one body: engine/ops/device_dispatch.h hands the body the backend of its inputs'
// device, and C++'s argument-dependent lookup picks kernels::cpu::f or kernels::cuda::f from the
// backend argument's type.
//
// The CPU backend carries only scratch memory (kernels/common/scratch.h) from the host allocator;
// threads come from OpenMP (kernels/cpu/parallel.h).
#pragma once

#include "kernels/common/scratch.h"

namespace strata::kernels::cpu {

struct Backend {
  Scratch* scratch = nullptr;
};

}  // namespace strata::kernels::cpu
