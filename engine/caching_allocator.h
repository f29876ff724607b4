// The CUDA caching allocator: device memory is taken from the device in segments and kept after
// tensors free it, so the next tensor of a similar size reuses it without a cudaMalloc (which
// synchronizes the device) or a cudaFree. The policy is PyTorch's CUDA caching allocator
// (c10/cuda/CUDACachingAllocator.cpp, described in DESIGN.md "Devices and memory" and PyTorch's
// "CUDA semantics: memory management" notes), written anew:
//
//   - a request of b bytes becomes a block of round_size(b) = max(512, b rounded up to 512) bytes;
//     0 bytes still get a unique 512-byte block (as the CPU allocator gives a unique pointer);
//   - small blocks (<= 1 MiB) come from 2 MiB segments, large ones from segments of 20 MiB for
//     requests up to 10 MiB, else the rounded size rounded up to 2 MiB; the two pools never mix;
//   - the free blocks of a pool are ordered by (stream, size, address) and a request takes the
//     smallest free block of its stream that fits (best fit, lowest address among equals);
//   - a block larger than needed is split when the rest is worth keeping (small pool: >= 512 bytes,
//     large pool: > 1 MiB); a freed block merges with its free neighbours in the same segment;
//   - blocks belong to the stream they were allocated on and only serve that stream again; a block
//     also used by other streams (record_stream) is reusable only once events recorded on those
//     streams at its deallocation have completed (polled at every allocation);
//   - when the device is out of memory the allocator waits for those events, releases every cached
//     segment nothing lives in, and retries once; then it throws strata::Error with the numbers;
//   - statistics: allocated = bytes of live blocks (after rounding, as torch.cuda.memory_allocated),
//     reserved = bytes of the segments held from the device, both with peaks.
//
// CUDA graphs (incremental/step_graph.h) get private pools, as PyTorch's graph pools: between
// begin_private_pool(pool, stream) and end_private_pool(), allocations on `stream` are served from
// `pool` only, and blocks of a pool, once freed, serve only later allocations routed to that pool
// again. So the memory a captured graph reads and writes is never handed to anyone else between its
// replays. While routing is `capturing`, the pool may not grow: a device malloc would happen
// outside the graph (and cudaMalloc is refused during a capture), so the request throws
// PoolExhaustedError instead; an eager iteration routed to the pool first (not capturing) sizes it.
// release_private_pool(pool) returns the pool's blocks to the ordinary pools (live ones when they
// are deallocated) once its graph is destroyed. empty_cache() and the out-of-memory retry never
// release a segment of a private pool still in use.
//
// The policy is pure C++ over two small interfaces, DeviceMemory and StreamEvents, so it is tested
// on the CPU against fakes; engine/cuda/device_memory.h implements them over the CUDA runtime.
// Thread-safe: one mutex guards everything (the loader's copy stream allocates from its own thread).
// Deterministic: which block serves a request depends only on the sequence of calls and the
// addresses the device returned, never on hash order.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>

#include "engine/allocator.h"
#include "engine/device.h"
#include "engine/error.h"

namespace strata {

struct DeviceMemoryInfo {
  size_t free_bytes = 0;
  size_t total_bytes = 0;
};

// The raw device memory a caching allocator draws from.
class DeviceMemory {
 public:
  virtual ~DeviceMemory() = default;
  // nullptr when the device is out of memory (never throws for that); throws for other failures.
  virtual void* malloc(size_t bytes) = 0;
  virtual void free(void* ptr) = 0;
  // Names the device in messages, e.g. "cuda:0 (NVIDIA A100-SXM4-80GB)".
  virtual std::string name() const = 0;
  // Free and total bytes of the whole device (cudaMemGetInfo) for out-of-memory messages; nullopt
  // when unknown. Must not throw.
  virtual std::optional<DeviceMemoryInfo> info() { return std::nullopt; }
};

// Streams are opaque ids here (the CUDA context maps them to cudaStream_t; 0 = the compute stream).
using StreamId = uint64_t;

// Events tell the allocator when another stream is done with a block; the CUDA context provides
// them (cudaEventRecord/Query), tests provide fakes.
class StreamEvents {
 public:
  virtual ~StreamEvents() = default;
  virtual uint64_t record(StreamId stream) = 0;  // an event recorded now on `stream`
  virtual bool query(uint64_t event) = 0;        // true once it has completed
  virtual void synchronize(uint64_t event) = 0;  // blocks until it has completed
  virtual void release(uint64_t event) = 0;      // the event is not used any more
};

// Everything the caching allocator counts. Bytes are int64_t like MemoryStats.
struct CachingAllocatorStats {
  int64_t allocated_bytes = 0;       // live blocks, after rounding
  int64_t peak_allocated_bytes = 0;  // since construction or the last reset_peak()
  int64_t reserved_bytes = 0;        // segments held from the device
  int64_t peak_reserved_bytes = 0;
  int64_t requested_bytes = 0;    // what callers asked for, for the live blocks
  int64_t live_blocks = 0;        // allocations not yet deallocated
  int64_t segments = 0;           // device allocations held now
  int64_t pending_bytes = 0;      // freed blocks still waiting for another stream's events
  int64_t free_cached_bytes = 0;  // reusable right now: reserved - allocated - pending
  int64_t allocations = 0;        // allocate calls since construction
  int64_t cache_hits = 0;         // allocations served from a cached block, without a device malloc
  int64_t device_mallocs = 0;     // successful DeviceMemory::malloc calls
  int64_t device_frees = 0;       // DeviceMemory::free calls
  int64_t oom_retries = 0;        // device out-of-memory answers that released the cache and retried
  int64_t ooms = 0;               // out-of-memory errors thrown
};

// A request a private pool could not serve while capturing (see the file comment).
class PoolExhaustedError : public Error {
 public:
  using Error::Error;
};

class CachingAllocator final : public Allocator {
 public:
  static constexpr size_t kMinBlockSize = 512;               // every block size is a multiple of this
  static constexpr size_t kSmallSize = size_t{1} << 20;      // largest request of the small pool
  static constexpr size_t kSmallBuffer = 2 * kSmallSize;     // segment size of the small pool
  static constexpr size_t kLargeBuffer = 20 * kSmallSize;    // segment for requests up to kMinLargeAlloc
  static constexpr size_t kMinLargeAlloc = 10 * kSmallSize;  // larger requests get their own rounded size
  static constexpr size_t kRoundLarge = 2 * kSmallSize;      // ... rounded up to this

  // `device` names the device in messages; give it without a context (the context owns this
  // allocator, so a context pointer here would keep it alive forever).
  CachingAllocator(std::unique_ptr<DeviceMemory> memory, std::unique_ptr<StreamEvents> events, Device device);
  // Returns every segment to the device and releases pending events. Device errors are dropped
  // (a destructor cannot report them).
  ~CachingAllocator() override;
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  // On stream 0 (the compute stream).
  void* allocate(size_t bytes) override;
  // A block of at least `bytes` for work on `stream`; never nullptr. Throws strata::Error when the
  // device is out of memory even after the cache was released.
  void* allocate_on(StreamId stream, size_t bytes);
  // `ptr` must be a live allocation of this allocator and `bytes` the size it was requested with;
  // anything else (unknown pointer, double free, wrong size) throws naming the pointer. nullptr is
  // ignored.
  void deallocate(void* ptr, size_t bytes) override;
  // The block of `ptr` is used by `stream` too: once deallocated it is reused only after the work
  // queued on `stream` up to the deallocation has completed (PyTorch's Tensor.record_stream).
  // Throws for a pointer that is not a live allocation.
  void record_stream(void* ptr, StreamId stream);

  MemoryStats stats() const override;
  CachingAllocatorStats detailed_stats() const;
  void reset_peak() override;
  Device device() const override { return device_; }

  // Private pools of CUDA graphs (see the file comment). A new pool's id (never 0).
  uint64_t create_private_pool();
  // Routes allocations on `stream` to `pool` until end_private_pool(); one routing at a time.
  // Throws if a routing is active or the pool is unknown.
  void begin_private_pool(uint64_t pool, StreamId stream, bool capturing);
  void end_private_pool();
  // The pool's free blocks return to the ordinary pools of its stream now, its live blocks when
  // they are deallocated. Unknown pools throw.
  void release_private_pool(uint64_t pool);

  // Waits for pending events, then returns every cached segment in which nothing is allocated to
  // the device. Segments holding a live block stay.
  void empty_cache();

  // Bytes of the block serving the live allocation `ptr` (round_size of the request, or more when
  // the rest of a free block was too small to split off). Throws for an unknown pointer.
  size_t block_size(const void* ptr) const;

  static size_t round_size(size_t bytes);
  // Bytes taken from the device for a new segment serving a block of `rounded` bytes.
  static size_t segment_size(size_t rounded);

 private:
  struct Block;
  struct BlockOrder {
    bool operator()(const Block* a, const Block* b) const;
  };
  using FreeBlocks = std::set<Block*, BlockOrder>;
  struct PendingEvent {
    uint64_t event = 0;
    Block* block = nullptr;
  };

  FreeBlocks& pool_of(size_t rounded);
  Block* take_free_block(FreeBlocks& pool, StreamId stream, size_t size);
  Block* new_segment(StreamId stream, size_t size);
  void free_block(Block* block);
  void complete_event(std::list<PendingEvent>::iterator it);
  void process_events();
  void wait_for_pending_events();
  size_t release_cached_segments();
  std::string device_name() const;
  std::string out_of_memory_message(size_t bytes, size_t segment_bytes, size_t released_bytes);
  std::string describe_pointer(const void* ptr) const;
  void count_allocated(int64_t bytes);
  void count_reserved(int64_t bytes);

  std::unique_ptr<DeviceMemory> memory_;
  std::unique_ptr<StreamEvents> events_;
  Device device_;
  mutable std::mutex mutex_;
  FreeBlocks small_free_;
  FreeBlocks large_free_;
  // Live allocations by pointer: only looked up, never iterated for a decision.
  std::unordered_map<const void*, Block*> live_;
  // Bytes of each held segment by base address (ordered: pointer classification, deterministic
  // teardown).
  std::map<uintptr_t, size_t> segments_;
  // In the order the events were recorded.
  std::list<PendingEvent> pending_;
  CachingAllocatorStats stats_;
  // Private pools: a pool's blocks carry the pool's key as their stream id (pool_key()), so the
  // ordinary (stream, size, address) order keeps them apart. Maps a live pool's key to the stream
  // it serves.
  std::map<StreamId, StreamId> pools_;
  uint64_t next_pool_ = 1;
  struct Routing {
    StreamId stream = 0;
    StreamId key = 0;
    bool capturing = false;
  };
  std::optional<Routing> routing_;
  static StreamId pool_key(uint64_t pool);
  static bool is_pool_key(StreamId stream);
};

}  // namespace strata
