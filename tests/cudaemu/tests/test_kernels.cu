// Kernels written as CUDA C++ and compiled by the host compiler against the emulation headers,
// each checked against an independent CPU computation: elementwise, shared-memory tree reduction,
// warp-shuffle reduction, dynamic shared memory, atomics histogram, warp votes and shuffles (the
// lane arithmetic of the CUDA Programming Guide), block and grid indices; plus launch validation,
// misuse detection and checking mode.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <numeric>
#include <string>
#include <vector>

#include "cuda_runtime.h"
#include "cudaemu/control.h"
#include "dual_build/dual_build_kernels.h"
#include "test_support.h"

using test_support::DeviceBuffer;

// ---- kernels ------------------------------------------------------------------------------------

__global__ void saxpy_kernel(int n, float a, const float* __restrict__ x, float* __restrict__ y) {
    const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
    if (i < n) {
        y[i] = a * x[i] + y[i];
    }
}

// Grid-stride partial sums, then a tree in static shared memory; one partial per block.
template <int kBlock>
__global__ void reduce_shared_kernel(const float* in, float* partial, int n) {
    __shared__ float cache[kBlock];
    const unsigned tid = threadIdx.x;
    float sum = 0.0f;
    for (int i = static_cast<int>(blockIdx.x * blockDim.x + tid); i < n; i += static_cast<int>(blockDim.x * gridDim.x)) {
        sum += in[i];
    }
    cache[tid] = sum;
    __syncthreads();
    for (unsigned stride = blockDim.x / 2; stride > 0; stride >>= 1) {
        if (tid < stride) {
            cache[tid] += cache[tid + stride];
        }
        __syncthreads();
    }
    if (tid == 0) {
        partial[blockIdx.x] = cache[0];
    }
}

__device__ __forceinline__ float warp_sum(float v) {
    for (int offset = 16; offset > 0; offset >>= 1) {
        v += __shfl_down_sync(0xffffffffu, v, static_cast<unsigned>(offset));
    }
    return v;
}

// Warp shuffles, one value per warp in shared memory, a second warp-level pass, atomicAdd.
__global__ void reduce_warp_kernel(const float* in, float* total, int n) {
    __shared__ float warp_sums[32];
    float v = 0.0f;
    for (int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x); i < n; i += static_cast<int>(blockDim.x * gridDim.x)) {
        v += in[i];
    }
    v = warp_sum(v);
    const unsigned lane = threadIdx.x % warpSize;
    const unsigned warp = threadIdx.x / warpSize;
    if (lane == 0) {
        warp_sums[warp] = v;
    }
    __syncthreads();
    if (warp == 0) {
        v = lane < blockDim.x / warpSize ? warp_sums[lane] : 0.0f;
        v = warp_sum(v);
        if (lane == 0) {
            atomicAdd(total, v);
        }
    }
}

// Reverses each block's segment through dynamic shared memory.
__global__ void reverse_blocks_kernel(const float* in, float* out) {
    STRATA_DYNAMIC_SHARED(float, buffer);
    const unsigned t = threadIdx.x;
    const unsigned base = blockIdx.x * blockDim.x;
    buffer[t] = in[base + t];
    __syncthreads();
    out[base + t] = buffer[blockDim.x - 1 - t];
}

// Uses all of a large dynamic shared allocation: each thread fills a stripe, then sums another one.
__global__ void big_shared_kernel(float* out, int floats) {
    STRATA_DYNAMIC_SHARED(float, buffer);
    for (int i = static_cast<int>(threadIdx.x); i < floats; i += static_cast<int>(blockDim.x)) {
        buffer[i] = static_cast<float>(i);
    }
    __syncthreads();
    float sum = 0.0f;
    for (int i = static_cast<int>((threadIdx.x + 1) % blockDim.x); i < floats; i += static_cast<int>(blockDim.x)) {
        sum += buffer[i];
    }
    out[threadIdx.x] = sum;
}

__global__ void histogram_kernel(const unsigned* values, int n, unsigned* bins) {
    __shared__ unsigned local[256];
    for (unsigned b = threadIdx.x; b < 256; b += blockDim.x) {
        local[b] = 0;
    }
    __syncthreads();
    for (int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x); i < n; i += static_cast<int>(blockDim.x * gridDim.x)) {
        atomicAdd(&local[values[i] & 255u], 1u);
    }
    __syncthreads();
    for (unsigned b = threadIdx.x; b < 256; b += blockDim.x) {
        atomicAdd(&bins[b], local[b]);
    }
}

// Per thread: ballot/any/all of a lane predicate, and the block-wide count/and/or.
__global__ void vote_kernel(const int* predicate, unsigned* ballot, int* any, int* all, int* count, int* block_and,
                            int* block_or) {
    const unsigned t = threadIdx.x;
    const int p = predicate[t];
    ballot[t] = __ballot_sync(0xffffffffu, p);
    any[t] = __any_sync(0xffffffffu, p);
    all[t] = __all_sync(0xffffffffu, p);
    count[t] = __syncthreads_count(p);
    block_and[t] = __syncthreads_and(p);
    block_or[t] = __syncthreads_or(p);
}

// Each lane contributes lane*10 + 1 (and a double); records what each shuffle flavour returns.
__global__ void shuffle_kernel(int src_lane, unsigned delta, int lane_mask, int width, int* idx, int* up, int* down,
                               int* bfly, double* idx_double) {
    const unsigned lane = threadIdx.x % warpSize;
    const int value = static_cast<int>(lane) * 10 + 1;
    const unsigned t = threadIdx.x;
    idx[t] = __shfl_sync(0xffffffffu, value, src_lane + static_cast<int>(lane % 3), width);
    up[t] = __shfl_up_sync(0xffffffffu, value, delta, width);
    down[t] = __shfl_down_sync(0xffffffffu, value, delta, width);
    bfly[t] = __shfl_xor_sync(0xffffffffu, value, lane_mask, width);
    idx_double[t] = __shfl_sync(0xffffffffu, 0.5 + static_cast<double>(value) * 1e10, src_lane, width);
}

__global__ void index_kernel(unsigned* out) {
    const unsigned block = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
    const unsigned thread = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
    const unsigned per_block = blockDim.x * blockDim.y * blockDim.z;
    out[block * per_block + thread] = (blockIdx.z << 24) | (blockIdx.y << 20) | (blockIdx.x << 16) |
                                      (threadIdx.z << 8) | (threadIdx.y << 4) | threadIdx.x;
}

__global__ void early_exit_active_mask_kernel(unsigned* out) {
    const unsigned lane = threadIdx.x % warpSize;
    if (lane >= 20) {
        return;
    }
    out[threadIdx.x] = __activemask();
}

// Threads beyond n return before the barrier: undefined behaviour the emulator must report.
__global__ void partial_barrier_kernel(float* data, int n) {
    const int i = static_cast<int>(threadIdx.x);
    if (i >= n) {
        return;
    }
    data[i] = 1.0f;
    __syncthreads();
    data[i] += data[(i + 1) % n];
}

// The first threads return before the barrier: it completes with only the others, still a misuse.
__global__ void low_threads_skip_barrier_kernel(float* data) {
    if (threadIdx.x < 56) {
        return;
    }
    data[threadIdx.x] = 1.0f;
    __syncthreads();
}

// The classic race: no __syncthreads() between writing shared memory and reading a neighbour's slot.
__global__ void racy_neighbour_kernel(const float* in, float* out) {
    __shared__ float cache[128];
    const unsigned t = threadIdx.x;
    cache[t] = in[blockIdx.x * blockDim.x + t];
    out[blockIdx.x * blockDim.x + t] = cache[(t + 1) % blockDim.x];
}

__global__ void fill_kernel(float* out, float value) { out[threadIdx.x] = value; }

__global__ void misaligned_atomic_kernel(char* bytes) { atomicAdd(reinterpret_cast<int*>(bytes + 2), 1); }

__global__ void many_args_kernel(const float* a, double scale, long long offset, unsigned char flag, int2 pair,
                                 float* out) {
    out[threadIdx.x] = static_cast<float>(a[threadIdx.x] * scale + static_cast<double>(offset) + flag + pair.x * pair.y);
}

// ---- helpers ------------------------------------------------------------------------------------

namespace {

double sum_abs(const std::vector<float>& values) {
    double s = 0.0;
    for (float v : values) {
        s += std::fabs(v);
    }
    return s;
}

double sum(const std::vector<float>& values) {
    double s = 0.0;
    for (float v : values) {
        s += v;
    }
    return s;
}

struct WorkerGuard {
    int saved = cudaemu::worker_count();
    ~WorkerGuard() { cudaemu::set_worker_count(saved); }
};

struct CheckingGuard {
    bool saved = cudaemu::checking_mode();
    explicit CheckingGuard(bool enabled) { cudaemu::set_checking_mode(enabled); }
    ~CheckingGuard() { cudaemu::set_checking_mode(saved); }
};

}  // namespace

// ---- tests --------------------------------------------------------------------------------------

TEST_CASE("elementwise kernel matches the CPU", "[cudaemu][kernels]") {
    const int n = 10007;
    const std::vector<float> x = test_support::random_floats(n, 11);
    const std::vector<float> y0 = test_support::random_floats(n, 12);
    DeviceBuffer<float> dx(n);
    DeviceBuffer<float> dy(n);
    dx.upload(x);
    dy.upload(y0);
    REQUIRE(cudaemu::launch(saxpy_kernel, (n + 255) / 256, 256, 0, nullptr, n, 2.5f, dx.get(), dy.get()) == cudaSuccess);
    const std::vector<float> y = dy.download();
    for (int i = 0; i < n; ++i) {
        REQUIRE(y[i] == 2.5f * x[i] + y0[i]);
    }
}

TEST_CASE("shared-memory tree reduction over 1M elements equals the CPU sum", "[cudaemu][kernels]") {
    const int n = 1 << 20;
    const int blocks = n / 256;
    const std::vector<float> x = test_support::random_floats(n, 21);
    DeviceBuffer<float> dx(n);
    DeviceBuffer<float> partial(blocks);
    dx.upload(x);
    // CPU time of the whole process (all worker threads) is what the emulator costs; wall time on a
    // shared CI machine also measures the neighbours.
    const std::clock_t cpu_start = std::clock();
    const auto start = std::chrono::steady_clock::now();
    REQUIRE(cudaemu::launch(reduce_shared_kernel<256>, blocks, 256, 0, nullptr, dx.get(), partial.get(), n) == cudaSuccess);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double cpu_seconds = static_cast<double>(std::clock() - cpu_start) / CLOCKS_PER_SEC;
    std::printf("cudaemu: tree reduction, 2^20 floats, %d blocks x 256 threads, 9 barriers per block: %.3f s wall, "
                "%.3f s CPU (%d worker threads, one run)\n",
                blocks, seconds, cpu_seconds, cudaemu::worker_count());
    const std::vector<float> partials = partial.download();
    const double got = sum(partials);
    INFO("got " << got << ", expected " << sum(x));
    CHECK(std::fabs(got - sum(x)) <= test_support::kFloatTolerance * sum_abs(x));
    for (int b = 0; b < blocks; ++b) {
        const std::vector<float> block(x.begin() + b * 256, x.begin() + (b + 1) * 256);
        REQUIRE(std::fabs(partials[b] - sum(block)) <= test_support::kFloatTolerance * sum_abs(block));
    }
#if !defined(__SANITIZE_ADDRESS__) && defined(NDEBUG)
    if (!cudaemu::checking_mode()) {
        CHECK(cpu_seconds < 1.0);
    }
#endif
}

TEST_CASE("warp-shuffle reduction with float atomicAdd equals the CPU sum", "[cudaemu][kernels]") {
    const int n = 300000;
    const std::vector<float> x = test_support::random_floats(n, 31);
    DeviceBuffer<float> dx(n);
    DeviceBuffer<float> total(1);
    dx.upload(x);
    REQUIRE(cudaMemset(total.get(), 0, sizeof(float)) == cudaSuccess);
    REQUIRE(cudaemu::launch(reduce_warp_kernel, 64, 256, 0, nullptr, dx.get(), total.get(), n) == cudaSuccess);
    const float got = total.download()[0];
    CHECK(std::fabs(got - sum(x)) <= test_support::kFloatTolerance * sum_abs(x));
}

TEST_CASE("reductions give the same result with one and with several worker threads", "[cudaemu][kernels]") {
    WorkerGuard guard;
    const int n = 65536;
    const std::vector<float> x = test_support::random_floats(n, 41);
    DeviceBuffer<float> dx(n);
    DeviceBuffer<float> partial(n / 128);
    dx.upload(x);
    cudaemu::set_worker_count(1);
    REQUIRE(cudaemu::launch(reduce_shared_kernel<128>, n / 128, 128, 0, nullptr, dx.get(), partial.get(), n) == cudaSuccess);
    const std::vector<float> serial = partial.download();
    cudaemu::set_worker_count(4);
    REQUIRE(cudaMemset(partial.get(), 0xFF, partial.size() * sizeof(float)) == cudaSuccess);
    REQUIRE(cudaemu::launch(reduce_shared_kernel<128>, n / 128, 128, 0, nullptr, dx.get(), partial.get(), n) == cudaSuccess);
    CHECK(partial.download() == serial);
}

TEST_CASE("dynamic shared memory is per block and honours the opt-in limit", "[cudaemu][kernels]") {
    const int blocks = 37;
    const int threads = 96;
    const std::vector<float> x = test_support::random_floats(blocks * threads, 51);
    DeviceBuffer<float> dx(x.size());
    DeviceBuffer<float> dy(x.size());
    dx.upload(x);
    REQUIRE(cudaemu::launch(reverse_blocks_kernel, blocks, threads, threads * sizeof(float), nullptr, dx.get(), dy.get()) ==
            cudaSuccess);
    const std::vector<float> y = dy.download();
    for (int b = 0; b < blocks; ++b) {
        for (int t = 0; t < threads; ++t) {
            REQUIRE(y[b * threads + t] == x[b * threads + threads - 1 - t]);
        }
    }

    const int floats = 64 * 1024 / 4;
    DeviceBuffer<float> out(128);
    CHECK(cudaemu::launch(big_shared_kernel, 1, 128, floats * sizeof(float), nullptr, out.get(), floats) ==
          cudaErrorInvalidValue);
    CHECK(cudaGetLastError() == cudaErrorInvalidValue);
    CHECK(std::isnan(out.download()[0]));
    REQUIRE(cudaFuncSetAttribute(big_shared_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, 64 * 1024) == cudaSuccess);
    REQUIRE(cudaemu::launch(big_shared_kernel, 1, 128, floats * sizeof(float), nullptr, out.get(), floats) == cudaSuccess);
    const std::vector<float> got = out.download();
    for (int t = 0; t < 128; ++t) {
        double expected = 0.0;
        for (int i = (t + 1) % 128; i < floats; i += 128) {
            expected += i;
        }
        REQUIRE(got[t] == static_cast<float>(expected));
    }
    CHECK(cudaFuncSetAttribute(big_shared_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, 300 * 1024) ==
          cudaErrorInvalidValue);
    cudaGetLastError();
}

TEST_CASE("atomics histogram equals the CPU histogram", "[cudaemu][kernels]") {
    const int n = 200003;
    std::vector<unsigned> values(n);
    std::mt19937 rng(61);
    for (unsigned& v : values) {
        v = static_cast<unsigned>(rng()) % 1000u;
    }
    std::vector<unsigned> expected(256, 0);
    for (unsigned v : values) {
        ++expected[v & 255u];
    }
    DeviceBuffer<unsigned> dv(n);
    DeviceBuffer<unsigned> bins(256);
    dv.upload(values);
    REQUIRE(cudaMemset(bins.get(), 0, 256 * sizeof(unsigned)) == cudaSuccess);
    REQUIRE(cudaemu::launch(histogram_kernel, 40, 192, 0, nullptr, dv.get(), n, bins.get()) == cudaSuccess);
    CHECK(bins.download() == expected);
}

TEST_CASE("warp votes and block reductions match their definitions", "[cudaemu][kernels]") {
    const int threads = 80;  // two full warps and a partial one of 16 lanes
    std::vector<int> predicate(threads);
    std::mt19937 rng(71);
    for (int& p : predicate) {
        p = static_cast<int>(rng() % 3 == 0);
    }
    predicate[32 + 5] = 1;
    DeviceBuffer<int> dp(threads);
    DeviceBuffer<unsigned> ballot(threads);
    DeviceBuffer<int> any(threads), all(threads), count(threads), block_and(threads), block_or(threads);
    dp.upload(predicate);
    // The last warp has 16 lanes, so a full mask is invalid there: run 64 threads for the warp votes.
    REQUIRE(cudaemu::launch(vote_kernel, 1, 64, 0, nullptr, dp.get(), ballot.get(), any.get(), all.get(), count.get(),
                            block_and.get(), block_or.get()) == cudaSuccess);
    const auto b = ballot.download();
    const auto an = any.download();
    const auto al = all.download();
    const auto c = count.download();
    const auto ba = block_and.download();
    const auto bo = block_or.download();
    int total = 0;
    for (int t = 0; t < 64; ++t) {
        total += predicate[t];
    }
    for (int w = 0; w < 2; ++w) {
        unsigned expected_ballot = 0;
        for (int l = 0; l < 32; ++l) {
            expected_ballot |= static_cast<unsigned>(predicate[w * 32 + l]) << l;
        }
        for (int l = 0; l < 32; ++l) {
            const int t = w * 32 + l;
            REQUIRE(b[t] == expected_ballot);
            REQUIRE(an[t] == (expected_ballot != 0 ? 1 : 0));
            REQUIRE(al[t] == (expected_ballot == 0xffffffffu ? 1 : 0));
            REQUIRE(c[t] == total);
            REQUIRE(ba[t] == (total == 64 ? 1 : 0));
            REQUIRE(bo[t] == (total > 0 ? 1 : 0));
        }
    }
}

TEST_CASE("shuffles follow the documented lane arithmetic", "[cudaemu][kernels]") {
    struct Case {
        int src;
        unsigned delta;
        int lane_mask;
        int width;
    };
    const Case cases[] = {{0, 1, 1, 32}, {5, 3, 7, 32}, {-1, 16, 16, 32}, {37, 31, 31, 32}, {2, 3, 5, 8},
                          {-3, 1, 12, 16}, {0, 2, 3, 4}, {1, 1, 1, 1}};
    const int threads = 64;
    for (const Case& k : cases) {
        DYNAMIC_SECTION("src " << k.src << " delta " << k.delta << " xor " << k.lane_mask << " width " << k.width) {
            DeviceBuffer<int> idx(threads), up(threads), down(threads), bfly(threads);
            DeviceBuffer<double> idx_double(threads);
            REQUIRE(cudaemu::launch(shuffle_kernel, 1, threads, 0, nullptr, k.src, k.delta, k.lane_mask, k.width,
                                    idx.get(), up.get(), down.get(), bfly.get(), idx_double.get()) == cudaSuccess);
            const auto gi = idx.download();
            const auto gu = up.download();
            const auto gd = down.download();
            const auto gx = bfly.download();
            const auto gdouble = idx_double.download();
            const auto value = [](int lane) { return lane * 10 + 1; };
            for (int t = 0; t < threads; ++t) {
                const int lane = t % 32;
                const int w = k.width;
                const int segment = lane / w * w;
                INFO("thread " << t);
                // __shfl_sync: "srcLane modulo width" within the caller's segment.
                const int src = k.src + lane % 3;
                REQUIRE(gi[t] == value(segment + (((src % w) + w) % w)));
                REQUIRE(gdouble[t] == 0.5 + static_cast<double>(value(segment + (((k.src % w) + w) % w))) * 1e10);
                // __shfl_up_sync: lane - delta, unless that leaves the segment (own value).
                const int d = static_cast<int>(k.delta);
                REQUIRE(gu[t] == (lane - segment >= d ? value(lane - d) : value(lane)));
                // __shfl_down_sync: lane + delta, unless that leaves the segment.
                REQUIRE(gd[t] == (lane - segment + d < w ? value(lane + d) : value(lane)));
                // __shfl_xor_sync: lane ^ mask; a later segment yields the own value.
                const int partner = lane ^ k.lane_mask;
                REQUIRE(gx[t] == (partner / w > lane / w ? value(lane) : value(partner)));
            }
        }
    }
}

TEST_CASE("built-in indices cover a 3-D grid of 3-D blocks", "[cudaemu][kernels]") {
    const dim3 grid(3, 2, 2);
    const dim3 block(4, 3, 2);
    const unsigned total = 12 * 24;
    DeviceBuffer<unsigned> out(total);
    REQUIRE(cudaemu::launch(index_kernel, grid, block, 0, nullptr, out.get()) == cudaSuccess);
    const auto got = out.download();
    unsigned i = 0;
    for (unsigned bz = 0; bz < 2; ++bz) {
        for (unsigned by = 0; by < 2; ++by) {
            for (unsigned bx = 0; bx < 3; ++bx) {
                for (unsigned tz = 0; tz < 2; ++tz) {
                    for (unsigned ty = 0; ty < 3; ++ty) {
                        for (unsigned tx = 0; tx < 4; ++tx) {
                            REQUIRE(got[i++] == ((bz << 24) | (by << 20) | (bx << 16) | (tz << 8) | (ty << 4) | tx));
                        }
                    }
                }
            }
        }
    }
}

TEST_CASE("__activemask excludes lanes that exited", "[cudaemu][kernels]") {
    DeviceBuffer<unsigned> out(64);
    REQUIRE(cudaemu::launch(early_exit_active_mask_kernel, 1, 64, 0, nullptr, out.get()) == cudaSuccess);
    const auto got = out.download();
    for (int t = 0; t < 64; ++t) {
        if (t % 32 < 20) {
            REQUIRE(got[t] == 0x000fffffu);
        }
    }
}

TEST_CASE("kernel arguments are converted like a function call and checked", "[cudaemu][kernels]") {
    const std::vector<float> a = test_support::random_floats(32, 81);
    DeviceBuffer<float> da(32);
    DeviceBuffer<float> out(32);
    da.upload(a);
    const int2 pair{3, 4};
    REQUIRE(cudaemu::launch(many_args_kernel, 1, 32, 0, nullptr, da.get(), 2, 7, true, pair, out.get()) == cudaSuccess);
    const auto got = out.download();
    for (int t = 0; t < 32; ++t) {
        REQUIRE(got[t] == static_cast<float>(a[t] * 2.0 + 7.0 + 1 + 12));
    }
    std::vector<float> host(32, 0.0f);
    CHECK(cudaemu::launch(fill_kernel, 1, 32, 0, nullptr, host.data(), 1.0f) == cudaErrorIllegalAddress);
    CHECK(host[0] == 0.0f);
    CHECK(cudaGetLastError() == cudaErrorIllegalAddress);
}

TEST_CASE("launch configurations are validated as CUDA does", "[cudaemu][kernels]") {
    DeviceBuffer<float> out(1024);
    CHECK(cudaemu::launch(fill_kernel, 1, 1025, 0, nullptr, out.get(), 1.0f) == cudaErrorInvalidConfiguration);
    CHECK(cudaemu::launch(fill_kernel, 1, dim3(1, 1, 65), 0, nullptr, out.get(), 1.0f) == cudaErrorInvalidConfiguration);
    CHECK(cudaemu::launch(fill_kernel, 1, dim3(64, 32), 0, nullptr, out.get(), 1.0f) == cudaErrorInvalidConfiguration);
    CHECK(cudaemu::launch(fill_kernel, dim3(1, 65536), 32, 0, nullptr, out.get(), 1.0f) == cudaErrorInvalidConfiguration);
    CHECK(cudaemu::launch(fill_kernel, 0, 32, 0, nullptr, out.get(), 1.0f) == cudaErrorInvalidConfiguration);
    CHECK(cudaemu::launch(fill_kernel, 1, 32, 49153, nullptr, out.get(), 1.0f) == cudaErrorInvalidValue);
    cudaStream_t stream = nullptr;
    REQUIRE(cudaStreamCreate(&stream) == cudaSuccess);
    REQUIRE(cudaStreamDestroy(stream) == cudaSuccess);
    CHECK(cudaemu::launch(fill_kernel, 1, 32, 0, stream, out.get(), 1.0f) == cudaErrorInvalidResourceHandle);
    CHECK(std::isnan(out.download()[0]));
    CHECK(cudaGetLastError() == cudaErrorInvalidResourceHandle);
    CHECK(cudaemu::launch(fill_kernel, 1, 1024, 48 * 1024, nullptr, out.get(), 1.0f) == cudaSuccess);
    CHECK(out.download()[1023] == 1.0f);
}

TEST_CASE("misuse inside a kernel fails the launch with a message naming the kernel", "[cudaemu][kernels]") {
    // The launch itself returns the error only when it runs the kernel (test_streams.cu covers the
    // deferred mode, where the next synchronization returns it).
    test_support::StreamModeGuard eager(cudaemu::StreamMode::eager);
    DeviceBuffer<float> data(256);
    const auto errors = cudaemu::error_count();
    CHECK(cudaemu::launch(partial_barrier_kernel, 1, 256, 0, nullptr, data.get(), 200) == cudaErrorLaunchFailure);
    CHECK(cudaGetLastError() == cudaErrorLaunchFailure);
    CHECK(cudaemu::error_count() == errors + 1);
    const std::string message = cudaemu::last_error_message();
    CHECK(message.find("partial_barrier_kernel") != std::string::npos);
    CHECK(message.find("__syncthreads") != std::string::npos);

    CHECK(cudaemu::launch(low_threads_skip_barrier_kernel, 1, 256, 0, nullptr, data.get()) == cudaErrorLaunchFailure);
    CHECK(cudaemu::last_error_message().find("reached by 200 of 256 threads") != std::string::npos);

    DeviceBuffer<char> bytes(16);
    CHECK(cudaemu::launch(misaligned_atomic_kernel, 1, 1, 0, nullptr, bytes.get()) == cudaErrorMisalignedAddress);
    CHECK(cudaemu::last_error_message().find("misaligned") != std::string::npos);

    // The emulator keeps working after a failed launch.
    DeviceBuffer<float> out(32);
    CHECK(cudaemu::launch(fill_kernel, 1, 32, 0, nullptr, out.get(), 3.0f) == cudaSuccess);
    CHECK(out.download()[31] == 3.0f);
    cudaGetLastError();
}

TEST_CASE("checking mode accepts race-free kernels and reports a data race", "[cudaemu][kernels][checking]") {
    CheckingGuard checking(true);
    test_support::StreamModeGuard eager(cudaemu::StreamMode::eager);  // the race fails the launch call itself
    const int n = 8192;
    const std::vector<float> x = test_support::random_floats(n, 91);
    DeviceBuffer<float> dx(n);
    dx.upload(x);

    DeviceBuffer<float> partial(n / 128);
    CHECK(cudaemu::launch(reduce_shared_kernel<128>, n / 128, 128, 0, nullptr, dx.get(), partial.get(), n) == cudaSuccess);
    DeviceBuffer<float> total(1);
    REQUIRE(cudaMemset(total.get(), 0, sizeof(float)) == cudaSuccess);
    // Float atomics from 32 blocks: the sum order differs between the two schedules, within the
    // documented summation error bound.
    CHECK(cudaemu::launch(reduce_warp_kernel, 32, 128, 0, nullptr, dx.get(), total.get(), n) == cudaSuccess);
    CHECK(std::fabs(total.download()[0] - sum(x)) <= test_support::kFloatTolerance * sum_abs(x));
    std::vector<unsigned> values(n);
    for (int i = 0; i < n; ++i) {
        values[i] = static_cast<unsigned>(i * 7);
    }
    DeviceBuffer<unsigned> dv(n);
    DeviceBuffer<unsigned> bins(256);
    dv.upload(values);
    REQUIRE(cudaMemset(bins.get(), 0, 256 * sizeof(unsigned)) == cudaSuccess);
    CHECK(cudaemu::launch(histogram_kernel, 8, 128, 0, nullptr, dv.get(), n, bins.get()) == cudaSuccess);

    DeviceBuffer<float> out(n);
    const auto errors = cudaemu::error_count();
    CHECK(cudaemu::launch(racy_neighbour_kernel, n / 128, 128, 0, nullptr, dx.get(), out.get()) == cudaErrorLaunchFailure);
    CHECK(cudaemu::error_count() == errors + 1);
    CHECK(cudaemu::last_error_message().find("depends on the execution schedule") != std::string::npos);
    cudaGetLastError();
}

TEST_CASE("a kernel written for both builds runs through the launch contract", "[cudaemu][kernels]") {
    CheckingGuard checking(true);
    const int n = 5000;
    const std::vector<float> x = test_support::random_floats(n, 111);
    const int blocks = (n + 255) / 256;
    DeviceBuffer<float> dx(n);
    DeviceBuffer<float> partial(blocks);
    dx.upload(x);
    REQUIRE(dual_build_block_sums(dx.get(), partial.get(), n, nullptr) == cudaSuccess);
    const std::vector<float> got = partial.download();
    for (int b = 0; b < blocks; ++b) {
        const std::vector<float> block(x.begin() + b * 256, x.begin() + std::min(n, (b + 1) * 256));
        REQUIRE(std::fabs(got[b] - sum(block)) <= test_support::kFloatTolerance * sum_abs(block));
    }
}
