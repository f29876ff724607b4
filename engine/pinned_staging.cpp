#include "engine/pinned_staging.h"

#include <bit>

#include "engine/error.h"

namespace strata {

PinnedStagingPool::PinnedStagingPool(std::unique_ptr<PinnedMemory> memory, StreamEvents& events, size_t limit_bytes)
    : memory_(std::move(memory)), events_(events), limit_bytes_(limit_bytes) {
  check(memory_ != nullptr, "PinnedStagingPool: needs pinned memory to draw from");
}

PinnedStagingPool::~PinnedStagingPool() {
  try {
    std::lock_guard<std::mutex> lock(mutex_);
    wait_for_pending_events();
  } catch (...) {
    // The device may already be gone (a failed context): the buffers are still freed below.
  }
  for (const auto& [buffer, size] : sizes_) {
    try {
      memory_->free(buffer);
    } catch (...) {
    }
  }
}

size_t PinnedStagingPool::buffer_size(size_t bytes) {
  return std::bit_ceil(std::max(bytes, kMinBufferSize));
}

void* PinnedStagingPool::acquire(size_t bytes) {
  const size_t size = buffer_size(bytes);
  std::lock_guard<std::mutex> lock(mutex_);
  ++stats_.acquisitions;
  process_events();
  auto take_idle = [&]() -> void* {
    auto it = idle_.find(size);
    if (it == idle_.end() || it->second.empty()) return nullptr;
    void* buffer = it->second.front();
    it->second.pop_front();
    return buffer;
  };
  void* buffer = take_idle();
  if (buffer == nullptr && static_cast<size_t>(stats_.reserved_bytes) + size > limit_bytes_) {
    // Over the limit: the buffers still read by queued copies become free once those copies are
    // done; one of them may be of this class, and the rest go back to the system.
    wait_for_pending_events();
    buffer = take_idle();
    if (buffer == nullptr) free_idle_buffers();
  }
  if (buffer != nullptr) {
    ++stats_.reuses;
  } else {
    buffer = memory_->allocate(size);
    sizes_.emplace(buffer, size);
    ++stats_.host_allocations;
    ++stats_.buffers;
    stats_.reserved_bytes += static_cast<int64_t>(size);
    stats_.peak_reserved_bytes = std::max(stats_.peak_reserved_bytes, stats_.reserved_bytes);
  }
  in_use_.insert(buffer);
  stats_.in_use_bytes += static_cast<int64_t>(size);
  return buffer;
}

void PinnedStagingPool::release_after(void* buffer, StreamId stream) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = in_use_.find(buffer);
  if (it == in_use_.end()) {
    throw Error(cat("PinnedStagingPool::release_after(", buffer, ", stream ", stream, "): ",
                    sizes_.count(buffer) ? "the buffer was already released" : "not a buffer of this pool"));
  }
  const uint64_t event = events_.record(stream);
  in_use_.erase(it);
  const auto size = static_cast<int64_t>(sizes_.at(buffer));
  stats_.in_use_bytes -= size;
  stats_.pending_bytes += size;
  pending_.push_back(Pending{event, buffer});
}

void PinnedStagingPool::empty_cache() {
  std::lock_guard<std::mutex> lock(mutex_);
  wait_for_pending_events();
  free_idle_buffers();
}

PinnedStagingStats PinnedStagingPool::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

void PinnedStagingPool::complete(const Pending& done) {
  const size_t size = sizes_.at(done.buffer);
  idle_[size].push_back(done.buffer);
  stats_.pending_bytes -= static_cast<int64_t>(size);
  events_.release(done.event);
}

void PinnedStagingPool::process_events() {
  // Copies on one stream complete in order, but the pool may serve several streams: check each.
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (events_.query(it->event)) {
      complete(*it);
      it = pending_.erase(it);
    } else {
      ++it;
    }
  }
}

void PinnedStagingPool::wait_for_pending_events() {
  while (!pending_.empty()) {
    events_.synchronize(pending_.front().event);
    complete(pending_.front());
    pending_.pop_front();
  }
}

void PinnedStagingPool::free_idle_buffers() {
  for (auto& [size, buffers] : idle_) {
    while (!buffers.empty()) {
      void* buffer = buffers.front();
      buffers.pop_front();
      memory_->free(buffer);
      sizes_.erase(buffer);
      ++stats_.host_frees;
      --stats_.buffers;
      stats_.reserved_bytes -= static_cast<int64_t>(size);
    }
  }
  idle_.clear();
}

}  // namespace strata
