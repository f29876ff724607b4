// Pinned (page-locked) host buffers that stage host-to-device copies.
//
// Why: a device cannot DMA from pageable memory. Given a pageable source, cudaMemcpyAsync first
// copies it into the driver's own pinned memory and may synchronise the stream to do so. Staging
// the bytes in a pinned buffer of our own turns the host side into one memcpy and the device side
// into a truly asynchronous copy: the host returns at once, and the buffer is reused only after the
// copy reading it has completed. This is the policy of PyTorch's pinned host allocator
// (CachingHostAllocator, what `pin_memory=True` uses), written anew:
//
//   - a request of b bytes gets a buffer of the next power of two >= max(b, kMinBufferSize), so a
//     buffer serves every later request of its class: batches of one shape reuse two or three
//     buffers for a whole training run;
//   - release_after(buffer, stream) records an event on `stream` behind the copy that reads the
//     buffer; the buffer is free again once that event has completed (polled at every acquire);
//   - acquire takes the free buffer of its class that was released first, else allocates one;
//   - when a new buffer would take the pinned bytes held above `limit_bytes` (page-locked memory is
//     taken from the whole machine), acquire first waits for the pending events and returns the free
//     buffers to the system; a single request above the limit still gets its buffer;
//   - empty_cache() waits for the pending events and returns every free buffer to the system.
//
// The policy is pure C++ over PinnedMemory and StreamEvents (engine/caching_allocator.h), so it is
// tested on the CPU against fakes; engine/cuda/device_memory.h implements PinnedMemory with
// cudaHostAlloc/cudaFreeHost. Thread-safe (one mutex). Misuse (releasing a pointer that is not an
// acquired buffer, or releasing it twice) throws strata::Error naming the pointer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>

#include "engine/caching_allocator.h"

namespace strata {

// Page-locked host memory.
class PinnedMemory {
 public:
  virtual ~PinnedMemory() = default;
  // Throws strata::Error naming the size when the system refuses.
  virtual void* allocate(size_t bytes) = 0;
  virtual void free(void* ptr) = 0;
};

struct PinnedStagingStats {
  int64_t reserved_bytes = 0;  // pinned bytes held (buffers of every state)
  int64_t peak_reserved_bytes = 0;
  int64_t in_use_bytes = 0;    // acquired and not yet released
  int64_t pending_bytes = 0;   // released, waiting for their copy to complete
  int64_t buffers = 0;         // buffers held
  int64_t acquisitions = 0;    // acquire calls
  int64_t reuses = 0;          // acquisitions served by a held buffer
  int64_t host_allocations = 0;
  int64_t host_frees = 0;
};

class PinnedStagingPool {
 public:
  static constexpr size_t kMinBufferSize = size_t{64} << 10;
  static constexpr size_t kDefaultLimit = size_t{256} << 20;

  // `events` must outlive the pool.
  PinnedStagingPool(std::unique_ptr<PinnedMemory> memory, StreamEvents& events, size_t limit_bytes = kDefaultLimit);
  // Waits for the pending copies and frees every buffer. Errors are dropped (a destructor cannot
  // report them).
  ~PinnedStagingPool();
  PinnedStagingPool(const PinnedStagingPool&) = delete;
  PinnedStagingPool& operator=(const PinnedStagingPool&) = delete;

  // A pinned buffer of at least `bytes` that no queued copy reads; never nullptr.
  void* acquire(size_t bytes);
  // `buffer` (from acquire) has been handed to work queued on `stream`; it is reused once that work
  // has completed.
  void release_after(void* buffer, StreamId stream);
  void empty_cache();
  PinnedStagingStats stats() const;

  static size_t buffer_size(size_t bytes);

 private:
  struct Pending {
    uint64_t event = 0;
    void* buffer = nullptr;
  };

  void complete(const Pending& done);  // requires mutex_; the buffer becomes free
  void process_events();          // requires mutex_
  void wait_for_pending_events();  // requires mutex_
  void free_idle_buffers();       // requires mutex_

  std::unique_ptr<PinnedMemory> memory_;
  StreamEvents& events_;
  size_t limit_bytes_;
  mutable std::mutex mutex_;
  std::map<void*, size_t> sizes_;                // every held buffer -> its size
  std::set<void*> in_use_;                       // acquired, not yet released
  std::deque<Pending> pending_;                  // released, in release order
  std::map<size_t, std::deque<void*>> idle_;     // free buffers by size, in the order they became free
  PinnedStagingStats stats_;
};

}  // namespace strata
