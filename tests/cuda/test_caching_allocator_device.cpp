// The caching allocator over the CUDA runtime (the emulator in CI, a GPU for real): its blocks are
// device memory kernels and copies can use, freed blocks are reused without another cudaMalloc,
// record_stream goes through real events, and device out-of-memory is recovered from by releasing
// the cache, or reported with the device's own numbers.
#include <cuda_runtime.h>

#include <catch2/catch.hpp>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/caching_allocator.h"
#include "engine/cuda/device_memory.h"
#include "engine/error.h"

#if defined(STRATA_CUDA_EMULATION)
#include <cudaemu/control.h>
#endif

using namespace strata;

namespace {

constexpr size_t KiB = size_t{1} << 10;
constexpr size_t MiB = size_t{1} << 20;

void cuda_ok(cudaError_t status, const char* call) {
  INFO(call << ": " << cudaGetErrorName(status));
  REQUIRE(status == cudaSuccess);
}

// Two streams of device 0 (id 0: compute, id 1: a copy stream) and an allocator drawing from them.
struct DeviceFixture {
  cudaStream_t streams[2] = {nullptr, nullptr};
  std::unique_ptr<CachingAllocator> allocator;

  DeviceFixture() {
    cuda_ok(cudaSetDevice(0), "cudaSetDevice");
    for (cudaStream_t& stream : streams)
      cuda_ok(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
    allocator = std::make_unique<CachingAllocator>(
        std::make_unique<CudaDeviceMemory>(0),
        std::make_unique<CudaStreamEvents>(0, [this](StreamId id) { return streams[id]; }),
        Device{Device::Type::cuda, 0, nullptr});
  }
  ~DeviceFixture() {
    allocator.reset();
    for (cudaStream_t stream : streams) cudaStreamDestroy(stream);
  }
  CachingAllocator& a() { return *allocator; }
};

// The bytes of a device range, copied back.
std::vector<unsigned char> read_back(const void* device, size_t bytes) {
  std::vector<unsigned char> host(bytes);
  cuda_ok(cudaMemcpy(host.data(), device, bytes, cudaMemcpyDeviceToHost), "cudaMemcpy");
  return host;
}

bool all_equal(const std::vector<unsigned char>& bytes, unsigned char value) {
  for (unsigned char b : bytes)
    if (b != value) return false;
  return true;
}

#if defined(STRATA_CUDA_EMULATION)
// Shrinks the emulated device for one test and restores it.
struct CapacityGuard {
  size_t saved = cudaemu::device_memory_capacity();
  explicit CapacityGuard(size_t bytes_free) {
    cudaemu::set_device_memory_capacity(cudaemu::memory_stats().bytes_in_use + bytes_free);
  }
  ~CapacityGuard() { cudaemu::set_device_memory_capacity(saved); }
};
#endif

}  // namespace

TEST_CASE("caching allocator on the device: blocks are writable device memory", "[cpu]") {
  DeviceFixture f;
  const size_t sizes[] = {1, 1000, 64 * KiB, MiB, 3 * MiB + 7, 11 * MiB};
  std::vector<void*> blocks;
  for (size_t i = 0; i < std::size(sizes); ++i) {
    void* ptr = f.a().allocate(sizes[i]);
    cudaPointerAttributes attributes{};
    cuda_ok(cudaPointerGetAttributes(&attributes, ptr), "cudaPointerGetAttributes");
    CHECK(attributes.type == cudaMemoryTypeDevice);
    cuda_ok(cudaMemset(ptr, static_cast<int>(0x10 + i), sizes[i]), "cudaMemset");
    blocks.push_back(ptr);
  }
  // Written after all were allocated: neighbours carved from one segment must not overlap.
  for (size_t i = 0; i < std::size(sizes); ++i) {
    INFO("block " << i << " of " << sizes[i] << " bytes");
    CHECK(all_equal(read_back(blocks[i], sizes[i]), static_cast<unsigned char>(0x10 + i)));
  }
  for (size_t i = 0; i < std::size(sizes); ++i) f.a().deallocate(blocks[i], sizes[i]);
  CHECK(f.a().stats().allocated_bytes == 0);
#if defined(STRATA_CUDA_EMULATION)
  CHECK(cudaemu::check_guard_zones() == 0);
#endif
}

TEST_CASE("caching allocator on the device: freed blocks are reused without cudaMalloc", "[cpu]") {
  DeviceFixture f;
#if defined(STRATA_CUDA_EMULATION)
  const cudaemu::MemoryStats before = cudaemu::memory_stats();
#endif
  for (int step = 0; step < 100; ++step) {
    void* small = f.a().allocate(256 * KiB);
    void* large = f.a().allocate(5 * MiB);
    cuda_ok(cudaMemsetAsync(large, 0, 5 * MiB, f.streams[0]), "cudaMemsetAsync");
    f.a().deallocate(small, 256 * KiB);
    f.a().deallocate(large, 5 * MiB);
  }
  CachingAllocatorStats s = f.a().detailed_stats();
  CHECK(s.device_mallocs == 2);  // one small (2 MiB) and one large (20 MiB) segment
  CHECK(s.cache_hits == 198);
  CHECK(s.reserved_bytes == static_cast<int64_t>(22 * MiB));
#if defined(STRATA_CUDA_EMULATION)
  // The runtime's own count agrees: two cudaMalloc calls for 200 allocations, no cudaFree yet.
  const cudaemu::MemoryStats after = cudaemu::memory_stats();
  CHECK(after.malloc_calls - before.malloc_calls == 2);
  CHECK(after.free_calls - before.free_calls == 0);
#endif
  f.a().empty_cache();
  CHECK(f.a().detailed_stats().device_frees == 2);
  CHECK(f.a().stats().reserved_bytes == 0);
#if defined(STRATA_CUDA_EMULATION)
  CHECK(cudaemu::memory_stats().free_calls - before.free_calls == 2);
#endif
}

TEST_CASE("caching allocator on the device: record_stream waits for a real event", "[cpu]") {
  DeviceFixture f;
  void* a = f.a().allocate(64 * KiB);
  // The copy stream reads the block, then the compute stream's tensor dies.
  std::vector<unsigned char> host(64 * KiB);
  cuda_ok(cudaMemcpyAsync(host.data(), a, host.size(), cudaMemcpyDeviceToHost, f.streams[1]), "cudaMemcpyAsync");
  f.a().record_stream(a, 1);
  f.a().deallocate(a, 64 * KiB);
  cuda_ok(cudaStreamSynchronize(f.streams[1]), "cudaStreamSynchronize");
  // The copy has finished, so the event is complete and the block is reused.
  CHECK(f.a().allocate(64 * KiB) == a);
  CHECK(f.a().detailed_stats().pending_bytes == 0);
  f.a().deallocate(a, 64 * KiB);
}

TEST_CASE("caching allocator on the device: a request larger than the device is reported", "[cpu]") {
  DeviceFixture f;
  size_t free_bytes = 0, total_bytes = 0;
  cuda_ok(cudaMemGetInfo(&free_bytes, &total_bytes), "cudaMemGetInfo");
  CudaDeviceMemory memory(0);
  std::optional<DeviceMemoryInfo> info = memory.info();
  REQUIRE(info.has_value());
  CHECK(info->total_bytes == total_bytes);
  CHECK(info->free_bytes <= info->total_bytes);
  CHECK_THAT(memory.name(), Catch::StartsWith("cuda:0 ("));

  void* kept = f.a().allocate(4 * KiB);
  const size_t too_much = total_bytes + 64 * MiB;
  try {
    f.a().allocate(too_much);
    FAIL("no out-of-memory error");
  } catch (const Error& e) {
    std::string m = e.what();
    INFO(m);
    CHECK_THAT(m, Catch::StartsWith("out of memory on cuda:0 ("));
    CHECK_THAT(m, Catch::Contains("(" + std::to_string(too_much) + " bytes)"));
    CHECK_THAT(m, Catch::Contains("4.0 KiB allocated by tensors"));
    CHECK_THAT(m, Catch::Contains("the device reports"));
  }
  // The failed cudaMalloc was cleared: the runtime reports no pending error and keeps working.
  CHECK(cudaGetLastError() == cudaSuccess);
  cuda_ok(cudaMemset(kept, 0, 4 * KiB), "cudaMemset");
  f.a().deallocate(kept, 4 * KiB);
}

#if defined(STRATA_CUDA_EMULATION)
TEST_CASE("caching allocator on the device: out of memory releases the cache and retries", "[cpu]") {
  DeviceFixture f;
  CapacityGuard capacity(30 * MiB);
  const cudaemu::MemoryStats before = cudaemu::memory_stats();
  void* a = f.a().allocate(3 * MiB);  // a 20 MiB segment, then cached
  f.a().deallocate(a, 3 * MiB);
  // A 22 MiB segment does not fit next to the cached 20 MiB: released, then the retry succeeds.
  void* b = f.a().allocate(22 * MiB);
  cuda_ok(cudaMemset(b, 1, 22 * MiB), "cudaMemset");
  cudaemu::MemoryStats after = cudaemu::memory_stats();
  CHECK(after.failed_malloc_calls - before.failed_malloc_calls == 1);
  CHECK(after.malloc_calls - before.malloc_calls == 2);
  CHECK(after.free_calls - before.free_calls == 1);
  CHECK(f.a().detailed_stats().oom_retries == 1);
  CHECK(f.a().stats().reserved_bytes == static_cast<int64_t>(22 * MiB));
  CHECK(cudaGetLastError() == cudaSuccess);

  // Nothing left to release: the error names the device and the numbers.
  CHECK_THROWS_WITH(f.a().allocate(20 * MiB), Catch::StartsWith("out of memory on cuda:0 (") &&
                                                  Catch::Contains("allocating 20.0 MiB (20971520 bytes)") &&
                                                  Catch::Contains("22.0 MiB allocated by tensors") &&
                                                  Catch::Contains("22.0 MiB reserved by the cache") &&
                                                  Catch::Contains("8.0 MiB free of"));
  CHECK(cudaGetLastError() == cudaSuccess);
  f.a().deallocate(b, 22 * MiB);
  CHECK(cudaemu::check_guard_zones() == 0);
}
#endif
