#include "engine/cuda/direct_allocator.h"

#include <cuda_runtime.h>

#include "engine/error.h"
#include "kernels/cuda/check.h"

namespace strata {

DirectDeviceAllocator::DirectDeviceAllocator(Device device) : device_(std::move(device)) {}

void* DirectDeviceAllocator::allocate(size_t bytes) {
  void* ptr = nullptr;
  STRATA_CUDA_CHECK(cudaSetDevice(device_.index));
  cudaError_t status = cudaMalloc(&ptr, bytes == 0 ? 1 : bytes);
  if (status == cudaErrorMemoryAllocation) {
    cudaGetLastError();  // clear the sticky-less last error, as the next call must not see it
    throw OutOfMemoryError(cat("out of memory on ", device_.str(), " allocating ", bytes, " bytes (", allocated_.load(),
                               " bytes held by tensors, peak ", peak_.load(),
                               "; caching disabled by STRATA_CUDA_NO_CACHING)"));
  }
  STRATA_CUDA_CHECK(status);
  int64_t now = allocated_.fetch_add(static_cast<int64_t>(bytes)) + static_cast<int64_t>(bytes);
  int64_t peak = peak_.load();
  while (now > peak && !peak_.compare_exchange_weak(peak, now)) {
  }
  allocations_.fetch_add(1);
  notify_allocated(ptr, static_cast<int64_t>(bytes), static_cast<int64_t>(bytes));
  return ptr;
}

void DirectDeviceAllocator::deallocate(void* ptr, size_t bytes) {
  // Told before the address can be handed out again.
  allocated_.fetch_sub(static_cast<int64_t>(bytes));
  notify_deallocated(ptr, static_cast<int64_t>(bytes), static_cast<int64_t>(bytes));
  STRATA_CUDA_CHECK(cudaFree(ptr));
}

MemoryStats DirectDeviceAllocator::stats() const {
  MemoryStats s;
  s.allocated_bytes = s.requested_bytes = allocated_.load();
  s.peak_allocated_bytes = peak_.load();
  s.reserved_bytes = s.allocated_bytes;
  s.peak_reserved_bytes = s.peak_allocated_bytes;
  s.allocations = allocations_.load();
  return s;
}

void DirectDeviceAllocator::reset_peak() { peak_.store(allocated_.load()); }

}  // namespace strata
