// Pinned staging pool policy on the CPU, against fake pinned memory (malloc, counting) and fake
// stream events completed by hand: a buffer is never handed out while a queued copy may still read
// it, buffers of a size class are reused in release order, the limit on pinned bytes, empty_cache,
// statistics and misuse errors.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <memory>
#include <set>

#include "engine/error.h"
#include "engine/pinned_staging.h"
#include "tests/support/fake_streams.h"

using namespace strata;
using test::FakeStreamEvents;
using test::FakeStreams;

namespace {

constexpr size_t KiB = size_t{1} << 10;
constexpr size_t MiB = size_t{1} << 20;
constexpr StreamId kCompute = 0;
constexpr StreamId kCopy = 1;

int64_t i64(size_t v) { return static_cast<int64_t>(v); }

struct FakeHost {
  std::set<void*> live;
  int64_t allocations = 0;
  int64_t frees = 0;
};

class FakePinnedMemory final : public PinnedMemory {
 public:
  explicit FakePinnedMemory(std::shared_ptr<FakeHost> host) : host_(std::move(host)) {}
  void* allocate(size_t bytes) override {
    void* ptr = std::malloc(bytes);
    if (ptr == nullptr) throw Error("fake pinned memory: out of memory");
    host_->live.insert(ptr);
    ++host_->allocations;
    return ptr;
  }
  void free(void* ptr) override {
    if (host_->live.erase(ptr) != 1) throw Error("fake pinned memory: free of a pointer it did not allocate");
    ++host_->frees;
    std::free(ptr);
  }

 private:
  std::shared_ptr<FakeHost> host_;
};

struct Fixture {
  std::shared_ptr<FakeHost> host = std::make_shared<FakeHost>();
  std::shared_ptr<FakeStreams> streams = std::make_shared<FakeStreams>();
  FakeStreamEvents events{streams};
  std::unique_ptr<PinnedStagingPool> pool;

  explicit Fixture(size_t limit = PinnedStagingPool::kDefaultLimit)
      : pool(std::make_unique<PinnedStagingPool>(std::make_unique<FakePinnedMemory>(host), events, limit)) {}
  PinnedStagingStats s() const { return pool->stats(); }
};

}  // namespace

TEST_CASE("pinned staging rounds requests up to a power of two of at least 64 KiB", "[cpu]") {
  CHECK(PinnedStagingPool::buffer_size(0) == 64 * KiB);
  CHECK(PinnedStagingPool::buffer_size(1) == 64 * KiB);
  CHECK(PinnedStagingPool::buffer_size(64 * KiB) == 64 * KiB);
  CHECK(PinnedStagingPool::buffer_size(64 * KiB + 1) == 128 * KiB);
  // A VOC training batch: 8 x 512 x 512 x 3 bytes of images.
  CHECK(PinnedStagingPool::buffer_size(8 * 512 * 512 * 3) == 8 * MiB);
}

TEST_CASE("pinned staging reuses a buffer only once the copy reading it has completed", "[cpu]") {
  Fixture f;
  void* a = f.pool->acquire(100 * KiB);
  f.pool->release_after(a, kCopy);
  // The copy from `a` is still queued: a second request must not get it.
  void* b = f.pool->acquire(100 * KiB);
  CHECK(b != a);
  CHECK(f.s().pending_bytes == i64(128 * KiB));
  CHECK(f.s().in_use_bytes == i64(128 * KiB));
  f.pool->release_after(b, kCopy);
  // Work queued on another stream completing says nothing about the copy stream's.
  f.streams->complete(kCompute);
  void* c = f.pool->acquire(100 * KiB);
  CHECK((c != a && c != b));
  f.pool->release_after(c, kCompute);
  f.streams->complete(kCopy);
  // Both copy-stream buffers are free again, handed out in the order they were released.
  CHECK(f.pool->acquire(90 * KiB) == a);
  CHECK(f.pool->acquire(128 * KiB) == b);
  CHECK(f.s().buffers == 3);
  CHECK(f.s().reuses == 2);
  CHECK(f.host->allocations == 3);
  CHECK(f.streams->synchronizations == 0);
}

TEST_CASE("pinned staging keeps size classes apart", "[cpu]") {
  Fixture f;
  void* small = f.pool->acquire(10 * KiB);
  f.pool->release_after(small, kCompute);
  f.streams->complete(kCompute);
  void* large = f.pool->acquire(1 * MiB);
  CHECK(large != small);
  CHECK(f.pool->acquire(64 * KiB) == small);
  CHECK(f.s().reserved_bytes == i64(64 * KiB + 1 * MiB));
}

TEST_CASE("pinned staging waits for pending copies and frees idle buffers instead of passing its limit", "[cpu]") {
  Fixture f(4 * MiB);
  void* a = f.pool->acquire(2 * MiB);
  f.pool->release_after(a, kCopy);
  void* b = f.pool->acquire(1 * MiB);
  f.pool->release_after(b, kCopy);
  CHECK(f.s().reserved_bytes == i64(3 * MiB));
  // A third 2 MiB buffer would hold 5 MiB: the pool waits for the copies and gets `a` back instead.
  void* c = f.pool->acquire(2 * MiB);
  CHECK(c == a);
  CHECK(f.streams->synchronizations == 2);
  CHECK(f.s().reserved_bytes == i64(3 * MiB));
  // No buffer of the class is free: the idle 1 MiB buffer goes back to the system first.
  void* d = f.pool->acquire(4 * MiB);
  CHECK(f.host->frees == 1);
  CHECK(f.s().reserved_bytes == i64(6 * MiB));  // one request above the limit still gets its buffer
  CHECK(f.s().peak_reserved_bytes == i64(6 * MiB));
  f.pool->release_after(c, kCopy);
  f.pool->release_after(d, kCopy);
}

TEST_CASE("pinned staging empty_cache returns free buffers and the destructor waits for pending copies", "[cpu]") {
  Fixture f;
  void* a = f.pool->acquire(KiB);
  void* b = f.pool->acquire(KiB);
  f.pool->release_after(a, kCopy);
  f.pool->empty_cache();
  CHECK(f.streams->synchronizations == 1);
  CHECK(f.host->frees == 1);
  CHECK(f.s().buffers == 1);  // `b` is still acquired
  CHECK(f.s().reserved_bytes == i64(64 * KiB));
  f.pool->release_after(b, kCopy);
  f.pool.reset();
  CHECK(f.streams->synchronizations == 2);
  CHECK(f.host->live.empty());
  CHECK(f.streams->unreleased() == 0);
}

TEST_CASE("pinned staging names the pointer on misuse", "[cpu]") {
  Fixture f;
  int local = 0;
  CHECK_THROWS_WITH(f.pool->release_after(&local, kCopy), Catch::Contains("not a buffer of this pool"));
  void* a = f.pool->acquire(KiB);
  f.pool->release_after(a, kCopy);
  CHECK_THROWS_WITH(f.pool->release_after(a, kCopy), Catch::Contains("already released"));
}
