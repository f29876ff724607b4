// Scratch: temporary memory a kernel asks its caller for (partial sums of a reduction, an im2col
// buffer, a cuDNN workspace). Kernels know nothing of tensors or allocators, so the engine hands them
// this interface inside the backend argument (kernels/cpu/backend.h, kernels/cuda/backend.h) and
// backs it with tensors from the device's allocator (engine/ops/device_dispatch.h).
//
// Each call returns a new buffer of at least `bytes` bytes (nullptr for 0), uninitialised and aligned
// for any element type, on the backend's device. Buffers live until the engine's dispatch call that
// created the Scratch returns. Work a kernel queued on a CUDA stream may still use them after that:
// the caching allocator reuses a block only for later work of the same stream. Allocation failure
// throws the allocator's error (naming the device and the size).
#pragma once

#include <cstddef>
#include <cstdint>

namespace strata::kernels {

class Scratch {
 public:
  virtual ~Scratch() = default;
  virtual void* bytes(size_t bytes) = 0;

  // `count` values of V.
  template <class V>
  V* array(int64_t count) {
    return static_cast<V*>(bytes(static_cast<size_t>(count > 0 ? count : 0) * sizeof(V)));
  }
};

}  // namespace strata::kernels
