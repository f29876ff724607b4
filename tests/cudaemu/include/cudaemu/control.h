// cudaemu: control and inspection API of the emulator itself (not part of CUDA). Tests use it to
// shrink the device, count allocator calls, switch checking mode on and off, and assert that no
// misuse was reported. Thread-safe; settings apply to the whole process.
//
// Environment variables read at first use (the functions below override them):
//   CUDAEMU_DEVICE_MEMORY=<bytes>[K|M|G]  device capacity (default 8G)
//   CUDAEMU_CHECK=1                       checking mode: every launch runs twice with different
//                                         schedules and the results are compared
//   CUDAEMU_WORKERS=<n>                   OS threads running blocks (default min(4, cores))
//   CUDAEMU_STACK_KB=<n>                  fiber stack size per GPU thread (default 64, 256 under ASan)
//   CUDAEMU_STREAMS=eager|deferred        stream mode (default eager), see set_stream_mode
//   CUDAEMU_STREAM_SEED=<n>               seed of the deferred mode's random progress (default 0)
//   NVIDIA_TF32_OVERRIDE=0                as on a GPU: no TF32 in cuBLAS/cuDNN whatever the math mode
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace cudaemu {

// Device memory capacity in bytes. cudaMalloc fails with cudaErrorMemoryAllocation when the bytes
// in use plus the request would exceed it; lowering it below the bytes in use is allowed.
void set_device_memory_capacity(std::size_t bytes);
std::size_t device_memory_capacity();

struct MemoryStats {
    std::uint64_t malloc_calls;       // successful cudaMalloc calls
    std::uint64_t failed_malloc_calls;  // cudaMalloc calls that returned cudaErrorMemoryAllocation
    std::uint64_t free_calls;         // successful cudaFree calls with a non-null pointer
    std::uint64_t host_alloc_calls;   // successful cudaMallocHost/cudaHostAlloc calls
    std::uint64_t host_free_calls;    // successful cudaFreeHost calls with a non-null pointer
    std::size_t bytes_in_use;         // requested bytes of live device allocations
    std::size_t peak_bytes_in_use;    // maximum of bytes_in_use since the last reset
    std::size_t live_allocations;     // live device allocations
};
MemoryStats memory_stats();
// Zeroes the call counters and sets the peak to the current bytes in use.
void reset_memory_counters();

// Gives an allocation a name used in guard-zone and race reports (e.g. the tensor it backs).
// Returns false if ptr is not the start of a live allocation.
bool set_allocation_label(const void* ptr, const std::string& label);

// Checks the guard zones of every live allocation now; returns the number found overwritten
// (each one is reported on stderr).
int check_guard_zones();

// Checking mode: see README.md ("Checking mode").
void set_checking_mode(bool enabled);
bool checking_mode();

// Number of OS threads that run the blocks of a launch (>= 1). Checking mode always uses one.
void set_worker_count(int workers);
int worker_count();

// How stream work executes (README.md, "Streams and events"):
//   eager     every kernel, copy, memset and event record runs to completion before its call
//             returns, so streams impose no ordering of their own (one legal schedule);
//   deferred  that work is queued in its stream and runs only when the host must observe it
//             (synchronization, a blocking copy, a query, a cuBLAS/cuDNN call on the stream,
//             cudaFree) or when the seeded random progress picks it, so a missing
//             cudaStreamWaitEvent or a buffer reused while another stream still reads it gives
//             wrong data in some schedule.
// Switching to eager first runs every queued operation.
enum class StreamMode { eager, deferred };
void set_stream_mode(StreamMode mode);
StreamMode stream_mode();

// Seed of the deferred mode's random progress. Setting it restarts the generator, so the same seed
// and the same sequence of API calls from one host thread give the same schedule.
void set_stream_schedule_seed(std::uint64_t seed);
std::uint64_t stream_schedule_seed();

// Every misuse the emulator reported (runtime, kernels, cuBLAS, cuDNN) increments this counter and
// replaces the last message.
std::uint64_t error_count();
std::string last_error_message();

// Launches executed so far (each checking-mode launch counts once).
std::uint64_t launch_count();

// Runtime API calls so far that make the host wait for device work, as the CUDA Runtime API
// reference's "API synchronization behavior" describes them (README.md, "Control API"), counted in
// both stream modes whether or not the emulator had anything to wait for: cudaDeviceSynchronize,
// cudaStreamSynchronize, cudaEventSynchronize; cudaMemcpy and cudaMemcpyToSymbol unless device to
// device; cudaMemcpyAsync to or from pageable host memory or host to host; cudaFree and
// cudaFreeHost of a live allocation. Calls that fail validation and zero-byte copies do not count.
// A test asserts that code does not make the host wait by comparing the count before and after it.
std::uint64_t host_synchronization_count();

}  // namespace cudaemu
