// Device dispatch for ops (DESIGN.md: every op switches on its inputs' device, no registry). An op
// passes its CPU kernel call and, in builds with the CUDA backend, its CUDA kernel call:
//
//   dispatch("scale", x,
//            [&](auto tag) { using T = decltype(tag); kernels::cpu::scale_cpu<T>(...); }
//   #if defined(STRATA_HAVE_CUDA)
//            , [&](auto tag, const kernels::cuda::Stream& stream) { ...scale_cuda<T>(..., stream); }
//   #endif
//   );
//
// Both calls get T = float or double: every CUDA kernel computes f32 and f64 (f64 lets a whole CUDA
// training step be compared with the CPU's without float32 rounding in the way); other dtypes (bf16,
// f16) are refused with the op's name. An op that passes no CUDA call refuses CUDA tensors with "no CUDA implementation yet":
// there is no silent CPU fallback.
#pragma once

#include <utility>

#include "engine/dispatch.h"
#include "engine/error.h"
#include "engine/tensor.h"

#if defined(STRATA_HAVE_CUDA)
#include "engine/cuda/context.h"
#include "kernels/cuda/stream.h"
#endif

namespace strata {

#if defined(STRATA_HAVE_CUDA)
inline const kernels::cuda::Stream& cuda_stream(const Tensor& t) { return cuda_context(t.device()).stream(); }

template <class F>
decltype(auto) visit_cuda_floating(const char* op, DType dtype, F&& f) {
  if (dtype == DType::f32) return f(float{});
  if (dtype == DType::f64) return f(double{});
  throw Error(cat(op, ": CUDA kernels compute in f32 or f64, got ", dtype_name(dtype)));
}

template <class Cpu, class Cuda>
void dispatch(const char* op, const Tensor& x, Cpu&& cpu, Cuda&& cuda) {
  if (x.device().is_cpu()) {
    visit_floating(op, x.dtype(), std::forward<Cpu>(cpu));
    return;
  }
  const kernels::cuda::Stream& stream = cuda_stream(x);
  visit_cuda_floating(op, x.dtype(), [&](auto tag) { cuda(tag, stream); });
}
#endif

// An op (or a build) without a CUDA kernel for it.
template <class Cpu>
void dispatch(const char* op, const Tensor& x, Cpu&& cpu) {
  check_cpu(op, x);
  visit_floating(op, x.dtype(), std::forward<Cpu>(cpu));
}

}  // namespace strata
