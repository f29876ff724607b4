// Tests of the emulated CUDA runtime: device description, allocation (poisoning, capacity,
// counters, invalid frees, guard zones), copies, memsets, streams, events and error reporting,
// each against the behaviour the CUDA Runtime API reference documents.
#include <catch2/catch.hpp>

#include <chrono>
#include <cmath>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "cuda_runtime.h"
#include "cudaemu/control.h"
#include "test_support.h"

using test_support::DeviceBuffer;

namespace {

// Restores the device capacity when a test that shrinks it ends.
struct CapacityGuard {
    std::size_t saved = cudaemu::device_memory_capacity();
    ~CapacityGuard() { cudaemu::set_device_memory_capacity(saved); }
};

}  // namespace

TEST_CASE("the emulated device is one sm_90 GPU", "[cudaemu][runtime]") {
    int count = 0;
    REQUIRE(cudaGetDeviceCount(&count) == cudaSuccess);
    CHECK(count == 1);
    cudaDeviceProp prop;
    REQUIRE(cudaGetDeviceProperties(&prop, 0) == cudaSuccess);
    CHECK(std::string(prop.name).find("emulation") != std::string::npos);
    CHECK(prop.major == 9);
    CHECK(prop.minor == 0);
    CHECK(prop.warpSize == 32);
    CHECK(prop.maxThreadsPerBlock == 1024);
    CHECK(prop.sharedMemPerBlock == 48 * 1024);
    CHECK(prop.sharedMemPerBlockOptin == 232448);
    CHECK(prop.multiProcessorCount > 0);
    CHECK(prop.totalGlobalMem == cudaemu::device_memory_capacity());
    CHECK(cudaSetDevice(0) == cudaSuccess);
    CHECK(cudaSetDevice(1) == cudaErrorInvalidDevice);
    CHECK(cudaGetLastError() == cudaErrorInvalidDevice);
    CHECK(cudaGetDeviceProperties(&prop, 3) == cudaErrorInvalidDevice);
    int device = -1;
    CHECK(cudaGetDevice(&device) == cudaSuccess);
    CHECK(device == 0);
    int sms = 0;
    CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0) == cudaSuccess);
    CHECK(sms == prop.multiProcessorCount);
    // The clocks of an H100 SXM: 132 SMs at 1980 MHz, 5120-bit HBM3 at 2619 MHz (3.35 TB/s).
    int clock = 0, memory_clock = 0, bus = 0;
    CHECK(cudaDeviceGetAttribute(&clock, cudaDevAttrClockRate, 0) == cudaSuccess);
    CHECK(cudaDeviceGetAttribute(&memory_clock, cudaDevAttrMemoryClockRate, 0) == cudaSuccess);
    CHECK(cudaDeviceGetAttribute(&bus, cudaDevAttrGlobalMemoryBusWidth, 0) == cudaSuccess);
    CHECK(clock == 1980000);
    CHECK(bus == prop.memoryBusWidth);
    CHECK(2.0 * memory_clock * 1e3 * bus / 8 == Approx(3.35e12).epsilon(0.001));
    cudaGetLastError();
}

TEST_CASE("last error: cudaGetLastError resets, cudaPeekAtLastError does not", "[cudaemu][runtime]") {
    cudaGetLastError();
    CHECK(cudaPeekAtLastError() == cudaSuccess);
    void* p = nullptr;
    CHECK(cudaFree(reinterpret_cast<void*>(0x1234)) == cudaErrorInvalidValue);
    CHECK(cudaPeekAtLastError() == cudaErrorInvalidValue);
    CHECK(cudaPeekAtLastError() == cudaErrorInvalidValue);
    CHECK(cudaGetLastError() == cudaErrorInvalidValue);
    CHECK(cudaGetLastError() == cudaSuccess);
    REQUIRE(cudaMalloc(&p, 16) == cudaSuccess);
    CHECK(cudaGetLastError() == cudaSuccess);
    CHECK(cudaFree(p) == cudaSuccess);
    CHECK(std::string(cudaGetErrorString(cudaErrorMemoryAllocation)) == "out of memory");
    CHECK(std::string(cudaGetErrorName(cudaErrorInvalidConfiguration)) == "cudaErrorInvalidConfiguration");
    CHECK(std::string(cudaGetErrorString(static_cast<cudaError_t>(12345))) == "unrecognized error code");
}

TEST_CASE("fresh device memory reads back as NaN", "[cudaemu][runtime]") {
    DeviceBuffer<float> floats(1000);
    DeviceBuffer<double> doubles(10);
    REQUIRE(floats.get() != nullptr);
    for (float v : floats.download()) {
        REQUIRE(std::isnan(v));
    }
    for (double v : doubles.download()) {
        REQUIRE(std::isnan(v));
    }
    CHECK(reinterpret_cast<std::uintptr_t>(floats.get()) % 256 == 0);
}

TEST_CASE("cudaMalloc beyond the device capacity fails with cudaErrorMemoryAllocation", "[cudaemu][runtime]") {
    CapacityGuard guard;
    const std::size_t in_use = cudaemu::memory_stats().bytes_in_use;
    cudaemu::set_device_memory_capacity(in_use + (1 << 20));
    void* a = nullptr;
    void* b = nullptr;
    REQUIRE(cudaMalloc(&a, 600 * 1024) == cudaSuccess);
    const auto before = cudaemu::memory_stats();
    CHECK(cudaMalloc(&b, 600 * 1024) == cudaErrorMemoryAllocation);
    CHECK(b == nullptr);
    CHECK(cudaGetLastError() == cudaErrorMemoryAllocation);
    CHECK(cudaemu::memory_stats().failed_malloc_calls == before.failed_malloc_calls + 1);
    std::size_t free_bytes = 0;
    std::size_t total = 0;
    REQUIRE(cudaMemGetInfo(&free_bytes, &total) == cudaSuccess);
    CHECK(total == in_use + (1 << 20));
    CHECK(free_bytes == (1 << 20) - 600 * 1024);
    REQUIRE(cudaFree(a) == cudaSuccess);
    CHECK(cudaMalloc(&b, 600 * 1024) == cudaSuccess);
    CHECK(cudaFree(b) == cudaSuccess);
}

TEST_CASE("allocation counters count calls and bytes", "[cudaemu][runtime]") {
    cudaemu::reset_memory_counters();
    const auto start = cudaemu::memory_stats();
    CHECK(start.malloc_calls == 0);
    void* a = nullptr;
    void* b = nullptr;
    REQUIRE(cudaMalloc(&a, 1000) == cudaSuccess);
    REQUIRE(cudaMalloc(&b, 24) == cudaSuccess);
    auto mid = cudaemu::memory_stats();
    CHECK(mid.malloc_calls == 2);
    CHECK(mid.bytes_in_use == start.bytes_in_use + 1024);
    CHECK(mid.live_allocations == start.live_allocations + 2);
    CHECK(mid.peak_bytes_in_use >= mid.bytes_in_use);
    REQUIRE(cudaFree(a) == cudaSuccess);
    REQUIRE(cudaFree(b) == cudaSuccess);
    CHECK(cudaFree(nullptr) == cudaSuccess);
    const auto end = cudaemu::memory_stats();
    CHECK(end.free_calls == 2);
    CHECK(end.bytes_in_use == start.bytes_in_use);
    void* empty = reinterpret_cast<void*>(1);
    CHECK(cudaMalloc(&empty, 0) == cudaSuccess);
    CHECK(empty == nullptr);
}

TEST_CASE("double frees and foreign pointers are rejected with cudaErrorInvalidValue", "[cudaemu][runtime]") {
    void* p = nullptr;
    REQUIRE(cudaMalloc(&p, 64) == cudaSuccess);
    REQUIRE(cudaFree(p) == cudaSuccess);
    CHECK(cudaFree(p) == cudaErrorInvalidValue);
    int host = 0;
    CHECK(cudaFree(&host) == cudaErrorInvalidValue);
    REQUIRE(cudaMalloc(&p, 64) == cudaSuccess);
    CHECK(cudaFree(static_cast<char*>(p) + 4) == cudaErrorInvalidValue);
    CHECK(cudaFreeHost(p) == cudaErrorInvalidValue);
    CHECK(cudaFree(p) == cudaSuccess);
    void* pinned = nullptr;
    REQUIRE(cudaMallocHost(&pinned, 64) == cudaSuccess);
    CHECK(cudaFree(pinned) == cudaErrorInvalidValue);
    CHECK(cudaFreeHost(pinned) == cudaSuccess);
    CHECK(cudaFreeHost(pinned) == cudaErrorInvalidValue);
    cudaGetLastError();
}

TEST_CASE("cudaMemcpy checks the direction against the pointers", "[cudaemu][runtime]") {
    const std::vector<float> host = test_support::random_floats(64, 1);
    std::vector<float> back(64, 0.0f);
    DeviceBuffer<float> a(64);
    DeviceBuffer<float> b(64);
    REQUIRE(cudaMemcpy(a.get(), host.data(), 256, cudaMemcpyHostToDevice) == cudaSuccess);
    REQUIRE(cudaMemcpy(b.get(), a.get(), 256, cudaMemcpyDeviceToDevice) == cudaSuccess);
    REQUIRE(cudaMemcpy(back.data(), b.get(), 256, cudaMemcpyDeviceToHost) == cudaSuccess);
    CHECK(back == host);

    std::vector<float> via_default(64, 0.0f);
    DeviceBuffer<float> c(64);
    REQUIRE(cudaMemcpy(c.get(), host.data(), 256, cudaMemcpyDefault) == cudaSuccess);
    REQUIRE(cudaMemcpyAsync(via_default.data(), c.get(), 256, cudaMemcpyDefault, nullptr) == cudaSuccess);
    CHECK(via_default == host);
    std::vector<float> host_copy(64, 0.0f);
    REQUIRE(cudaMemcpy(host_copy.data(), host.data(), 256, cudaMemcpyHostToHost) == cudaSuccess);
    CHECK(host_copy == host);

    CHECK(cudaMemcpy(back.data(), a.get(), 256, cudaMemcpyHostToDevice) == cudaErrorInvalidValue);
    CHECK(cudaMemcpy(a.get(), back.data(), 256, cudaMemcpyDeviceToHost) == cudaErrorInvalidValue);
    CHECK(cudaMemcpy(a.get(), back.data(), 256, cudaMemcpyDeviceToDevice) == cudaErrorInvalidValue);
    CHECK(cudaMemcpy(back.data(), a.get(), 256, cudaMemcpyHostToHost) == cudaErrorInvalidValue);
    CHECK(cudaMemcpy(a.get(), host.data(), 260, cudaMemcpyHostToDevice) == cudaErrorInvalidValue);
    CHECK(cudaMemcpy(a.get() + 1, host.data(), 256, cudaMemcpyHostToDevice) == cudaErrorInvalidValue);
    CHECK(cudaMemcpy(a.get(), host.data(), 4, static_cast<cudaMemcpyKind>(7)) == cudaErrorInvalidMemcpyDirection);
    CHECK(cudaGetLastError() == cudaErrorInvalidMemcpyDirection);
}

TEST_CASE("cudaMemset fills device memory and rejects overruns", "[cudaemu][runtime]") {
    DeviceBuffer<int> a(100);
    REQUIRE(cudaMemset(a.get(), 0, 400) == cudaSuccess);
    REQUIRE(cudaMemsetAsync(a.get() + 50, 1, 200, nullptr) == cudaSuccess);
    const std::vector<int> got = a.download();
    for (int i = 0; i < 100; ++i) {
        REQUIRE(got[i] == (i < 50 ? 0 : 0x01010101));
    }
    CHECK(cudaMemset(a.get(), 0, 404) == cudaErrorInvalidValue);
    int host[4];
    CHECK(cudaMemset(host, 0, sizeof host) == cudaErrorInvalidValue);
    cudaGetLastError();
}

TEST_CASE("pinned host memory is usable from the host and as a copy endpoint", "[cudaemu][runtime]") {
    float* pinned = nullptr;
    REQUIRE(cudaMallocHost(&pinned, 32 * sizeof(float)) == cudaSuccess);
    REQUIRE(std::isnan(pinned[0]));
    for (int i = 0; i < 32; ++i) {
        pinned[i] = static_cast<float>(i);
    }
    DeviceBuffer<float> d(32);
    REQUIRE(cudaMemcpy(d.get(), pinned, 128, cudaMemcpyHostToDevice) == cudaSuccess);
    float* other = nullptr;
    REQUIRE(cudaHostAlloc(&other, 128, cudaHostAllocDefault) == cudaSuccess);
    REQUIRE(cudaMemcpy(other, d.get(), 128, cudaMemcpyDefault) == cudaSuccess);
    CHECK(std::memcmp(other, pinned, 128) == 0);
    cudaPointerAttributes attributes{};
    REQUIRE(cudaPointerGetAttributes(&attributes, other) == cudaSuccess);
    CHECK(attributes.type == cudaMemoryTypeHost);
    REQUIRE(cudaPointerGetAttributes(&attributes, d.get()) == cudaSuccess);
    CHECK(attributes.type == cudaMemoryTypeDevice);
    int local = 0;
    REQUIRE(cudaPointerGetAttributes(&attributes, &local) == cudaSuccess);
    CHECK(attributes.type == cudaMemoryTypeUnregistered);
    CHECK(cudaFreeHost(pinned) == cudaSuccess);
    CHECK(cudaFreeHost(other) == cudaSuccess);
}

TEST_CASE("events measure the wall time between records", "[cudaemu][runtime]") {
    cudaEvent_t start = nullptr;
    cudaEvent_t stop = nullptr;
    cudaStream_t stream = nullptr;
    REQUIRE(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking) == cudaSuccess);
    REQUIRE(cudaEventCreate(&start) == cudaSuccess);
    REQUIRE(cudaEventCreateWithFlags(&stop, cudaEventDefault) == cudaSuccess);
    float ms = -1.0f;
    CHECK(cudaEventElapsedTime(&ms, start, stop) == cudaErrorInvalidResourceHandle);
    REQUIRE(cudaEventRecord(start, stream) == cudaSuccess);
    // An event takes its time when its stream reaches it, which the deferred stream mode may delay
    // until a synchronization: wait for it, so the sleep lies between the two timestamps.
    REQUIRE(cudaEventSynchronize(start) == cudaSuccess);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    REQUIRE(cudaEventRecord(stop, stream) == cudaSuccess);
    REQUIRE(cudaEventSynchronize(stop) == cudaSuccess);
    CHECK(cudaEventQuery(stop) == cudaSuccess);
    REQUIRE(cudaEventElapsedTime(&ms, start, stop) == cudaSuccess);
    CHECK(ms >= 19.0f);
    CHECK(ms < 5000.0f);
    CHECK(cudaStreamWaitEvent(stream, stop, 0) == cudaSuccess);
    CHECK(cudaStreamQuery(stream) == cudaSuccess);
    CHECK(cudaStreamSynchronize(stream) == cudaSuccess);

    cudaEvent_t untimed = nullptr;
    REQUIRE(cudaEventCreateWithFlags(&untimed, cudaEventDisableTiming) == cudaSuccess);
    REQUIRE(cudaEventRecord(untimed, nullptr) == cudaSuccess);
    CHECK(cudaEventElapsedTime(&ms, start, untimed) == cudaErrorInvalidResourceHandle);
    CHECK(cudaEventDestroy(untimed) == cudaSuccess);
    CHECK(cudaEventDestroy(start) == cudaSuccess);
    CHECK(cudaEventDestroy(stop) == cudaSuccess);
    CHECK(cudaEventRecord(start, stream) == cudaErrorInvalidResourceHandle);
    CHECK(cudaStreamDestroy(stream) == cudaSuccess);
    CHECK(cudaStreamSynchronize(stream) == cudaErrorInvalidResourceHandle);
    CHECK(cudaStreamDestroy(stream) == cudaErrorInvalidResourceHandle);
    CHECK(cudaStreamSynchronize(cudaStreamPerThread) == cudaSuccess);
    cudaGetLastError();
}

#if !defined(__SANITIZE_ADDRESS__)
// Under ASan the same host-side overrun is stopped by ASan itself (the guards are poisoned); the
// planted-failure test out_of_bounds covers both builds.
TEST_CASE("an overwritten guard zone is reported by name on free and on synchronize", "[cudaemu][runtime]") {
    unsigned char* p = nullptr;
    REQUIRE(cudaMalloc(&p, 100) == cudaSuccess);
    REQUIRE(cudaemu::set_allocation_label(p, "weights"));
    const auto errors = cudaemu::error_count();
    p[100] = 0;  // one past the end
    CHECK(cudaDeviceSynchronize() == cudaErrorIllegalAddress);
    CHECK(cudaemu::error_count() == errors + 1);
    CHECK(cudaemu::last_error_message().find("'weights'") != std::string::npos);
    CHECK(cudaemu::last_error_message().find("offset 100") != std::string::npos);
    p[-3] = 7;
    CHECK(cudaFree(p) == cudaErrorIllegalAddress);
    CHECK(cudaemu::last_error_message().find("before") != std::string::npos);
    CHECK(cudaemu::check_guard_zones() == 0);
    cudaGetLastError();
}
#endif
