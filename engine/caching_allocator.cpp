// The caching allocator's policy (see caching_allocator.h for the rules and where they come from).
//
// Memory layout: a segment is one DeviceMemory::malloc; it is covered by a doubly linked list of
// blocks in address order (prev/next), each either live (handed out), pending (deallocated but
// waiting for other streams' events) or free (in its pool's ordered set). Two free neighbours never
// coexist: freeing merges them, so a segment with one free block spanning it is entirely unused.
#include "engine/caching_allocator.h"

#include <cstdio>
#include <utility>
#include <vector>

#include "engine/error.h"

namespace strata {

struct CachingAllocator::Block {
  char* ptr = nullptr;
  size_t size = 0;
  StreamId stream = 0;
  bool small = false;              // belongs to the small pool (its segment is a small one)
  bool live = false;               // handed out and not yet deallocated
  size_t requested = 0;            // what the caller asked for, while live
  int pending_events = 0;          // events that must complete before it may be reused
  std::set<StreamId> stream_uses;  // other streams that used it (record_stream), while live
  Block* prev = nullptr;           // neighbours in the same segment
  Block* next = nullptr;

  bool is_free() const { return !live && pending_events == 0; }
};

namespace {

uintptr_t address(const void* ptr) { return reinterpret_cast<uintptr_t>(ptr); }

// Requests this large cannot be rounded without overflow, and no device has that much memory.
constexpr size_t kMaxRequest = size_t{1} << 62;

std::string format_bytes(int64_t bytes) {
  static const char* const units[] = {"KiB", "MiB", "GiB", "TiB"};
  if (bytes < 1024) return cat(bytes, " bytes");
  double value = static_cast<double>(bytes) / 1024.0;
  int unit = 0;
  while (value >= 1024.0 && unit < 3) {
    value /= 1024.0;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof text, "%.1f %s", value, units[unit]);
  return text;
}

std::string format_pointer(const void* ptr) {
  char text[32];
  std::snprintf(text, sizeof text, "%p", ptr);
  return text;
}

}  // namespace

bool CachingAllocator::BlockOrder::operator()(const Block* a, const Block* b) const {
  if (a->stream != b->stream) return a->stream < b->stream;
  if (a->size != b->size) return a->size < b->size;
  return address(a->ptr) < address(b->ptr);
}

CachingAllocator::CachingAllocator(std::unique_ptr<DeviceMemory> memory, std::unique_ptr<StreamEvents> events,
                                   Device device)
    : memory_(std::move(memory)), events_(std::move(events)), device_(std::move(device)) {
  check(memory_ != nullptr && events_ != nullptr, "CachingAllocator for ", device_.str(),
        ": needs a DeviceMemory and StreamEvents, got null");
}

CachingAllocator::~CachingAllocator() {
  std::set<Block*> blocks(small_free_.begin(), small_free_.end());
  blocks.insert(large_free_.begin(), large_free_.end());
  for (const auto& [ptr, block] : live_) blocks.insert(block);
  for (const PendingEvent& pending : pending_) {
    blocks.insert(pending.block);
    try {
      events_->release(pending.event);
    } catch (...) {
      // Nothing to report to: the device is going away with this allocator.
    }
  }
  for (Block* block : blocks) delete block;
  for (const auto& [base, bytes] : segments_) {
    try {
      memory_->free(reinterpret_cast<void*>(base));
    } catch (...) {
      // As above: a failing cudaFree at teardown leaves nothing the caller could do.
    }
  }
}

size_t CachingAllocator::round_size(size_t bytes) {
  if (bytes < kMinBlockSize) return kMinBlockSize;
  return (bytes + kMinBlockSize - 1) / kMinBlockSize * kMinBlockSize;
}

size_t CachingAllocator::segment_size(size_t rounded) {
  if (rounded <= kSmallSize) return kSmallBuffer;
  if (rounded < kMinLargeAlloc) return kLargeBuffer;
  return (rounded + kRoundLarge - 1) / kRoundLarge * kRoundLarge;
}

CachingAllocator::FreeBlocks& CachingAllocator::pool_of(size_t rounded) {
  return rounded <= kSmallSize ? small_free_ : large_free_;
}

void* CachingAllocator::allocate(size_t bytes) { return allocate_on(0, bytes); }

void* CachingAllocator::allocate_on(StreamId stream, size_t bytes) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++stats_.allocations;
  if (bytes > kMaxRequest) {
    ++stats_.ooms;
    throw OutOfMemoryError(
        cat("out of memory on ", device_name(), " allocating ", bytes, " bytes: more than any device holds"));
  }
  process_events();
  const size_t size = round_size(bytes);
  FreeBlocks& pool = pool_of(size);
  const bool routed = routing_ && routing_->stream == stream;
  if (routed) stream = routing_->key;

  Block* block = take_free_block(pool, stream, size);
  if (block == nullptr && routed && routing_->capturing) {
    throw PoolExhaustedError(cat("CUDA graph capture on ", device_.str(),
                                 ": its private memory pool has no free block of ", size,
                                 " bytes, and it cannot take device memory during a capture; the eager "
                                 "iteration routed to the pool before the capture must make the same requests"));
  }
  if (block == nullptr) block = new_segment(stream, size);
  if (block == nullptr && !pending_.empty()) {
    // Blocks waiting for other streams may free a fit once those streams catch up.
    wait_for_pending_events();
    block = take_free_block(pool, stream, size);
  }
  size_t released = 0;
  if (block == nullptr) {
    released = release_cached_segments();
    ++stats_.oom_retries;
    block = new_segment(stream, size);
  }
  if (block == nullptr) {
    ++stats_.ooms;
    throw OutOfMemoryError(out_of_memory_message(bytes, segment_size(size), released));
  }

  const size_t rest = block->size - size;
  const bool split = block->small ? rest >= kMinBlockSize : rest > kSmallSize;
  if (split) {
    auto* remainder = new Block;
    remainder->ptr = block->ptr + size;
    remainder->size = rest;
    remainder->stream = stream;
    remainder->small = block->small;
    remainder->prev = block;
    remainder->next = block->next;
    if (block->next != nullptr) block->next->prev = remainder;
    block->next = remainder;
    block->size = size;
    pool.insert(remainder);
  }
  block->live = true;
  block->requested = bytes;
  live_.emplace(block->ptr, block);
  ++stats_.live_blocks;
  stats_.requested_bytes += static_cast<int64_t>(bytes);
  count_allocated(static_cast<int64_t>(block->size));
  notify_allocated(block->ptr, static_cast<int64_t>(block->size), static_cast<int64_t>(bytes));
  return block->ptr;
}

CachingAllocator::Block* CachingAllocator::take_free_block(FreeBlocks& pool, StreamId stream, size_t size) {
  Block key;
  key.stream = stream;
  key.size = size;
  auto it = pool.lower_bound(&key);
  if (it == pool.end() || (*it)->stream != stream) return nullptr;
  Block* block = *it;
  pool.erase(it);
  ++stats_.cache_hits;
  return block;
}

CachingAllocator::Block* CachingAllocator::new_segment(StreamId stream, size_t size) {
  const size_t bytes = segment_size(size);
  // Host bookkeeping first, so a failing host allocation cannot leak the device memory.
  auto block = std::make_unique<Block>();
  void* ptr = memory_->malloc(bytes);
  if (ptr == nullptr) return nullptr;
  try {
    segments_.emplace(address(ptr), bytes);
  } catch (...) {
    memory_->free(ptr);
    throw;
  }
  block->ptr = static_cast<char*>(ptr);
  block->size = bytes;
  block->stream = stream;
  block->small = size <= kSmallSize;
  ++stats_.device_mallocs;
  ++stats_.segments;
  count_reserved(static_cast<int64_t>(bytes));
  return block.release();
}

void CachingAllocator::deallocate(void* ptr, size_t bytes) {
  if (ptr == nullptr) return;
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = live_.find(ptr);
  if (it == live_.end())
    throw Error(cat("deallocate(", format_pointer(ptr), ") on ", device_.str(), ": ", describe_pointer(ptr)));
  Block* block = it->second;
  check(bytes == block->requested, "deallocate(", format_pointer(ptr), ", ", bytes, " bytes) on ", device_.str(),
        ": the allocation was made for ", block->requested, " bytes");
  live_.erase(it);
  --stats_.live_blocks;
  stats_.requested_bytes -= static_cast<int64_t>(block->requested);
  count_allocated(-static_cast<int64_t>(block->size));
  notify_deallocated(ptr, static_cast<int64_t>(block->size), static_cast<int64_t>(bytes));
  block->live = false;
  block->requested = 0;
  if (block->stream_uses.empty()) {
    free_block(block);
    return;
  }
  // Recorded now, the events complete once every use already queued on those streams is done.
  std::set<StreamId> uses = std::move(block->stream_uses);
  block->stream_uses.clear();
  stats_.pending_bytes += static_cast<int64_t>(block->size);
  for (StreamId stream : uses) {
    pending_.push_back(PendingEvent{events_->record(stream), block});
    ++block->pending_events;
  }
}

void CachingAllocator::record_stream(void* ptr, StreamId stream) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = live_.find(ptr);
  if (it == live_.end())
    throw Error(cat("record_stream(", format_pointer(ptr), ", stream ", stream, ") on ", device_.str(), ": ",
                    describe_pointer(ptr)));
  Block* block = it->second;
  auto pool = pools_.find(block->stream);
  const StreamId owner = pool != pools_.end() ? pool->second : block->stream;
  if (stream != owner) block->stream_uses.insert(stream);
}

StreamId CachingAllocator::pool_key(uint64_t pool) { return (StreamId{1} << 63) | pool; }

bool CachingAllocator::is_pool_key(StreamId stream) { return (stream >> 63) != 0; }

uint64_t CachingAllocator::create_private_pool() {
  std::lock_guard<std::mutex> lock(mutex_);
  const uint64_t pool = next_pool_++;
  pools_.emplace(pool_key(pool), 0);
  return pool;
}

void CachingAllocator::begin_private_pool(uint64_t pool, StreamId stream, bool capturing) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = pools_.find(pool_key(pool));
  check(it != pools_.end(), "begin_private_pool(", pool, ") on ", device_.str(), ": no such pool");
  check(!routing_, "begin_private_pool(", pool, ") on ", device_.str(), ": pool ", routing_ ? routing_->key : 0,
        " is still routed; call end_private_pool() first");
  it->second = stream;
  routing_ = Routing{stream, it->first, capturing};
}

void CachingAllocator::end_private_pool() {
  std::lock_guard<std::mutex> lock(mutex_);
  routing_.reset();
}

void CachingAllocator::release_private_pool(uint64_t pool) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = pools_.find(pool_key(pool));
  check(it != pools_.end(), "release_private_pool(", pool, ") on ", device_.str(), ": no such pool");
  check(!routing_ || routing_->key != it->first, "release_private_pool(", pool, ") on ", device_.str(),
        ": the pool is still routed");
  const StreamId key = it->first, stream = it->second;
  pools_.erase(it);
  // Every block of a segment has its owner, and no two free blocks of a segment are neighbours, so
  // relabelling the blocks keeps the free lists consistent: free ones are reinserted under the new
  // owner (the sets order by owner first), live and pending ones are freed into its pools later.
  for (FreeBlocks* free_pool : {&small_free_, &large_free_}) {
    std::vector<Block*> owned;
    for (Block* block : *free_pool) {
      if (block->stream == key) owned.push_back(block);
    }
    for (Block* block : owned) {
      free_pool->erase(block);
      block->stream = stream;
      free_pool->insert(block);
    }
  }
  for (const auto& [ptr, block] : live_) {
    if (block->stream == key) block->stream = stream;
  }
  for (const PendingEvent& pending : pending_) {
    if (pending.block->stream == key) pending.block->stream = stream;
  }
}

void CachingAllocator::free_block(Block* block) {
  FreeBlocks& pool = block->small ? small_free_ : large_free_;
  if (block->prev != nullptr && block->prev->is_free()) {
    Block* prev = block->prev;
    pool.erase(prev);
    block->ptr = prev->ptr;
    block->size += prev->size;
    block->prev = prev->prev;
    if (block->prev != nullptr) block->prev->next = block;
    delete prev;
  }
  if (block->next != nullptr && block->next->is_free()) {
    Block* next = block->next;
    pool.erase(next);
    block->size += next->size;
    block->next = next->next;
    if (block->next != nullptr) block->next->prev = block;
    delete next;
  }
  pool.insert(block);
}

void CachingAllocator::complete_event(std::list<PendingEvent>::iterator it) {
  const PendingEvent done = *it;
  pending_.erase(it);
  if (--done.block->pending_events == 0) {
    stats_.pending_bytes -= static_cast<int64_t>(done.block->size);
    free_block(done.block);
  }
  events_->release(done.event);
}

void CachingAllocator::process_events() {
  for (auto it = pending_.begin(); it != pending_.end();) {
    auto next = std::next(it);
    if (events_->query(it->event)) complete_event(it);
    it = next;
  }
}

void CachingAllocator::wait_for_pending_events() {
  while (!pending_.empty()) {
    events_->synchronize(pending_.front().event);
    complete_event(pending_.begin());
  }
}

size_t CachingAllocator::release_cached_segments() {
  wait_for_pending_events();
  size_t released = 0;
  for (FreeBlocks* pool : {&small_free_, &large_free_}) {
    std::vector<Block*> unused;
    for (Block* block : *pool) {
      // A private pool's segments belong to its graph until the pool is released.
      if (block->prev == nullptr && block->next == nullptr && !is_pool_key(block->stream)) unused.push_back(block);
    }
    for (Block* block : unused) {
      memory_->free(block->ptr);
      pool->erase(block);
      segments_.erase(address(block->ptr));
      ++stats_.device_frees;
      --stats_.segments;
      count_reserved(-static_cast<int64_t>(block->size));
      released += block->size;
      delete block;
    }
  }
  return released;
}

void CachingAllocator::empty_cache() {
  std::lock_guard<std::mutex> lock(mutex_);
  release_cached_segments();
}

size_t CachingAllocator::block_size(const void* ptr) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = live_.find(ptr);
  if (it == live_.end())
    throw Error(cat("block_size(", format_pointer(ptr), ") on ", device_.str(), ": ", describe_pointer(ptr)));
  return it->second->size;
}

std::string CachingAllocator::describe_pointer(const void* ptr) const {
  auto it = segments_.upper_bound(address(ptr));
  if (it != segments_.begin()) {
    --it;
    if (address(ptr) < it->first + it->second) {
      return cat(
          "not a live allocation: it lies in device memory this allocator holds, so it was already "
          "deallocated (double free) or points into the middle of a block");
    }
  }
  return "not a pointer allocated by this allocator";
}

std::string CachingAllocator::device_name() const {
  // The device memory's name usually starts with the device ("cuda:0 (NVIDIA A100-SXM4-80GB)").
  std::string name = memory_->name();
  if (name.rfind(device_.str(), 0) != 0) name = cat(device_.str(), " (", name, ")");
  return name;
}

std::string CachingAllocator::out_of_memory_message(size_t bytes, size_t segment_bytes, size_t released_bytes) {
  std::string message =
      cat("out of memory on ", device_name(), " allocating ", format_bytes(static_cast<int64_t>(bytes)));
  if (bytes >= 1024) message += cat(" (", bytes, " bytes)");
  if (segment_bytes != round_size(bytes))
    message += cat(" in a new ", format_bytes(static_cast<int64_t>(segment_bytes)), " segment");
  const CachingAllocatorStats& s = stats_;
  message += cat(": ", format_bytes(s.allocated_bytes), " allocated by tensors (peak ",
                 format_bytes(s.peak_allocated_bytes), "), ", format_bytes(s.reserved_bytes),
                 " reserved by the cache (peak ", format_bytes(s.peak_reserved_bytes), ")");
  if (released_bytes > 0) {
    message += cat(" after returning ", format_bytes(static_cast<int64_t>(released_bytes)),
                   " of unused cached segments to the device");
  }
  if (s.reserved_bytes > s.allocated_bytes) {
    message += cat("; ", format_bytes(s.reserved_bytes - s.allocated_bytes),
                   " reserved but unallocated is the free part of segments that still hold tensors (fragmentation)");
  }
  if (std::optional<DeviceMemoryInfo> info = memory_->info()) {
    message += cat("; the device reports ", format_bytes(static_cast<int64_t>(info->free_bytes)), " free of ",
                   format_bytes(static_cast<int64_t>(info->total_bytes)));
  }
  message += ". Try a smaller batch or crop size, or release tensors that are no longer needed";
  return message;
}

void CachingAllocator::count_allocated(int64_t bytes) {
  stats_.allocated_bytes += bytes;
  if (stats_.allocated_bytes > stats_.peak_allocated_bytes) stats_.peak_allocated_bytes = stats_.allocated_bytes;
}

void CachingAllocator::count_reserved(int64_t bytes) {
  stats_.reserved_bytes += bytes;
  if (stats_.reserved_bytes > stats_.peak_reserved_bytes) stats_.peak_reserved_bytes = stats_.reserved_bytes;
}

MemoryStats CachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  MemoryStats s;
  s.allocated_bytes = stats_.allocated_bytes;
  s.requested_bytes = stats_.requested_bytes;
  s.peak_allocated_bytes = stats_.peak_allocated_bytes;
  s.reserved_bytes = stats_.reserved_bytes;
  s.peak_reserved_bytes = stats_.peak_reserved_bytes;
  s.allocations = stats_.allocations;
  return s;
}

CachingAllocatorStats CachingAllocator::detailed_stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  CachingAllocatorStats s = stats_;
  s.free_cached_bytes = s.reserved_bytes - s.allocated_bytes - s.pending_bytes;
  return s;
}

void CachingAllocator::reset_peak() {
  std::lock_guard<std::mutex> lock(mutex_);
  stats_.peak_allocated_bytes = stats_.allocated_bytes;
  stats_.peak_reserved_bytes = stats_.reserved_bytes;
}

}  // namespace strata
