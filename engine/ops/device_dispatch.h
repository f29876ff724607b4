// Device dispatch for ops (DESIGN.md: every op switches on its inputs' device, no registry). An op
// writes each kernel call once, in one generic body that receives the element type and the backend:
//
//   dispatch("scale", x, [&](auto tag, const auto& backend) {
//     using T = decltype(tag);
//     scale(y.data<T>(), xc.data<T>(), static_cast<T>(s), x.numel(), backend);
//   });
//
// `backend` is kernels::cpu::Backend for a CPU tensor and kernels::cuda::Backend for a CUDA tensor
// (whose float math follows the device's precision for the ops engine/precision.h lists by `op`)
// (kernels/cpu/backend.h, kernels/cuda/backend.h). Both backends name a kernel alike and take the
// backend last, so the unqualified call above is kernels::cpu::scale or kernels::cuda::scale,
// picked by C++'s argument-dependent lookup from the backend's type. The body runs with T = float
// or double: every kernel computes f32 and f64 (f64 lets a whole CUDA training step be compared with
// the CPU's without float32 rounding in the way); other dtypes are refused naming the op.
// on_backend() is the same without the element type, for ops whose kernels fix their own types
// (normalize_image reads u8 and writes f32). dispatch_cpu is the form of an op whose CUDA kernel is
// not written yet.
//
// The backend carries scratch memory (kernels/common/scratch.h) backed by tensors on x's device and
// released when dispatch returns. Where the backends really differ, the body asks
// `if constexpr (is_cuda<decltype(backend)>)`.
//
// An op's file includes its kernels of both backends (kernels/cpu/<op>.h, kernels/cuda/<op>.h:
// plain declarations, includable by any build); the CUDA body is compiled only in builds with the
// CUDA backend (STRATA_HAVE_CUDA), so a CPU-only build never needs their definitions.
#pragma once

#include <type_traits>
#include <utility>
#include <vector>

#include "engine/dispatch.h"
#include "engine/error.h"
#include "engine/profiler.h"
#include "engine/tensor.h"
#include "kernels/common/scratch.h"
#include "kernels/cpu/backend.h"
#include "kernels/cuda/backend.h"

#if defined(STRATA_HAVE_CUDA)
#include "engine/cuda/context.h"
#endif

namespace strata {

template <class Backend>
inline constexpr bool is_cuda = std::is_same_v<std::decay_t<Backend>, kernels::cuda::Backend>;

// Scratch memory of one dispatch: u8 tensors on its device, released with it.
class TensorScratch final : public kernels::Scratch {
 public:
  explicit TensorScratch(Device device) : device_(std::move(device)) {}
  void* bytes(size_t n) override {
    if (n == 0) return nullptr;
    // A memory profile's "workspace" row, whichever op or phase asks.
    profiler::MemoryTag tag("workspace");
    buffers_.push_back(Tensor::empty({static_cast<int64_t>(n)}, DType::u8, device_));
    return buffers_.back().raw_data();
  }

 private:
  Device device_;
  std::vector<Tensor> buffers_;
};

// body(backend) with the backend of x's device.
template <class Body>
void on_backend([[maybe_unused]] const char* op, const Tensor& x, Body&& body) {
  TensorScratch scratch(x.device());
  if (x.device().is_cpu()) {
    const kernels::cpu::Backend backend{&scratch};
    body(backend);
    return;
  }
#if defined(STRATA_HAVE_CUDA)
  const kernels::cuda::Backend backend = cuda_context(x.device()).kernel_backend(&scratch, op);
  body(backend);
#else
  throw Error(cat(op, ": ", x.describe(), " is on ", x.device().str(), " but this build has no CUDA backend"));
#endif
}

namespace detail {

// body(T{}, backend) with T = float or double from `dtype`; other dtypes are refused naming the op.
template <class Backend, class Body>
void with_floating_type(const char* op, DType dtype, const Backend& backend, Body& body) {
  switch (dtype) {
    case DType::f32: body(float{}, backend); return;
    case DType::f64: body(double{}, backend); return;
    default: break;
  }
  throw Error(cat(op, ": ", is_cuda<Backend> ? "CUDA" : "CPU", " kernels compute in f32 or f64, got ",
                  dtype_name(dtype)));
}

}  // namespace detail

// body(T{}, backend) with T = float or double from x's dtype and the backend of x's device.
template <class Body>
void dispatch(const char* op, const Tensor& x, Body&& body) {
  on_backend(op, x, [&](const auto& backend) { detail::with_floating_type(op, x.dtype(), backend, body); });
}

// dispatch for the tensor-math ops (engine/precision.h's kTensorMathOps: convolutions and GEMMs),
// whose CUDA kernels also compute bf16 tensors (T = bf16: bf16 operands, f32 accumulation, bf16
// output; --precision bf16). The CPU's kernels compute f32 and f64 only, so a CPU bf16 tensor is
// refused naming the op, as dispatch refuses it.
template <class Body>
void dispatch_tensor_math(const char* op, const Tensor& x, Body&& body) {
  on_backend(op, x, [&](const auto& backend) {
    if constexpr (is_cuda<decltype(backend)>) {
      if (x.dtype() == DType::bf16) {
        body(bf16{}, backend);
        return;
      }
    }
    detail::with_floating_type(op, x.dtype(), backend, body);
  });
}

// An op whose CUDA kernel is not written yet (how a new op starts, docs/ARCHITECTURE.md): the body
// runs for CPU tensors only; a CUDA tensor is refused with "no CUDA implementation yet", never
// silently computed on the CPU.
template <class Body>
void dispatch_cpu(const char* op, const Tensor& x, Body&& body) {
  check_cpu(op, x);
  on_backend(op, x, [&](const auto& backend) {
    if constexpr (!is_cuda<decltype(backend)>) detail::with_floating_type(op, x.dtype(), backend, body);
  });
}

}  // namespace strata
