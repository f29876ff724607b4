// A non-caching device allocator: every tensor gets its own cudaMalloc and cudaFree. Slower than
// the caching allocator, but each tensor is then a separate guarded allocation, so the emulator's
// guard zones and AddressSanitizer catch an out-of-bounds write at the tensor it hits instead of
// somewhere inside a cached segment. Selected with STRATA_CUDA_NO_CACHING=1 (like PyTorch's
// PYTORCH_NO_CUDA_MEMORY_CACHING).
#pragma once

#include <atomic>

#include "engine/allocator.h"

namespace strata {

class DirectDeviceAllocator final : public Allocator {
 public:
  explicit DirectDeviceAllocator(Device device);
  void* allocate(size_t bytes) override;
  void deallocate(void* ptr, size_t bytes) override;
  MemoryStats stats() const override;
  void reset_peak() override;
  Device device() const override { return device_; }

 private:
  Device device_;
  std::atomic<int64_t> allocated_{0};
  std::atomic<int64_t> peak_{0};
  std::atomic<int64_t> allocations_{0};
};

}  // namespace strata
