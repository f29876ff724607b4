// cudaemu internals shared by the runtime, the scheduler, cuBLAS and cuDNN: error reporting, the
// registry of device and pinned allocations (guard zones, poisoning, snapshots for checking mode),
// stream validation and submission of stream work, and settings read from the environment.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "cuda_runtime_api.h"

#if defined(__SANITIZE_ADDRESS__)
#define CUDAEMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CUDAEMU_ASAN 1
#endif
#endif
#ifndef CUDAEMU_ASAN
#define CUDAEMU_ASAN 0
#endif

namespace cudaemu::detail {

// ---- errors -------------------------------------------------------------------------------------
// Prints "cudaemu: <message>" to stderr, counts it and keeps it as the last message.
void report_error(const std::string& message);
// Records `code` as the calling host thread's last runtime error and returns it.
cudaError_t set_last_error(cudaError_t code);
// report_error + set_last_error for a failing runtime call.
cudaError_t fail(cudaError_t code, const char* api, const std::string& message);
std::string format(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

// ---- settings (control.h lists the environment variables) ---------------------------------------
std::size_t fiber_stack_bytes();
bool tf32_allowed();  // false when NVIDIA_TF32_OVERRIDE=0

// ---- allocations --------------------------------------------------------------------------------
enum class MemoryKind { device, pinned_host };

struct AllocationInfo {
    std::uintptr_t base = 0;
    std::size_t size = 0;
    MemoryKind kind = MemoryKind::device;
    std::uint64_t id = 0;  // 1 for the first allocation of the process, and so on
    std::string label;
};

constexpr std::size_t kDeviceAlignment = 256;  // cudaMalloc's documented minimum alignment
constexpr std::size_t kGuardBytes = 256;

cudaError_t allocate(MemoryKind kind, std::size_t size, void** out, const char* api);
cudaError_t release(MemoryKind kind, void* ptr, const char* api);

// The allocation containing [ptr, ptr + bytes), pointers to the end of an allocation included when
// bytes == 0. Returns false if there is none.
bool find_allocation(const void* ptr, std::size_t bytes, AllocationInfo* info);
std::string describe(const AllocationInfo& info);
std::string describe_pointer(const void* ptr);

// Checks all guard zones; reports each overwritten one (naming `context`) and returns how many.
int check_all_guards(const char* context);

struct AllocationSnapshot {
    std::uintptr_t base;
    AllocationInfo info;
    std::vector<unsigned char> bytes;
};
std::vector<AllocationSnapshot> snapshot_allocations();
void restore_allocations(const std::vector<AllocationSnapshot>& snapshot);

// ---- streams (streams.cpp) ----------------------------------------------------------------------
// True for null, cudaStreamLegacy, cudaStreamPerThread and streams created and not yet destroyed.
bool is_valid_stream(cudaStream_t stream);
// is_valid_stream, or cudaErrorInvalidResourceHandle reported for `api`.
cudaError_t check_stream(cudaStream_t stream, const char* api);

// One operation of a stream: a kernel, a copy or a memset, already validated. It returns its error,
// which it has already reported (report_error) and set as the running host thread's last error.
using StreamWork = std::function<cudaError_t()>;

// Runs `work` in the order of `stream` (a valid stream). Eager mode: runs it now and returns its
// error. Deferred mode: queues it behind the stream's earlier work (and, for the legacy default
// stream and blocking streams, behind each other's earlier work), gives the random progress its
// turn and returns cudaSuccess; an error of the work when it runs later is kept for the next
// synchronizing call (take_deferred_error).
cudaError_t submit(cudaStream_t stream, StreamWork work);
// submit, then runs the stream until `work` has completed: for copies the host waits for. Returns
// the error of the work or, in deferred mode, the first error of deferred work not yet returned.
cudaError_t submit_and_wait(cudaStream_t stream, StreamWork work);
// Runs all work queued on `stream` so far; nothing for an invalid stream. cuBLAS and cuDNN call it
// before executing on their handle's stream, which keeps them in stream order without queueing.
void complete_stream(cudaStream_t stream);
// Runs all queued work of every stream (cudaFree and cudaFreeHost synchronize the device).
void complete_all_streams();

// ---- stream capture (graphs.cpp) ----------------------------------------------------------------
// True while `stream` (a valid stream) is in a capture, active or invalidated.
bool is_capturing(cudaStream_t stream);
// When `stream` is capturing: records `work` as the capture's next node (or, for an invalidated
// capture, drops it with cudaErrorStreamCaptureInvalidated), sets *result and returns true. Returns
// false, leaving `work` alone, for a stream that is not capturing.
bool capture_work(cudaStream_t stream, StreamWork& work, cudaError_t* result);
// cudaErrorStreamCaptureUnsupported, reported for `api` (doing `what`) and invalidating the capture,
// when `stream` is capturing; cudaSuccess otherwise.
cudaError_t refuse_on_capturing_stream(cudaStream_t stream, const char* api, const char* what);
// For the "potentially unsafe" calls (allocation, free, device synchronization, blocking copies):
// cudaErrorStreamCaptureUnsupported, invalidating the captures that prohibit the calling thread from
// them; cudaSuccess when none does.
cudaError_t check_unsafe_call(const char* api);
// cudaEventRecord: marks `event` as last recorded in the capture of `stream` and returns true when
// `stream` captures (nothing is recorded then); otherwise clears the mark and returns false.
bool capture_event_record(cudaEvent_t event, cudaStream_t stream);
// cudaErrorCapturedEvent for an event last recorded in a capture (queries and synchronization).
cudaError_t check_event_not_captured(cudaEvent_t event, const char* api);
// cudaStreamWaitEvent's capture rules; returns true with *result set when the wait involves a capture.
bool capture_event_wait(cudaStream_t stream, cudaEvent_t event, const char* api, cudaError_t* result);
// The cuBLAS and cuDNN computing calls, once validated: records `compute` as a node of the capture
// of `stream` when it captures, else runs it now (the caller has run the stream's earlier work).
// Returns false when the capture is invalidated (nothing recorded, nothing run).
bool run_or_capture(cudaStream_t stream, std::function<void()> compute);
// cudaStreamDestroy: the stream's capture, if any, ends with it.
void forget_capture(cudaStream_t stream);

// ---- runtime objects ----------------------------------------------------------------------------
// Largest dynamic shared memory a launch of `kernel` may request (48 KiB unless raised by
// cudaFuncSetAttribute).
std::size_t dynamic_shared_limit(const void* kernel);

constexpr std::size_t kSharedMemPerBlock = 48 * 1024;
constexpr std::size_t kSharedMemPerBlockOptin = 232448;  // 227 KiB, an H100's opt-in limit
constexpr std::size_t kSharedMemPerMultiprocessor = 233472;

// ---- numerics ----------------------------------------------------------------------------------
// TF32 keeps 10 explicit mantissa bits. The rounding is to nearest with ties away from zero, as
// the PTX conversion cvt.rna.tf32.f32 that produces tensor-core TF32 operands.
inline float round_to_tf32(float x) {
    std::uint32_t u;
    std::memcpy(&u, &x, sizeof u);
    if ((u & 0x7f800000u) == 0x7f800000u) {
        return x;
    }
    u = (u + 0x1000u) & 0xffffe000u;
    float r;
    std::memcpy(&r, &u, sizeof r);
    return r;
}

// ---- diagnostics counters (control.h) -----------------------------------------------------------
void count_launch();
// One API call that makes the host wait for device work (host_synchronization_count()).
void count_host_synchronization();

}  // namespace cudaemu::detail
