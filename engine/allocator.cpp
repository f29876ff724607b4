#include "engine/allocator.h"

#include <cstdlib>
#include <new>

#include "engine/device_context.h"
#include "engine/error.h"

namespace strata {

void* CpuAllocator::allocate(size_t bytes) {
  // aligned_alloc needs a size that is a multiple of the alignment; zero-size tensors still get a
  // unique valid pointer.
  size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
  if (rounded == 0) rounded = kAlignment;
  void* ptr = std::aligned_alloc(kAlignment, rounded);
  if (ptr == nullptr) {
    throw OutOfMemoryError(cat("cpu allocator: out of memory allocating ", bytes, " bytes (", allocated_.load(),
                               " bytes allocated, peak ", peak_.load(), ")"));
  }
  int64_t now = allocated_.fetch_add(static_cast<int64_t>(bytes)) + static_cast<int64_t>(bytes);
  int64_t peak = peak_.load();
  while (now > peak && !peak_.compare_exchange_weak(peak, now)) {
  }
  allocations_.fetch_add(1);
  notify_allocated(ptr, static_cast<int64_t>(bytes), static_cast<int64_t>(bytes));
  return ptr;
}

void CpuAllocator::deallocate(void* ptr, size_t bytes) {
  // Told before the address can be handed out again.
  allocated_.fetch_sub(static_cast<int64_t>(bytes));
  notify_deallocated(ptr, static_cast<int64_t>(bytes), static_cast<int64_t>(bytes));
  std::free(ptr);
}

MemoryStats CpuAllocator::stats() const {
  MemoryStats s;
  s.allocated_bytes = s.requested_bytes = allocated_.load();
  s.peak_allocated_bytes = peak_.load();
  s.reserved_bytes = s.allocated_bytes;
  s.peak_reserved_bytes = s.peak_allocated_bytes;
  s.allocations = allocations_.load();
  return s;
}

void CpuAllocator::reset_peak() { peak_.store(allocated_.load()); }

Allocator& cpu_allocator() {
  static CpuAllocator allocator;
  return allocator;
}

Allocator& allocator_for(const Device& device) {
  if (device.is_cpu()) return cpu_allocator();
  check(device.context != nullptr, "no allocator for ", device.str(),
        ": a CUDA device must come from open_cuda_device()");
  return device.context->allocator();
}

MemoryStats memory_stats(const Device& device) { return allocator_for(device).stats(); }

void reset_peak_memory(const Device& device) { allocator_for(device).reset_peak(); }

void empty_cache(const Device& device) {
  if (device.is_cpu()) return;
  check(device.context != nullptr, "empty_cache(", device.str(), "): a CUDA device must come from open_cuda_device()");
  device.context->empty_cache();
}

}  // namespace strata
