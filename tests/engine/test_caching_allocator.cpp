// Caching allocator policy on the CPU, against a fake device (host memory with a capacity, counting
// mallocs and frees) and fake stream events completed by hand: reuse, best fit, split and merge,
// pools, rounding, per-stream isolation, record_stream, out-of-memory recovery and messages,
// empty_cache, statistics, misuse errors, and a randomized run checked against a reference model.
#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <cstdio>
#include <cstring>
#include <latch>
#include <map>
#include <random>
#include <thread>
#include <vector>

#include "engine/caching_allocator.h"
#include "engine/error.h"
#include "tests/support/fake_streams.h"

using namespace strata;
using test::FakeStreamEvents;
using test::FakeStreams;

namespace {

constexpr size_t KiB = size_t{1} << 10;
constexpr size_t MiB = size_t{1} << 20;

// What the fake device knows; shared with the test, since the allocator owns the DeviceMemory.
// Its memory is one reserved host arena handed out first-fit, so the addresses a sequence of calls
// gets are the same in every run (and a fragmented arena fails like a fragmented device).
struct FakeDevice {
  explicit FakeDevice(size_t bytes) : capacity(bytes) {
    void* arena = ::mmap(nullptr, capacity, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (arena == MAP_FAILED) throw Error("fake device: cannot reserve the arena");
    base = reinterpret_cast<uintptr_t>(arena);
  }
  ~FakeDevice() { ::munmap(reinterpret_cast<void*>(base), capacity); }
  FakeDevice(const FakeDevice&) = delete;
  FakeDevice& operator=(const FakeDevice&) = delete;

  size_t capacity;
  uintptr_t base = 0;
  size_t in_use = 0;
  int64_t mallocs = 0;
  int64_t frees = 0;
  int64_t failed_mallocs = 0;
  std::map<uintptr_t, size_t> live;  // base address -> bytes
  std::vector<uintptr_t> freed;      // in the order they were freed
};

class FakeDeviceMemory final : public DeviceMemory {
 public:
  explicit FakeDeviceMemory(std::shared_ptr<FakeDevice> device) : device_(std::move(device)) {}
  void* malloc(size_t bytes) override {
    FakeDevice& d = *device_;
    // cudaMalloc's 256-byte alignment; the lowest gap that fits.
    auto align = [](uintptr_t p) { return (p + 255) / 256 * 256; };
    uintptr_t at = d.base;
    for (const auto& [start, size] : d.live) {
      if (start - at >= bytes) break;
      at = align(start + size);
    }
    if (d.in_use + bytes > d.capacity || at + bytes > d.base + d.capacity) {
      ++d.failed_mallocs;
      return nullptr;
    }
    d.in_use += bytes;
    ++d.mallocs;
    d.live.emplace(at, bytes);
    return reinterpret_cast<void*>(at);
  }
  void free(void* ptr) override {
    auto it = device_->live.find(reinterpret_cast<uintptr_t>(ptr));
    if (it == device_->live.end()) throw Error("fake device: free of a pointer it did not allocate");
    device_->in_use -= it->second;
    device_->live.erase(it);
    ++device_->frees;
    device_->freed.push_back(reinterpret_cast<uintptr_t>(ptr));
  }
  std::string name() const override { return "fake device 0"; }
  std::optional<DeviceMemoryInfo> info() override {
    return DeviceMemoryInfo{device_->capacity - device_->in_use, device_->capacity};
  }

 private:
  std::shared_ptr<FakeDevice> device_;
};

struct Fixture {
  std::shared_ptr<FakeDevice> device;
  std::shared_ptr<FakeStreams> streams = std::make_shared<FakeStreams>();
  std::unique_ptr<CachingAllocator> allocator;

  explicit Fixture(size_t capacity = size_t{256} << 20) : device(std::make_shared<FakeDevice>(capacity)) {
    allocator = std::make_unique<CachingAllocator>(std::make_unique<FakeDeviceMemory>(device),
                                                   std::make_unique<FakeStreamEvents>(streams),
                                                   Device{Device::Type::cuda, 0, nullptr});
  }
  CachingAllocator& a() { return *allocator; }
  CachingAllocatorStats s() const { return allocator->detailed_stats(); }
};

char* as_bytes(void* ptr) { return static_cast<char*>(ptr); }

std::string pointer_text(const void* ptr) {
  char text[32];
  std::snprintf(text, sizeof text, "%p", ptr);
  return text;
}

int64_t i64(size_t v) { return static_cast<int64_t>(v); }

}  // namespace

TEST_CASE("caching allocator rounds requests to 512 bytes and sizes segments by pool", "[cpu]") {
  CHECK(CachingAllocator::round_size(0) == 512);
  CHECK(CachingAllocator::round_size(1) == 512);
  CHECK(CachingAllocator::round_size(512) == 512);
  CHECK(CachingAllocator::round_size(513) == 1024);
  CHECK(CachingAllocator::round_size(MiB + 1) == MiB + 512);
  CHECK(CachingAllocator::segment_size(512) == 2 * MiB);
  CHECK(CachingAllocator::segment_size(MiB) == 2 * MiB);
  CHECK(CachingAllocator::segment_size(MiB + 512) == 20 * MiB);
  CHECK(CachingAllocator::segment_size(10 * MiB - 512) == 20 * MiB);
  CHECK(CachingAllocator::segment_size(10 * MiB) == 10 * MiB);
  CHECK(CachingAllocator::segment_size(10 * MiB + 512) == 12 * MiB);
  CHECK(CachingAllocator::segment_size(31 * MiB) == 32 * MiB);

  Fixture f;
  void* a = f.a().allocate(1);
  CHECK(f.a().block_size(a) == 512);
  void* b = f.a().allocate(1000);
  CHECK(f.a().block_size(b) == 1024);
  CHECK(as_bytes(b) == as_bytes(a) + 512);  // carved from the same 2 MiB segment
  void* c = f.a().allocate(0);              // still a unique pointer, like the CPU allocator's
  CHECK(c != nullptr);
  CHECK(c != a);
  CHECK(c != b);
  // 11 MiB gets a 12 MiB segment; the 1 MiB rest is too small to split off, so the block is 12 MiB.
  void* d = f.a().allocate(11 * MiB);
  CHECK(f.a().block_size(d) == 12 * MiB);
  CHECK(f.device->mallocs == 2);
  CHECK(f.s().reserved_bytes == i64(2 * MiB + 12 * MiB));
  CHECK(f.s().allocated_bytes == i64(512 + 1024 + 512 + 12 * MiB));
  CHECK(f.s().requested_bytes == i64(1 + 1000 + 0 + 11 * MiB));
  for (auto [ptr, bytes] : {std::pair{a, size_t{1}}, {b, 1000}, {c, 0}, {d, 11 * MiB}}) f.a().deallocate(ptr, bytes);
  CHECK(f.s().allocated_bytes == 0);
}

TEST_CASE("caching allocator reuses a freed block without a device malloc", "[cpu]") {
  Fixture f;
  void* a = f.a().allocate(4000);
  CHECK(f.device->mallocs == 1);
  f.a().deallocate(a, 4000);
  CHECK(f.device->frees == 0);
  CHECK(f.s().reserved_bytes == i64(2 * MiB));
  void* b = f.a().allocate(3900);  // same rounded size
  CHECK(b == a);
  CHECK(f.device->mallocs == 1);
  CHECK(f.s().cache_hits == 1);
  f.a().deallocate(b, 3900);
  void* big = f.a().allocate(5 * MiB);
  f.a().deallocate(big, 5 * MiB);
  CHECK(f.a().allocate(4 * MiB) == big);  // the 20 MiB segment is cached too
  CHECK(f.device->mallocs == 2);
}

TEST_CASE("caching allocator picks the smallest free block that fits", "[cpu]") {
  Fixture f;
  SECTION("large pool: segments of 12, 16 and 14 MiB, a 13 MiB request takes the 14 MiB one") {
    void* b12 = f.a().allocate(12 * MiB);
    void* b16 = f.a().allocate(16 * MiB);
    void* b14 = f.a().allocate(14 * MiB);
    f.a().deallocate(b12, 12 * MiB);
    f.a().deallocate(b16, 16 * MiB);
    f.a().deallocate(b14, 14 * MiB);
    void* got = f.a().allocate(13 * MiB);
    CHECK(got == b14);
    CHECK(f.device->mallocs == 3);
    // A 1 MiB rest is not worth a block of its own in the large pool (it must exceed 1 MiB).
    CHECK(f.a().block_size(got) == 14 * MiB);
    CHECK(f.s().allocated_bytes == i64(14 * MiB));
    // 15 MiB fits only the 16 MiB block.
    CHECK(f.a().allocate(15 * MiB) == b16);
  }
  SECTION("small pool: free holes of 2 KiB and 1 KiB between live blocks") {
    void* x1 = f.a().allocate(8 * KiB);
    void* hole2 = f.a().allocate(2 * KiB);
    void* x2 = f.a().allocate(8 * KiB);
    void* hole1 = f.a().allocate(1 * KiB);
    void* x3 = f.a().allocate(8 * KiB);
    f.a().deallocate(hole2, 2 * KiB);
    f.a().deallocate(hole1, 1 * KiB);
    CHECK(f.a().allocate(1 * KiB) == hole1);
    void* part = f.a().allocate(1536);
    CHECK(part == hole2);
    CHECK(f.a().block_size(part) == 1536);  // split: a 512-byte rest is kept in the small pool
    CHECK(f.a().allocate(512) == as_bytes(hole2) + 1536);
    CHECK(f.device->mallocs == 1);
    (void)x1;
    (void)x2;
    (void)x3;
  }
}

TEST_CASE("caching allocator splits blocks and merges freed neighbours", "[cpu]") {
  Fixture f;
  void* a = f.a().allocate(1 * KiB);
  void* b = f.a().allocate(1 * KiB);
  void* c = f.a().allocate(1 * KiB);
  REQUIRE(as_bytes(b) == as_bytes(a) + KiB);
  REQUIRE(as_bytes(c) == as_bytes(b) + KiB);
  f.a().deallocate(b, KiB);
  f.a().deallocate(a, KiB);
  // A and B merged into one 2 KiB block at A (C still separates it from the segment's tail).
  void* ab = f.a().allocate(2 * KiB);
  CHECK(ab == a);
  CHECK(f.a().block_size(ab) == 2 * KiB);
  CHECK(f.device->mallocs == 1);
  f.a().deallocate(ab, 2 * KiB);
  f.a().deallocate(c, KiB);
  // Everything merged back into one block spanning the segment: empty_cache can release it.
  f.a().empty_cache();
  CHECK(f.device->frees == 1);
  CHECK(f.s().reserved_bytes == 0);

  // Large pool: 3 MiB out of a 20 MiB segment leaves a 17 MiB block; 16 MiB of it leaves 1 MiB,
  // which stays attached (not > 1 MiB).
  void* l1 = f.a().allocate(3 * MiB);
  CHECK(f.a().block_size(l1) == 3 * MiB);
  void* l2 = f.a().allocate(16 * MiB);
  CHECK(l2 == as_bytes(l1) + 3 * MiB);
  CHECK(f.a().block_size(l2) == 17 * MiB);
  CHECK(f.s().allocated_bytes == i64(20 * MiB));
  f.a().deallocate(l1, 3 * MiB);
  f.a().deallocate(l2, 16 * MiB);
  CHECK(f.a().allocate(20 * MiB - 512) == l1);  // merged whole again (a 20 MiB block, rest 512 unsplit)
  CHECK(f.device->mallocs == 2);
}

TEST_CASE("caching allocator keeps small and large pools apart", "[cpu]") {
  Fixture f;
  void* small = f.a().allocate(4 * KiB);
  f.a().deallocate(small, 4 * KiB);
  // A free 2 MiB small segment does not serve a 1.5 MiB (large) request.
  void* large = f.a().allocate(MiB + MiB / 2);
  CHECK(f.device->mallocs == 2);
  CHECK(f.device->live.at(reinterpret_cast<uintptr_t>(large)) == 20 * MiB);
  f.a().deallocate(large, MiB + MiB / 2);
  // Nor does the free 20 MiB large segment serve a small request: it goes back to the small one.
  CHECK(f.a().allocate(8 * KiB) == small);
  // Exactly 1 MiB is still small.
  void* one = f.a().allocate(MiB);
  CHECK(f.device->mallocs == 2);
  CHECK(one == as_bytes(small) + 8 * KiB);
}

TEST_CASE("caching allocator keeps blocks on the stream they were allocated on", "[cpu]") {
  Fixture f;
  void* on1 = f.a().allocate_on(1, 64 * KiB);
  f.a().deallocate(on1, 64 * KiB);
  void* on0 = f.a().allocate_on(0, 64 * KiB);
  CHECK(on0 != on1);
  CHECK(f.device->mallocs == 2);  // stream 0 got a segment of its own
  CHECK(f.a().allocate_on(1, 64 * KiB) == on1);
  CHECK(f.device->mallocs == 2);
  f.a().deallocate(on0, 64 * KiB);
  CHECK(f.a().allocate(32 * KiB) == on0);  // allocate() is stream 0
}

TEST_CASE("caching allocator delays reuse of a record_stream'ed block until its event completes", "[cpu]") {
  Fixture f;
  void* a = f.a().allocate(64 * KiB);
  f.a().record_stream(a, 0);  // its own stream: no event needed
  f.a().record_stream(a, 1);  // the loader's copy stream read it
  f.a().record_stream(a, 1);  // recorded once per stream
  f.a().deallocate(a, 64 * KiB);
  REQUIRE(f.streams->events.size() == 1);
  CHECK(f.streams->events.begin()->second.stream == 1);
  CHECK(f.s().pending_bytes == i64(64 * KiB));
  CHECK(f.s().allocated_bytes == 0);  // no tensor holds it any more

  void* b = f.a().allocate(64 * KiB);
  CHECK(b != a);
  CHECK(b == as_bytes(a) + 64 * KiB);  // the rest of the segment, not the pending block
  f.streams->complete(1);
  void* c = f.a().allocate(64 * KiB);  // polled at allocation
  CHECK(c == a);
  CHECK(f.streams->unreleased() == 0);
  CHECK(f.s().pending_bytes == 0);
  CHECK(f.device->mallocs == 1);
  CHECK(f.streams->synchronizations == 0);

  // Two other streams: reusable only once both have completed.
  f.a().record_stream(c, 1);
  f.a().record_stream(c, 2);
  f.a().deallocate(c, 64 * KiB);
  f.a().deallocate(b, 64 * KiB);  // b merges with the tail, never with the pending block c
  f.streams->complete(2);
  CHECK(f.a().allocate(64 * KiB) == b);
  f.streams->complete(1);
  CHECK(f.a().allocate(64 * KiB) == c);
}

TEST_CASE("caching allocator frees the cache on device out-of-memory and retries", "[cpu]") {
  Fixture f(30 * MiB);
  void* a = f.a().allocate(3 * MiB);  // 20 MiB segment
  f.a().deallocate(a, 3 * MiB);
  // 22 MiB needs a new 22 MiB segment: 20 + 22 > 30, so the cached 20 MiB go back and it retries.
  void* b = f.a().allocate(22 * MiB);
  CHECK(f.device->failed_mallocs == 1);
  CHECK(f.device->mallocs == 2);
  CHECK(f.device->frees == 1);
  CHECK(f.s().oom_retries == 1);
  CHECK(f.s().reserved_bytes == i64(22 * MiB));

  void* small = f.a().allocate(4 * KiB);  // a 2 MiB segment: 24 MiB reserved
  f.a().deallocate(small, 4 * KiB);
  CHECK(f.s().peak_reserved_bytes == i64(24 * MiB));
  // 20 MiB more cannot fit next to the live 22 MiB even after the small segment goes back.
  try {
    f.a().allocate(20 * MiB);
    FAIL("no out-of-memory error");
  } catch (const OutOfMemoryError& e) {  // its own type: a caller can catch it and shrink its batch
    std::string m = e.what();
    INFO(m);
    CHECK_THAT(m, Catch::StartsWith("out of memory on cuda:0 (fake device 0) allocating 20.0 MiB (20971520 bytes): "));
    CHECK_THAT(m, Catch::Contains("22.0 MiB allocated by tensors (peak 22.0 MiB)"));
    CHECK_THAT(m, Catch::Contains("22.0 MiB reserved by the cache (peak 24.0 MiB)"));
    CHECK_THAT(m, Catch::Contains("after returning 2.0 MiB of unused cached segments"));
    CHECK_THAT(m, Catch::Contains("the device reports 8.0 MiB free of 30.0 MiB"));
    CHECK_THAT(m, Catch::Contains("smaller batch"));
  }
  CHECK(f.s().ooms == 1);
  CHECK(f.s().oom_retries == 2);
  CHECK(f.s().reserved_bytes == i64(22 * MiB));
  CHECK(f.device->frees == 2);
  // Still usable after the error.
  void* c = f.a().allocate(4 * KiB);
  f.a().deallocate(c, 4 * KiB);

  // A request that needs a new segment says so, and counts the free part of live segments, which
  // the cache cannot return (here stream 0's 10 MiB, which stream 1 may not use either).
  f.a().deallocate(b, 22 * MiB);
  void* e = f.a().allocate(12 * MiB);
  CHECK(e == b);
  CHECK_THROWS_WITH(f.a().allocate_on(1, 9 * MiB),
                    Catch::Contains("allocating 9.0 MiB (9437184 bytes) in a new 20.0 MiB segment") &&
                        Catch::Contains("10.0 MiB reserved but unallocated is the free part of segments"));
  f.a().deallocate(e, 12 * MiB);

  // A request larger than any device reports the same way instead of overflowing the rounding.
  CHECK_THROWS_WITH(f.a().allocate(~size_t{0}), Catch::StartsWith("out of memory on cuda:0"));
  CHECK_THROWS_AS(f.a().allocate(~size_t{0}), OutOfMemoryError);
}

TEST_CASE("caching allocator waits for pending events before giving up on out-of-memory", "[cpu]") {
  Fixture f(20 * MiB);
  void* a = f.a().allocate(12 * MiB);
  f.a().record_stream(a, 1);
  f.a().deallocate(a, 12 * MiB);
  // 16 MiB needs its own segment; the pending 12 MiB block can only go back once stream 1 is done.
  void* b = f.a().allocate(16 * MiB);
  CHECK(f.streams->synchronizations == 1);
  CHECK(f.streams->unreleased() == 0);
  CHECK(f.device->frees == 1);
  CHECK(f.s().reserved_bytes == i64(16 * MiB));
  f.a().deallocate(b, 16 * MiB);

  // And a pending block of the right stream and size is simply reused after the wait.
  void* c = f.a().allocate(12 * MiB);  // 16 MiB segment; 4 MiB rest split off
  f.a().record_stream(c, 1);
  f.a().deallocate(c, 12 * MiB);
  void* d = f.a().allocate(14 * MiB);  // nothing cached fits, the device is full: wait, merge, reuse
  CHECK(d == c);
  CHECK(f.streams->synchronizations == 2);
  CHECK(f.device->mallocs == 2);
}

TEST_CASE("caching allocator empty_cache returns exactly the unused segments", "[cpu]") {
  Fixture f;
  void* live_small = f.a().allocate(4 * KiB);        // small segment S1, stays
  void* free_small = f.a().allocate_on(1, 4 * KiB);  // small segment S2 (stream 1), freed
  void* free_large = f.a().allocate(12 * MiB);       // 12 MiB segment, freed
  void* live_large = f.a().allocate(3 * MiB);        // 20 MiB segment, stays
  void* part = f.a().allocate(16 * MiB);             // the rest of that 20 MiB segment, freed
  void* pending = f.a().allocate(24 * MiB);          // 24 MiB segment, freed but used by stream 2
  f.a().record_stream(pending, 2);
  f.a().deallocate(free_small, 4 * KiB);
  f.a().deallocate(free_large, 12 * MiB);
  f.a().deallocate(part, 16 * MiB);
  f.a().deallocate(pending, 24 * MiB);
  REQUIRE(f.device->mallocs == 5);
  CHECK(f.s().reserved_bytes == i64(2 * MiB + 2 * MiB + 12 * MiB + 20 * MiB + 24 * MiB));

  f.a().empty_cache();
  // Pending blocks are waited for (PyTorch's empty_cache synchronizes them too).
  CHECK(f.streams->synchronizations == 1);
  std::vector<uintptr_t> freed = f.device->freed;
  std::sort(freed.begin(), freed.end());
  std::vector<uintptr_t> expected = {reinterpret_cast<uintptr_t>(free_small), reinterpret_cast<uintptr_t>(free_large),
                                     reinterpret_cast<uintptr_t>(pending)};
  std::sort(expected.begin(), expected.end());
  CHECK(freed == expected);
  CHECK(f.s().reserved_bytes == i64(2 * MiB + 20 * MiB));
  CHECK(f.s().segments == 2);
  CHECK(f.s().allocated_bytes == i64(4 * KiB + 3 * MiB));

  f.a().deallocate(live_small, 4 * KiB);
  f.a().deallocate(live_large, 3 * MiB);
  f.a().empty_cache();
  CHECK(f.s().reserved_bytes == 0);
  CHECK(f.device->live.empty());
  CHECK(f.device->frees == 5);
}

TEST_CASE("caching allocator statistics follow a hand-computed sequence", "[cpu]") {
  Fixture f;
  void* a = f.a().allocate(1000);  // 1024-byte block, 2 MiB segment
  MemoryStats s = f.a().stats();
  CHECK(s.allocated_bytes == 1024);
  CHECK(s.reserved_bytes == i64(2 * MiB));
  void* b = f.a().allocate(3 * MiB);  // 3 MiB block, 20 MiB segment
  f.a().deallocate(a, 1000);
  s = f.a().stats();
  CHECK(s.allocated_bytes == i64(3 * MiB));
  CHECK(s.peak_allocated_bytes == i64(3 * MiB + 1024));
  CHECK(s.reserved_bytes == i64(22 * MiB));
  void* c = f.a().allocate(15 * MiB);  // from the 17 MiB rest; the 2 MiB left over is split off
  CHECK(c == as_bytes(b) + 3 * MiB);
  CHECK(f.a().block_size(c) == 15 * MiB);
  s = f.a().stats();
  CHECK(s.allocated_bytes == i64(18 * MiB));
  CHECK(s.peak_allocated_bytes == i64(18 * MiB));
  CHECK(s.reserved_bytes == i64(22 * MiB));
  CHECK(s.peak_reserved_bytes == i64(22 * MiB));
  CHECK(s.allocations == 3);
  CachingAllocatorStats d = f.s();
  CHECK(d.requested_bytes == i64(18 * MiB));
  CHECK(d.live_blocks == 2);
  CHECK(d.segments == 2);
  CHECK(d.free_cached_bytes == i64(4 * MiB));  // 2 MiB small segment + 2 MiB tail
  CHECK(d.cache_hits == 1);
  CHECK(d.device_mallocs == 2);

  f.a().deallocate(b, 3 * MiB);
  f.a().reset_peak();
  s = f.a().stats();
  CHECK(s.peak_allocated_bytes == i64(15 * MiB));
  CHECK(s.peak_reserved_bytes == i64(22 * MiB));
  f.a().deallocate(c, 15 * MiB);
  f.a().empty_cache();
  s = f.a().stats();
  CHECK(s.allocated_bytes == 0);
  CHECK(s.reserved_bytes == 0);
  CHECK(s.peak_allocated_bytes == i64(15 * MiB));
  CHECK(s.peak_reserved_bytes == i64(22 * MiB));
  f.a().reset_peak();
  CHECK(f.a().stats().peak_reserved_bytes == 0);
  CHECK(f.a().device().str() == "cuda:0");
}

TEST_CASE("caching allocator rejects unknown pointers, double frees and wrong sizes", "[cpu]") {
  Fixture f;
  void* a = f.a().allocate(4 * KiB);
  void* b = f.a().allocate(4 * KiB);
  int host = 0;
  CHECK_THROWS_WITH(f.a().deallocate(&host, 4), Catch::Contains(pointer_text(&host)) &&
                                                    Catch::Contains("not a pointer allocated by this allocator"));
  CHECK_THROWS_WITH(f.a().deallocate(as_bytes(a) + 16, 4 * KiB),
                    Catch::Contains(pointer_text(as_bytes(a) + 16)) && Catch::Contains("middle of a block"));
  CHECK_THROWS_WITH(f.a().deallocate(a, 4 * KiB + 1),
                    Catch::Contains(pointer_text(a)) && Catch::Contains("4096 bytes"));
  f.a().deallocate(a, 4 * KiB);
  CHECK_THROWS_WITH(f.a().deallocate(a, 4 * KiB), Catch::Contains(pointer_text(a)) && Catch::Contains("double free"));
  CHECK_THROWS_WITH(f.a().record_stream(a, 1), Catch::Contains("record_stream") && Catch::Contains(pointer_text(a)));
  CHECK_THROWS_WITH(f.a().block_size(&host), Catch::Contains(pointer_text(&host)));
  f.a().deallocate(nullptr, 0);  // like free(nullptr)
  // The failed calls changed nothing.
  CHECK(f.s().allocated_bytes == i64(4 * KiB));
  CHECK(f.s().live_blocks == 1);
  f.a().deallocate(b, 4 * KiB);
}

TEST_CASE("caching allocator is safe to use from two threads at once", "[cpu]") {
  Fixture f(size_t{1} << 30);
  std::atomic<int64_t> allocations{0};
  std::atomic<int64_t> clobbered{0};
  std::latch start(2);
  // Each thread tags its blocks with its stream; a block handed to both, or counters updated
  // without the lock, show up as a wrong tag or wrong totals.
  auto work = [&](StreamId stream) {
    std::mt19937_64 rng(stream);
    std::vector<std::pair<void*, size_t>> held;
    int64_t count = 0;
    start.arrive_and_wait();
    for (int i = 0; i < 100000; ++i) {
      if (held.empty() || rng() % 2 == 0) {
        size_t bytes = 1 + rng() % (rng() % 8 == 0 ? 4 * MiB : 64 * KiB);
        void* ptr = f.a().allocate_on(stream, bytes);
        ++count;
        *static_cast<uint64_t*>(ptr) = stream;
        held.emplace_back(ptr, bytes);
      } else {
        size_t k = rng() % held.size();
        if (*static_cast<uint64_t*>(held[k].first) != stream) ++clobbered;
        f.a().deallocate(held[k].first, held[k].second);
        held.erase(held.begin() + static_cast<std::ptrdiff_t>(k));
      }
    }
    for (auto [ptr, bytes] : held) {
      if (*static_cast<uint64_t*>(ptr) != stream) ++clobbered;
      f.a().deallocate(ptr, bytes);
    }
    allocations += count;
  };
  std::thread other(work, StreamId{1});
  work(0);
  other.join();
  CHECK(clobbered == 0);
  CHECK(f.s().allocations == allocations);
  CHECK(f.s().allocated_bytes == 0);
  CHECK(f.s().requested_bytes == 0);
  CHECK(f.s().live_blocks == 0);
  f.a().empty_cache();
  CHECK(f.s().reserved_bytes == 0);
  CHECK(f.s().segments == 0);
  CHECK(f.device->live.empty());
}

namespace {

struct LiveBlock {
  size_t bytes = 0;   // requested
  size_t extent = 0;  // block size
  StreamId stream = 0;
  uint64_t tag = 0;
};

// Where every block landed, as offsets into the fake device's arena: comparable across runs.
using Layout = std::vector<uintptr_t>;

// Thousands of random operations on two streams, with random record_stream, event completions,
// empty_cache calls and a device small enough to run out; after every step the live blocks must not
// overlap, lie inside live segments, keep their tags, and the counters must equal the model's.
Layout random_run(uint64_t seed) {
  Fixture f(160 * MiB);
  std::mt19937_64 rng(seed);
  std::map<uintptr_t, LiveBlock> live;  // the reference model
  Layout layout;
  uint64_t next_tag = 1;
  int64_t ooms = 0;
  auto segment_of = [&](uintptr_t p) {
    auto it = f.device->live.upper_bound(p);
    REQUIRE(it != f.device->live.begin());
    --it;
    return it;
  };
  for (int step = 0; step < 6000; ++step) {
    uint64_t op = rng() % 100;
    if (op < 50 || live.empty()) {
      StreamId stream = rng() % 2;
      uint64_t kind = rng() % 10;
      size_t bytes = kind < 6 ? rng() % (64 * KiB) : kind < 8 ? rng() % (2 * MiB) : rng() % (24 * MiB);
      void* ptr = nullptr;
      try {
        ptr = f.a().allocate_on(stream, bytes);
      } catch (const Error& e) {
        REQUIRE_THAT(e.what(), Catch::StartsWith("out of memory on cuda:0"));
        ++ooms;
        continue;
      }
      uintptr_t p = reinterpret_cast<uintptr_t>(ptr);
      size_t extent = f.a().block_size(ptr);
      REQUIRE(extent >= CachingAllocator::round_size(bytes));
      REQUIRE(extent % 512 == 0);
      auto next = live.lower_bound(p);
      if (next != live.end()) REQUIRE(p + extent <= next->first);
      if (next != live.begin()) {
        auto prev = std::prev(next);
        REQUIRE(prev->first + prev->second.extent <= p);
      }
      auto segment = segment_of(p);
      REQUIRE(p + extent <= segment->first + segment->second);
      layout.push_back(p - f.device->base);
      uint64_t tag = next_tag++;
      std::memcpy(ptr, &tag, sizeof tag);
      std::memcpy(as_bytes(ptr) + extent - sizeof tag, &tag, sizeof tag);
      live.emplace(p, LiveBlock{bytes, extent, stream, tag});
    } else if (op < 90) {
      auto it = std::next(live.begin(), static_cast<std::ptrdiff_t>(rng() % live.size()));
      void* ptr = reinterpret_cast<void*>(it->first);
      uint64_t head = 0, tail = 0;
      std::memcpy(&head, ptr, sizeof head);
      std::memcpy(&tail, as_bytes(ptr) + it->second.extent - sizeof tail, sizeof tail);
      REQUIRE(head == it->second.tag);
      REQUIRE(tail == it->second.tag);
      if (rng() % 4 == 0) f.a().record_stream(ptr, 1 + rng() % 3);
      f.a().deallocate(ptr, it->second.bytes);
      live.erase(it);
    } else if (op < 98) {
      f.streams->complete(rng() % 4);
    } else {
      f.a().empty_cache();
    }
    CachingAllocatorStats s = f.s();
    int64_t allocated = 0, requested = 0, segments = 0;
    for (const auto& [p, block] : live) {
      allocated += i64(block.extent);
      requested += i64(block.bytes);
    }
    for (const auto& [base, bytes] : f.device->live) segments += i64(bytes);
    REQUIRE(s.allocated_bytes == allocated);
    REQUIRE(s.requested_bytes == requested);
    REQUIRE(s.live_blocks == i64(live.size()));
    REQUIRE(s.reserved_bytes == segments);
    REQUIRE(s.segments == i64(f.device->live.size()));
    REQUIRE(s.free_cached_bytes >= 0);
    REQUIRE(s.peak_reserved_bytes <= i64(f.device->capacity));
  }
  CHECK(ooms > 0);  // the run did exercise the release-and-retry path
  CHECK(f.s().oom_retries >= ooms);
  for (const auto& [p, block] : live) f.a().deallocate(reinterpret_cast<void*>(p), block.bytes);
  f.a().empty_cache();
  CHECK(f.s().reserved_bytes == 0);
  CHECK(f.device->live.empty());
  CHECK(f.streams->unreleased() == 0);
  return layout;
}

}  // namespace

TEST_CASE("caching allocator survives a randomized run checked against a reference model", "[cpu]") {
  Layout first = random_run(2024);
  // Deterministic: the same calls give the same layout (segments and offsets).
  CHECK(random_run(2024) == first);
  random_run(7);
}

TEST_CASE("caching allocator returns its segments to the device when destroyed", "[cpu]") {
  Fixture f;
  void* a = f.a().allocate(4 * KiB);
  f.a().record_stream(a, 1);
  f.a().deallocate(a, 4 * KiB);
  f.a().allocate(12 * MiB);
  f.allocator.reset();
  CHECK(f.device->live.empty());
  CHECK(f.streams->unreleased() == 0);
}

TEST_CASE("caching allocator keeps a CUDA graph's private pool apart until it is released", "[cpu]") {
  Fixture f;
  const uint64_t pool = f.a().create_private_pool();
  // An eager iteration routed to the pool sizes it.
  f.a().begin_private_pool(pool, 0, false);
  void* scratch = f.a().allocate(4000);
  void* output = f.a().allocate(4000);
  f.a().end_private_pool();
  CHECK(f.device->mallocs == 1);
  f.a().deallocate(scratch, 4000);
  // Outside the routing, a request on the same stream never gets the pool's free block ...
  void* other = f.a().allocate(4000);
  CHECK(other != scratch);
  CHECK(f.device->mallocs == 2);
  // ... and a capture routed to the pool reuses it without a device malloc, and refuses to grow.
  f.a().begin_private_pool(pool, 0, true);
  CHECK(f.a().allocate(3000) == scratch);
  CHECK_THROWS_AS(f.a().allocate(3 * MiB), PoolExhaustedError);
  CHECK_THROWS_WITH(f.a().begin_private_pool(pool, 0, true), Catch::Contains("still routed"));
  f.a().end_private_pool();
  CHECK(f.device->mallocs == 2);
  // empty_cache keeps the pool's segment: the graph still refers to it.
  f.a().deallocate(scratch, 3000);
  f.a().empty_cache();
  CHECK(f.device->frees == 0);
  // Released, the pool's blocks serve ordinary requests of its stream.
  f.a().release_private_pool(pool);
  CHECK(f.a().allocate(4000) == scratch);
  f.a().deallocate(scratch, 4000);
  f.a().deallocate(output, 4000);  // live at the release: freed into the stream's pool
  f.a().deallocate(other, 4000);
  f.a().empty_cache();
  CHECK(f.device->frees == 2);
  CHECK(f.s().reserved_bytes == 0);
  CHECK_THROWS_WITH(f.a().release_private_pool(pool), Catch::Contains("no such pool"));
}
