// Tests of the deferred stream mode: ordering bugs between streams must give wrong data in at least
// one of a few schedule seeds, the correctly ordered versions must be right for every seed, and
// the host observes queued work exactly where the CUDA Runtime API reference says it does
// (synchronization, blocking copies, queries, cudaFree, cuBLAS on the stream, stream destruction).
// Each test sets the mode itself, so the file means the same under CUDAEMU_STREAMS=deferred.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "cublas_v2.h"
#include "cuda_runtime.h"
#include "cudaemu/control.h"
#include "test_support.h"

using cudaemu::StreamMode;
using test_support::DeviceBuffer;
using test_support::StreamModeGuard;

// Global, not in the unnamed namespace, so that launch messages can name them.
__global__ void streams_copy_kernel(const float* in, float* out, int n) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        out[i] = in[i];
    }
}

__global__ void streams_fill_kernel(float* out, float value, int n) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        out[i] = value;
    }
}

// Threads from `limit` on skip the barrier: a misuse the emulator reports when the kernel runs.
__global__ void streams_partial_barrier_kernel(float* out, int limit) {
    if (static_cast<int>(threadIdx.x) >= limit) {
        return;
    }
    __syncthreads();
    out[threadIdx.x] = 1.0f;
}

namespace {

// A planted ordering bug must show in at least one of these schedules.
constexpr std::uint64_t kSeeds[] = {1, 2, 3, 4, 5, 6, 7, 8};
constexpr int kCount = 256;

cudaError_t launch_copy(const float* in, float* out, cudaStream_t stream) {
    return cudaemu::launch(streams_copy_kernel, 1, kCount, 0, stream, in, out, kCount);
}

cudaError_t launch_fill(float* out, float value, cudaStream_t stream) {
    return cudaemu::launch(streams_fill_kernel, 1, kCount, 0, stream, out, value, kCount);
}

// Two non-blocking streams: nothing orders them but events.
struct StreamPair {
    cudaStream_t copy = nullptr;
    cudaStream_t compute = nullptr;
    StreamPair() {
        cudaStreamCreateWithFlags(&copy, cudaStreamNonBlocking);
        cudaStreamCreateWithFlags(&compute, cudaStreamNonBlocking);
    }
    ~StreamPair() {
        cudaStreamDestroy(copy);
        cudaStreamDestroy(compute);
    }
    StreamPair(const StreamPair&) = delete;
    StreamPair& operator=(const StreamPair&) = delete;
};

struct Event {
    cudaEvent_t event = nullptr;
    explicit Event(unsigned int flags = cudaEventDisableTiming) { cudaEventCreateWithFlags(&event, flags); }
    ~Event() { cudaEventDestroy(event); }
    Event(const Event&) = delete;
    Event& operator=(const Event&) = delete;
};

struct PinnedBuffer {
    float* data = nullptr;
    explicit PinnedBuffer(int count) { cudaMallocHost(&data, count * sizeof(float)); }
    ~PinnedBuffer() { cudaFreeHost(data); }
    PinnedBuffer(const PinnedBuffer&) = delete;
    PinnedBuffer& operator=(const PinnedBuffer&) = delete;
    void fill(float value) const {
        for (int i = 0; i < kCount; ++i) {
            data[i] = value;
        }
    }
};

bool all_equal(const std::vector<float>& values, float expected) {
    for (float v : values) {
        if (!(v == expected)) {
            return false;
        }
    }
    return true;
}

bool all_equal(const float* values, float expected) {
    return all_equal(std::vector<float>(values, values + kCount), expected);
}

// The copy stream uploads a batch from pinned memory; the compute stream reads it. Returns true if
// the compute stream saw the uploaded values.
bool upload_then_compute(bool with_event) {
    StreamPair streams;
    PinnedBuffer staging(kCount);
    staging.fill(2.0f);
    DeviceBuffer<float> batch(kCount);  // fresh: 0xFF bytes, NaN
    DeviceBuffer<float> result(kCount);
    Event uploaded;
    REQUIRE(cudaMemcpyAsync(batch.get(), staging.data, kCount * sizeof(float), cudaMemcpyHostToDevice,
                            streams.copy) == cudaSuccess);
    if (with_event) {
        REQUIRE(cudaEventRecord(uploaded.event, streams.copy) == cudaSuccess);
        REQUIRE(cudaStreamWaitEvent(streams.compute, uploaded.event, 0) == cudaSuccess);
    }
    REQUIRE(launch_copy(batch.get(), result.get(), streams.compute) == cudaSuccess);
    REQUIRE(cudaStreamSynchronize(streams.compute) == cudaSuccess);
    REQUIRE(cudaStreamSynchronize(streams.copy) == cudaSuccess);
    return all_equal(result.download(), 2.0f);
}

// The compute stream reads a buffer; the host then lets the copy stream overwrite it. Returns true
// if the compute stream read the old contents.
bool compute_then_overwrite(bool with_event) {
    StreamPair streams;
    DeviceBuffer<float> buffer(kCount);
    DeviceBuffer<float> result(kCount);
    REQUIRE(launch_fill(buffer.get(), 1.0f, streams.compute) == cudaSuccess);
    REQUIRE(cudaStreamSynchronize(streams.compute) == cudaSuccess);
    Event consumed;
    REQUIRE(launch_copy(buffer.get(), result.get(), streams.compute) == cudaSuccess);
    if (with_event) {
        REQUIRE(cudaEventRecord(consumed.event, streams.compute) == cudaSuccess);
        REQUIRE(cudaStreamWaitEvent(streams.copy, consumed.event, 0) == cudaSuccess);
    }
    REQUIRE(cudaMemsetAsync(buffer.get(), 0, kCount * sizeof(float), streams.copy) == cudaSuccess);
    REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
    return all_equal(result.download(), 1.0f);
}

}  // namespace

TEST_CASE("deferred streams: a kernel that does not wait for the upload reads unwritten memory",
          "[cudaemu][streams]") {
    int stale = 0;
    for (const std::uint64_t seed : kSeeds) {
        StreamModeGuard deferred(StreamMode::deferred, seed);
        stale += upload_then_compute(false) ? 0 : 1;
    }
    INFO(stale << " of 8 seeds ran the kernel before the copy");
    CHECK(stale > 0);
    CHECK(stale < 8);  // both orders occur
    for (const std::uint64_t seed : kSeeds) {
        StreamModeGuard deferred(StreamMode::deferred, seed);
        INFO("seed " << seed);
        CHECK(upload_then_compute(true));
    }
}

TEST_CASE("deferred streams: a buffer overwritten while another stream still reads it gives wrong data",
          "[cudaemu][streams]") {
    int overwritten = 0;
    for (const std::uint64_t seed : kSeeds) {
        StreamModeGuard deferred(StreamMode::deferred, seed);
        overwritten += compute_then_overwrite(false) ? 0 : 1;
    }
    INFO(overwritten << " of 8 seeds overwrote the buffer before the kernel read it");
    CHECK(overwritten > 0);
    CHECK(overwritten < 8);
    for (const std::uint64_t seed : kSeeds) {
        StreamModeGuard deferred(StreamMode::deferred, seed);
        INFO("seed " << seed);
        CHECK(compute_then_overwrite(true));
    }
}

TEST_CASE("deferred streams: the same seed and calls give the same schedule", "[cudaemu][streams]") {
    std::vector<bool> first;
    std::vector<bool> second;
    for (const std::uint64_t seed : kSeeds) {
        StreamModeGuard deferred(StreamMode::deferred, seed);
        first.push_back(upload_then_compute(false));
    }
    for (const std::uint64_t seed : kSeeds) {
        StreamModeGuard deferred(StreamMode::deferred, seed);
        second.push_back(upload_then_compute(false));
    }
    CHECK(first == second);
}

TEST_CASE("deferred streams: a copy to pinned memory is visible only after synchronization", "[cudaemu][streams]") {
    int unwritten = 0;
    for (const std::uint64_t seed : kSeeds) {
        StreamModeGuard deferred(StreamMode::deferred, seed);
        StreamPair streams;
        DeviceBuffer<float> source(kCount);
        REQUIRE(launch_fill(source.get(), 5.0f, streams.copy) == cudaSuccess);
        PinnedBuffer host(kCount);
        host.fill(-1.0f);
        REQUIRE(cudaMemcpyAsync(host.data, source.get(), kCount * sizeof(float), cudaMemcpyDeviceToHost,
                                streams.copy) == cudaSuccess);
        unwritten += all_equal(host.data, -1.0f) ? 1 : 0;
        REQUIRE(cudaStreamSynchronize(streams.copy) == cudaSuccess);
        INFO("seed " << seed);
        CHECK(all_equal(host.data, 5.0f));
    }
    CHECK(unwritten > 0);
}

TEST_CASE("deferred streams: the legacy default stream waits for blocking streams only", "[cudaemu][streams]") {
    int stale_non_blocking = 0;
    for (const std::uint64_t seed : kSeeds) {
        StreamModeGuard deferred(StreamMode::deferred, seed);
        cudaStream_t blocking = nullptr;
        cudaStream_t non_blocking = nullptr;
        REQUIRE(cudaStreamCreate(&blocking) == cudaSuccess);
        REQUIRE(cudaStreamCreateWithFlags(&non_blocking, cudaStreamNonBlocking) == cudaSuccess);
        DeviceBuffer<float> a(kCount);
        DeviceBuffer<float> b(kCount);
        REQUIRE(launch_fill(a.get(), 3.0f, blocking) == cudaSuccess);
        REQUIRE(launch_fill(b.get(), 4.0f, non_blocking) == cudaSuccess);
        // cudaMemcpy to the host runs on the legacy stream and returns when the copy is done.
        INFO("seed " << seed);
        CHECK(all_equal(a.download(), 3.0f));
        stale_non_blocking += all_equal(b.download(), 4.0f) ? 0 : 1;
        REQUIRE(cudaStreamDestroy(blocking) == cudaSuccess);
        REQUIRE(cudaStreamDestroy(non_blocking) == cudaSuccess);
    }
    CHECK(stale_non_blocking > 0);
}

TEST_CASE("deferred streams: cudaEventQuery answers NotReady without an error, then completes",
          "[cudaemu][streams]") {
    int not_ready_seeds = 0;
    for (const std::uint64_t seed : kSeeds) {
        StreamModeGuard deferred(StreamMode::deferred, seed);
        StreamPair streams;
        DeviceBuffer<float> out(kCount);
        Event done;
        REQUIRE(launch_fill(out.get(), 7.0f, streams.compute) == cudaSuccess);
        REQUIRE(cudaEventRecord(done.event, streams.compute) == cudaSuccess);
        cudaGetLastError();
        const auto errors = cudaemu::error_count();
        int polls = 0;
        cudaError_t status = cudaSuccess;
        while ((status = cudaEventQuery(done.event)) == cudaErrorNotReady) {
            ++polls;
        }
        INFO("seed " << seed);
        CHECK(status == cudaSuccess);
        CHECK(polls <= 2);  // each NotReady answer runs one operation of the stream
        not_ready_seeds += polls > 0 ? 1 : 0;
        CHECK(cudaGetLastError() == cudaSuccess);  // cudaErrorNotReady is not an error
        CHECK(cudaemu::error_count() == errors);
        CHECK(cudaStreamQuery(streams.compute) == cudaSuccess);
        CHECK(all_equal(out.download(), 7.0f));
    }
    CHECK(not_ready_seeds > 0);
}

TEST_CASE("deferred streams: cudaStreamQuery polling terminates", "[cudaemu][streams]") {
    StreamModeGuard deferred(StreamMode::deferred, 3);
    StreamPair streams;
    DeviceBuffer<float> out(kCount);
    for (int i = 0; i < 5; ++i) {
        REQUIRE(launch_fill(out.get(), static_cast<float>(i), streams.compute) == cudaSuccess);
    }
    while (cudaStreamQuery(streams.compute) == cudaErrorNotReady) {
    }
    CHECK(cudaGetLastError() == cudaSuccess);
    CHECK(all_equal(out.download(), 4.0f));
}

TEST_CASE("deferred streams: events take their time when they run, and elapsed time waits for both",
          "[cudaemu][streams]") {
    int not_ready_seeds = 0;
    for (const std::uint64_t seed : kSeeds) {
        StreamModeGuard deferred(StreamMode::deferred, seed);
        StreamPair streams;
        Event start(cudaEventDefault);
        Event stop(cudaEventDefault);
        REQUIRE(cudaEventRecord(start.event, streams.compute) == cudaSuccess);
        REQUIRE(cudaEventRecord(stop.event, streams.compute) == cudaSuccess);
        const auto errors = cudaemu::error_count();
        float ms = -1.0f;
        const cudaError_t early = cudaEventElapsedTime(&ms, start.event, stop.event);
        INFO("seed " << seed);
        CHECK((early == cudaSuccess || early == cudaErrorNotReady));
        not_ready_seeds += early == cudaErrorNotReady ? 1 : 0;
        CHECK(cudaemu::error_count() == errors);
        REQUIRE(cudaEventSynchronize(stop.event) == cudaSuccess);
        REQUIRE(cudaEventElapsedTime(&ms, start.event, stop.event) == cudaSuccess);
        CHECK(ms >= 0.0f);
        CHECK(ms < 1000.0f);
    }
    CHECK(not_ready_seeds > 0);
}

TEST_CASE("deferred streams: a wait refers to the record made before it, not to a later one",
          "[cudaemu][streams]") {
    int later_record_pending = 0;
    for (const std::uint64_t seed : kSeeds) {
        StreamModeGuard deferred(StreamMode::deferred, seed);
        StreamPair streams;
        DeviceBuffer<float> first(kCount);
        DeviceBuffer<float> second(kCount);
        DeviceBuffer<float> seen_first(kCount);
        DeviceBuffer<float> seen_second(kCount);
        Event ready;
        REQUIRE(launch_fill(first.get(), 1.0f, streams.copy) == cudaSuccess);
        REQUIRE(cudaEventRecord(ready.event, streams.copy) == cudaSuccess);
        REQUIRE(cudaStreamWaitEvent(streams.compute, ready.event, 0) == cudaSuccess);
        REQUIRE(launch_copy(first.get(), seen_first.get(), streams.compute) == cudaSuccess);
        // Recording again moves the event, not the wait already queued on the compute stream.
        REQUIRE(launch_fill(second.get(), 2.0f, streams.copy) == cudaSuccess);
        REQUIRE(cudaEventRecord(ready.event, streams.copy) == cudaSuccess);
        REQUIRE(cudaStreamSynchronize(streams.compute) == cudaSuccess);
        later_record_pending += cudaEventQuery(ready.event) == cudaErrorNotReady ? 1 : 0;
        // A wait issued now refers to the second record.
        REQUIRE(cudaStreamWaitEvent(streams.compute, ready.event, 0) == cudaSuccess);
        REQUIRE(launch_copy(second.get(), seen_second.get(), streams.compute) == cudaSuccess);
        REQUIRE(cudaStreamSynchronize(streams.compute) == cudaSuccess);
        INFO("seed " << seed);
        CHECK(all_equal(seen_first.download(), 1.0f));
        CHECK(all_equal(seen_second.download(), 2.0f));
    }
    CHECK(later_record_pending > 0);
}

TEST_CASE("deferred streams: waiting on a never-recorded event orders nothing", "[cudaemu][streams]") {
    StreamModeGuard deferred(StreamMode::deferred, 1);
    StreamPair streams;
    Event never;
    CHECK(cudaStreamWaitEvent(streams.compute, never.event, 0) == cudaSuccess);
    CHECK(cudaEventQuery(never.event) == cudaSuccess);
    CHECK(cudaEventSynchronize(never.event) == cudaSuccess);
    CHECK(cudaStreamSynchronize(streams.compute) == cudaSuccess);
}

TEST_CASE("deferred streams: destroying a stream completes its queued work", "[cudaemu][streams]") {
    int pending_at_destroy = 0;
    for (const std::uint64_t seed : kSeeds) {
        StreamModeGuard deferred(StreamMode::deferred, seed);
        cudaStream_t stream = nullptr;
        REQUIRE(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking) == cudaSuccess);
        DeviceBuffer<float> source(kCount);
        PinnedBuffer host(kCount);
        host.fill(-1.0f);
        REQUIRE(launch_fill(source.get(), 6.0f, stream) == cudaSuccess);
        REQUIRE(cudaMemcpyAsync(host.data, source.get(), kCount * sizeof(float), cudaMemcpyDeviceToHost, stream) ==
                cudaSuccess);
        pending_at_destroy += all_equal(host.data, 6.0f) ? 0 : 1;
        REQUIRE(cudaStreamDestroy(stream) == cudaSuccess);
        INFO("seed " << seed);
        CHECK(all_equal(host.data, 6.0f));
    }
    CHECK(pending_at_destroy > 0);
}

TEST_CASE("deferred streams: cudaFree and cudaFreeHost complete all queued work", "[cudaemu][streams]") {
    for (const std::uint64_t seed : kSeeds) {
        StreamModeGuard deferred(StreamMode::deferred, seed);
        StreamPair streams;
        DeviceBuffer<float> source(kCount);
        PinnedBuffer host(kCount);
        host.fill(-1.0f);
        REQUIRE(launch_fill(source.get(), 8.0f, streams.compute) == cudaSuccess);
        REQUIRE(cudaMemcpyAsync(host.data, source.get(), kCount * sizeof(float), cudaMemcpyDeviceToHost,
                                streams.compute) == cudaSuccess);
        void* unrelated = nullptr;
        REQUIRE(cudaMalloc(&unrelated, 64) == cudaSuccess);
        REQUIRE(cudaFree(unrelated) == cudaSuccess);
        INFO("seed " << seed);
        CHECK(all_equal(host.data, 8.0f));

        // Freeing the pinned source of a queued upload runs the upload first.
        float* staging = nullptr;
        REQUIRE(cudaMallocHost(&staging, kCount * sizeof(float)) == cudaSuccess);
        for (int i = 0; i < kCount; ++i) {
            staging[i] = 9.0f;
        }
        REQUIRE(cudaMemcpyAsync(source.get(), staging, kCount * sizeof(float), cudaMemcpyHostToDevice,
                                streams.copy) == cudaSuccess);
        REQUIRE(cudaFreeHost(staging) == cudaSuccess);
        REQUIRE(cudaStreamSynchronize(streams.copy) == cudaSuccess);
        CHECK(all_equal(source.download(), 9.0f));
    }
}

TEST_CASE("deferred streams: a pageable upload is staged when it is called", "[cudaemu][streams]") {
    for (const std::uint64_t seed : kSeeds) {
        StreamModeGuard deferred(StreamMode::deferred, seed);
        StreamPair streams;
        DeviceBuffer<float> device(kCount);
        std::vector<float> pageable(kCount, 1.0f);
        REQUIRE(cudaMemcpyAsync(device.get(), pageable.data(), kCount * sizeof(float), cudaMemcpyHostToDevice,
                                streams.copy) == cudaSuccess);
        pageable.assign(kCount, 2.0f);  // allowed: the driver staged the bytes
        REQUIRE(cudaStreamSynchronize(streams.copy) == cudaSuccess);
        INFO("seed " << seed);
        CHECK(all_equal(device.download(), 1.0f));
    }
}

TEST_CASE("deferred streams: cuBLAS runs after the work queued before it on its stream", "[cudaemu][streams]") {
    constexpr int n = 16;
    for (const std::uint64_t seed : kSeeds) {
        StreamModeGuard deferred(StreamMode::deferred, seed);
        StreamPair streams;
        cublasHandle_t handle = nullptr;
        REQUIRE(cublasCreate(&handle) == CUBLAS_STATUS_SUCCESS);
        REQUIRE(cublasSetStream(handle, streams.compute) == CUBLAS_STATUS_SUCCESS);
        DeviceBuffer<float> a(n * n);
        DeviceBuffer<float> b(n * n);
        DeviceBuffer<float> c(n * n);
        // a = 1, b = 2 everywhere, written by queued work only.
        REQUIRE(cudaemu::launch(streams_fill_kernel, 1, n * n, 0, streams.compute, a.get(), 1.0f, n * n) == cudaSuccess);
        REQUIRE(cudaemu::launch(streams_fill_kernel, 1, n * n, 0, streams.compute, b.get(), 2.0f, n * n) == cudaSuccess);
        const float one = 1.0f;
        const float zero = 0.0f;
        REQUIRE(cublasSgemm(handle, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one, a.get(), n, b.get(), n, &zero, c.get(), n) ==
                CUBLAS_STATUS_SUCCESS);
        REQUIRE(cudaStreamSynchronize(streams.compute) == cudaSuccess);
        INFO("seed " << seed);
        CHECK(all_equal(c.download(), 2.0f * n));
        REQUIRE(cublasDestroy(handle) == CUBLAS_STATUS_SUCCESS);
    }
}

TEST_CASE("deferred streams: a kernel failing when it runs is returned by the next synchronization",
          "[cudaemu][streams]") {
    StreamModeGuard deferred(StreamMode::deferred, 1);
    StreamPair streams;
    DeviceBuffer<float> data(kCount);
    cudaGetLastError();
    const auto errors = cudaemu::error_count();
    REQUIRE(cudaemu::launch(streams_partial_barrier_kernel, 1, kCount, 0, streams.compute, data.get(), 200) == cudaSuccess);
    CHECK(cudaStreamSynchronize(streams.compute) == cudaErrorLaunchFailure);
    CHECK(cudaGetLastError() == cudaErrorLaunchFailure);
    CHECK(cudaemu::error_count() == errors + 1);
    CHECK(cudaemu::last_error_message().find("streams_partial_barrier_kernel") != std::string::npos);
    // Returned once; the streams keep working.
    CHECK(cudaDeviceSynchronize() == cudaSuccess);
    REQUIRE(launch_fill(data.get(), 1.0f, streams.compute) == cudaSuccess);
    CHECK(cudaStreamSynchronize(streams.compute) == cudaSuccess);
    CHECK(all_equal(data.download(), 1.0f));
}

TEST_CASE("deferred streams: a loader thread and a compute thread share a batch buffer through events",
          "[cudaemu][streams]") {
    StreamModeGuard deferred(StreamMode::deferred, 5);
    StreamPair streams;
    constexpr int kRounds = 40;
    DeviceBuffer<float> batch(kCount);
    DeviceBuffer<float> result(kCount);
    std::vector<cudaEvent_t> uploaded(kRounds);
    for (cudaEvent_t& e : uploaded) {
        REQUIRE(cudaEventCreateWithFlags(&e, cudaEventDisableTiming) == cudaSuccess);
    }
    std::atomic<int> rounds_uploaded{0};
    std::atomic<int> rounds_consumed{0};
    std::atomic<bool> loader_failed{false};
    // Both threads hold the emulator's scheduler while queued work runs; neither may wait forever.
    std::thread loader([&] {
        for (int round = 0; round < kRounds; ++round) {
            while (rounds_consumed.load() < round) {
                std::this_thread::yield();
            }
            const std::vector<float> values(kCount, static_cast<float>(round));
            loader_failed = loader_failed || cudaMemcpyAsync(batch.get(), values.data(), kCount * sizeof(float),
                                                             cudaMemcpyHostToDevice, streams.copy) != cudaSuccess;
            loader_failed = loader_failed || cudaEventRecord(uploaded[round], streams.copy) != cudaSuccess;
            rounds_uploaded.store(round + 1);
            while (cudaStreamQuery(streams.copy) == cudaErrorNotReady) {
            }
        }
    });
    for (int round = 0; round < kRounds; ++round) {
        while (rounds_uploaded.load() <= round) {
            std::this_thread::yield();
        }
        REQUIRE(cudaStreamWaitEvent(streams.compute, uploaded[round], 0) == cudaSuccess);
        REQUIRE(launch_copy(batch.get(), result.get(), streams.compute) == cudaSuccess);
        REQUIRE(cudaStreamSynchronize(streams.compute) == cudaSuccess);
        REQUIRE(all_equal(result.download(), static_cast<float>(round)));
        rounds_consumed.store(round + 1);
    }
    loader.join();
    CHECK_FALSE(loader_failed.load());
    for (cudaEvent_t e : uploaded) {
        cudaEventDestroy(e);
    }
}

TEST_CASE("eager streams: every operation has run when its call returns", "[cudaemu][streams]") {
    StreamModeGuard eager(StreamMode::eager);
    StreamPair streams;
    DeviceBuffer<float> batch(kCount);
    PinnedBuffer host(kCount);
    host.fill(3.0f);
    REQUIRE(cudaMemcpyAsync(batch.get(), host.data, kCount * sizeof(float), cudaMemcpyHostToDevice, streams.copy) ==
            cudaSuccess);
    DeviceBuffer<float> result(kCount);
    REQUIRE(launch_copy(batch.get(), result.get(), streams.compute) == cudaSuccess);
    host.fill(0.0f);
    REQUIRE(cudaMemcpyAsync(host.data, result.get(), kCount * sizeof(float), cudaMemcpyDeviceToHost, streams.copy) ==
            cudaSuccess);
    CHECK(all_equal(host.data, 3.0f));
    Event done;
    REQUIRE(cudaEventRecord(done.event, streams.compute) == cudaSuccess);
    CHECK(cudaEventQuery(done.event) == cudaSuccess);
    CHECK(cudaStreamQuery(streams.copy) == cudaSuccess);
}

namespace {

// How many host synchronizations `call` counted.
template <class F>
std::uint64_t host_waits(F&& call) {
    const std::uint64_t before = cudaemu::host_synchronization_count();
    call();
    return cudaemu::host_synchronization_count() - before;
}

// Two streams, two device buffers and a pinned one, in a stream mode and schedule seed.
struct CopyEndpoints {
    StreamModeGuard guard;
    StreamPair streams;
    DeviceBuffer<float> device{kCount};
    DeviceBuffer<float> other{kCount};
    PinnedBuffer pinned{kCount};
    const std::size_t bytes = kCount * sizeof(float);
    CopyEndpoints(StreamMode mode, std::uint64_t seed) : guard(mode, seed) {}
};

const char* mode_name(StreamMode mode) { return mode == StreamMode::eager ? "eager" : "deferred"; }

}  // namespace

TEST_CASE("host synchronization count: each call that makes the host wait counts once, in both modes",
          "[cudaemu][streams]") {
    for (StreamMode mode : {StreamMode::eager, StreamMode::deferred}) {
        INFO(mode_name(mode));
        CopyEndpoints at(mode, 3);
        std::vector<float> pageable(kCount, 1.0f), pageable_copy(kCount);
        Event event;
        REQUIRE(launch_fill(at.device.get(), 1.0f, at.streams.compute) == cudaSuccess);
        REQUIRE(cudaEventRecord(event.event, at.streams.compute) == cudaSuccess);
        CHECK(host_waits([&] { REQUIRE(cudaDeviceSynchronize() == cudaSuccess); }) == 1);
        CHECK(host_waits([&] { REQUIRE(cudaStreamSynchronize(at.streams.compute) == cudaSuccess); }) == 1);
        CHECK(host_waits([&] { REQUIRE(cudaEventSynchronize(event.event) == cudaSuccess); }) == 1);
        // cudaMemcpy: every direction but device to device.
        CHECK(host_waits([&] {
                  REQUIRE(cudaMemcpy(pageable.data(), at.device.get(), at.bytes, cudaMemcpyDeviceToHost) ==
                          cudaSuccess);
              }) == 1);
        CHECK(host_waits([&] {
                  REQUIRE(cudaMemcpy(at.device.get(), pageable.data(), at.bytes, cudaMemcpyHostToDevice) ==
                          cudaSuccess);
              }) == 1);
        CHECK(host_waits([&] {
                  REQUIRE(cudaMemcpy(at.device.get(), at.pinned.data, at.bytes, cudaMemcpyHostToDevice) == cudaSuccess);
              }) == 1);
        CHECK(host_waits([&] {
                  REQUIRE(cudaMemcpy(at.pinned.data, at.device.get(), at.bytes, cudaMemcpyDeviceToHost) == cudaSuccess);
              }) == 1);
        CHECK(host_waits([&] {
                  REQUIRE(cudaMemcpy(pageable_copy.data(), pageable.data(), at.bytes, cudaMemcpyHostToHost) ==
                          cudaSuccess);
              }) == 1);
        CHECK(host_waits([&] {
                  REQUIRE(cudaMemcpy(at.other.get(), at.device.get(), at.bytes, cudaMemcpyDeviceToDevice) ==
                          cudaSuccess);
              }) == 0);
        // cudaMemcpyAsync: pageable memory on either side, or host to host.
        CHECK(host_waits([&] {
                  REQUIRE(cudaMemcpyAsync(pageable.data(), at.device.get(), at.bytes, cudaMemcpyDeviceToHost,
                                          at.streams.compute) == cudaSuccess);
              }) == 1);
        CHECK(host_waits([&] {
                  REQUIRE(cudaMemcpyAsync(at.device.get(), pageable.data(), at.bytes, cudaMemcpyHostToDevice,
                                          at.streams.compute) == cudaSuccess);
              }) == 1);
        CHECK(host_waits([&] {
                  REQUIRE(cudaMemcpyAsync(at.pinned.data, pageable.data(), at.bytes, cudaMemcpyHostToHost,
                                          at.streams.compute) == cudaSuccess);
              }) == 1);
        // cudaFree and cudaFreeHost of live allocations; cudaFree(nullptr) does nothing.
        void* scratch = nullptr;
        void* pinned_scratch = nullptr;
        CHECK(host_waits([&] {
                  REQUIRE(cudaMalloc(&scratch, 64) == cudaSuccess);
                  REQUIRE(cudaMallocHost(&pinned_scratch, 64) == cudaSuccess);
              }) == 0);
        CHECK(host_waits([&] { REQUIRE(cudaFree(scratch) == cudaSuccess); }) == 1);
        CHECK(host_waits([&] { REQUIRE(cudaFreeHost(pinned_scratch) == cudaSuccess); }) == 1);
        CHECK(host_waits([&] { REQUIRE(cudaFree(nullptr) == cudaSuccess); }) == 0);
        REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
    }
}

TEST_CASE("host synchronization count: launches, pinned and device copies, events and queries do not count",
          "[cudaemu][streams]") {
    for (StreamMode mode : {StreamMode::eager, StreamMode::deferred}) {
        INFO(mode_name(mode));
        CopyEndpoints at(mode, 5);
        at.pinned.fill(2.0f);
        Event uploaded;
        const std::uint64_t waits = host_waits([&] {
            REQUIRE(cudaMemcpyAsync(at.device.get(), at.pinned.data, at.bytes, cudaMemcpyHostToDevice,
                                    at.streams.copy) == cudaSuccess);
            REQUIRE(cudaEventRecord(uploaded.event, at.streams.copy) == cudaSuccess);
            REQUIRE(cudaStreamWaitEvent(at.streams.compute, uploaded.event, 0) == cudaSuccess);
            REQUIRE(launch_copy(at.device.get(), at.other.get(), at.streams.compute) == cudaSuccess);
            REQUIRE(cudaMemcpyAsync(at.device.get(), at.other.get(), at.bytes, cudaMemcpyDeviceToDevice,
                                    at.streams.compute) == cudaSuccess);
            REQUIRE(cudaMemsetAsync(at.other.get(), 0, at.bytes, at.streams.compute) == cudaSuccess);
            REQUIRE(cudaMemset(at.other.get(), 0, at.bytes) == cudaSuccess);
            REQUIRE(cudaMemcpyAsync(at.pinned.data, at.device.get(), at.bytes, cudaMemcpyDeviceToHost,
                                    at.streams.compute) == cudaSuccess);
            // Queries poll; they never wait.
            while (cudaStreamQuery(at.streams.compute) == cudaErrorNotReady) {
            }
            while (cudaEventQuery(uploaded.event) == cudaErrorNotReady) {
            }
        });
        CHECK(waits == 0);
        // The work ran (the queries drove it): the pinned buffer holds the upload's values.
        CHECK(all_equal(at.pinned.data, 2.0f));
    }
}
