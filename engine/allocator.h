// Memory. An Allocator hands out raw bytes for tensor storage on one device and keeps the counters
// every training log and benchmark reports: bytes currently allocated and the peak since the last
// reset (reserved bytes differ from allocated only for caching allocators).
//
// The CPU allocator returns 64-byte aligned blocks (one cache line; what AVX-512 loads want).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "engine/device.h"

namespace strata {

struct MemoryStats {
  int64_t allocated_bytes = 0;       // live tensor storage
  int64_t requested_bytes = 0;       // what the live allocations asked for (a caching allocator's blocks round up)
  int64_t peak_allocated_bytes = 0;  // maximum of allocated_bytes since the last reset_peak()
  int64_t reserved_bytes = 0;        // held from the system (>= allocated for caching allocators)
  int64_t peak_reserved_bytes = 0;
  int64_t allocations = 0;           // number of allocate() calls since construction
};

// Told of every allocation and deallocation with the bytes the allocator counts for it (what its
// allocated_bytes moves by: a caching allocator's whole block) and the bytes the caller asked for,
// after the counters moved. Called with the allocator's lock held where it
// has one: an observer must not allocate. engine/profiler.h's MemoryProfile is one.
class AllocationObserver {
 public:
  virtual ~AllocationObserver() = default;
  virtual void allocated(const void* ptr, int64_t bytes, int64_t requested) = 0;
  virtual void deallocated(const void* ptr, int64_t bytes, int64_t requested) = 0;
};

class Allocator {
 public:
  virtual ~Allocator() = default;
  // Throws strata::Error naming the size and the current statistics when memory is exhausted.
  virtual void* allocate(size_t bytes) = 0;
  virtual void deallocate(void* ptr, size_t bytes) = 0;
  virtual MemoryStats stats() const = 0;
  virtual void reset_peak() = 0;
  virtual Device device() const = 0;

  // At most one observer at a time; nullptr removes it. The caller keeps it alive while installed.
  void set_observer(AllocationObserver* observer) { observer_.store(observer); }
  AllocationObserver* observer() const { return observer_.load(); }

 protected:
  void notify_allocated(const void* ptr, int64_t bytes, int64_t requested) {
    if (AllocationObserver* o = observer_.load(std::memory_order_acquire)) o->allocated(ptr, bytes, requested);
  }
  void notify_deallocated(const void* ptr, int64_t bytes, int64_t requested) {
    if (AllocationObserver* o = observer_.load(std::memory_order_acquire)) o->deallocated(ptr, bytes, requested);
  }

 private:
  std::atomic<AllocationObserver*> observer_{nullptr};
};

class CpuAllocator final : public Allocator {
 public:
  static constexpr size_t kAlignment = 64;
  void* allocate(size_t bytes) override;
  void deallocate(void* ptr, size_t bytes) override;
  MemoryStats stats() const override;
  void reset_peak() override;
  Device device() const override { return Device::cpu(); }

 private:
  std::atomic<int64_t> allocated_{0};
  std::atomic<int64_t> peak_{0};
  std::atomic<int64_t> allocations_{0};
};

// The allocator of host memory. There is one host, so there is one; its counters are what
// memory_stats(Device::cpu()) reports.
Allocator& cpu_allocator();

// The allocator serving `device` (the CPU allocator, or the device context's caching allocator).
Allocator& allocator_for(const Device& device);

MemoryStats memory_stats(const Device& device = Device::cpu());
void reset_peak_memory(const Device& device = Device::cpu());
// Returns a device's cached unused memory to it (nothing to do for the CPU, which does not cache).
void empty_cache(const Device& device);

}  // namespace strata
