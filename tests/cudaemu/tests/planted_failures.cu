// Planted bugs the emulator must report. Run as `cudaemu_planted <case>`; ctest checks the
// emulator's (or AddressSanitizer's) message. The program prints "NOT DETECTED" and fails when the
// launch returned success or the wrong error.
//   race             reduction missing the __syncthreads() after filling shared memory (checking mode)
//   partial_barrier  threads return before a __syncthreads() the others wait at
//   shuffle_lane     __shfl_sync reading a lane outside its mask
//   partial_warp     a full-mask shuffle in a block whose last warp has 16 lanes
//   out_of_bounds    a kernel writing one element past the end of its output
//   shared_overflow  a kernel writing past its dynamic shared memory
//   host_pointer     a host pointer passed as a kernel argument
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "cuda_runtime.h"
#include "cudaemu/control.h"

__global__ void reduce_missing_barrier(const float* in, float* out) {
    __shared__ float cache[256];
    const unsigned t = threadIdx.x;
    cache[t] = in[blockIdx.x * blockDim.x + t];
    for (unsigned stride = blockDim.x / 2; stride > 0; stride >>= 1) {
        if (t < stride) {
            cache[t] += cache[t + stride];
        }
        __syncthreads();
    }
    if (t == 0) {
        out[blockIdx.x] = cache[0];
    }
}

__global__ void early_return_before_barrier(float* data, int n) {
    const int i = static_cast<int>(threadIdx.x);
    if (i >= n) {
        return;
    }
    data[i] = static_cast<float>(i);
    __syncthreads();
    data[i] += data[n - 1 - i];
}

__global__ void shuffle_outside_mask(int* out) {
    const unsigned lane = threadIdx.x % 32;
    if (lane < 16) {
        out[threadIdx.x] = __shfl_sync(0x0000ffffu, static_cast<int>(lane), static_cast<int>(lane) + 4, 32);
    }
}

__global__ void full_mask_in_partial_warp(float* out) {
    float v = static_cast<float>(threadIdx.x);
    v += __shfl_down_sync(0xffffffffu, v, 1u);
    out[threadIdx.x] = v;
}

__global__ void write_past_end(float* out, int n) {
    const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
    if (i <= n) {  // should be i < n
        out[i] = 1.0f;
    }
}

__global__ void shared_past_end(float* out) {
    STRATA_DYNAMIC_SHARED(float, buffer);
    buffer[threadIdx.x + 1] = 2.0f;  // the buffer holds blockDim.x floats
    __syncthreads();
    out[threadIdx.x] = buffer[threadIdx.x];
}

__global__ void scale_kernel(float scale, float* data) { data[threadIdx.x] *= scale; }

namespace {

// `launched` is what the launch returned. In the deferred stream mode (CUDAEMU_STREAMS=deferred) the
// kernel has not run yet: it runs, and its failure is returned, at the next synchronization.
int expect(cudaError_t launched, cudaError_t expected, const char* what) {
    const cudaError_t got = launched != cudaSuccess ? launched : cudaDeviceSynchronize();
    if (got != expected) {
        std::printf("NOT DETECTED: %s returned %s, expected %s\n", what, cudaGetErrorName(got), cudaGetErrorName(expected));
        return 1;
    }
    std::printf("detected: %s -> %s\n", what, cudaGetErrorName(got));
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s race|partial_barrier|shuffle_lane|partial_warp|out_of_bounds|shared_overflow|"
                             "host_pointer\n", argv[0]);
        return 2;
    }
    const std::string which = argv[1];
    if (which == "race") {
        cudaemu::set_checking_mode(true);
        const int blocks = 4;
        std::vector<float> host(blocks * 256);
        for (std::size_t i = 0; i < host.size(); ++i) {
            host[i] = static_cast<float>(i % 7);
        }
        float* in = nullptr;
        float* out = nullptr;
        cudaMalloc(&in, host.size() * sizeof(float));
        cudaMalloc(&out, blocks * sizeof(float));
        cudaemu::set_allocation_label(out, "partial sums");
        cudaMemcpy(in, host.data(), host.size() * sizeof(float), cudaMemcpyHostToDevice);
        return expect(cudaemu::launch(reduce_missing_barrier, blocks, 256, 0, nullptr, in, out), cudaErrorLaunchFailure,
                      "reduction without a barrier after the shared-memory fill");
    }
    if (which == "partial_barrier") {
        float* data = nullptr;
        cudaMalloc(&data, 256 * sizeof(float));
        return expect(cudaemu::launch(early_return_before_barrier, 1, 256, 0, nullptr, data, 200), cudaErrorLaunchFailure,
                      "__syncthreads() after an early return");
    }
    if (which == "shuffle_lane") {
        int* out = nullptr;
        cudaMalloc(&out, 32 * sizeof(int));
        return expect(cudaemu::launch(shuffle_outside_mask, 1, 32, 0, nullptr, out), cudaErrorLaunchFailure,
                      "__shfl_sync from a lane outside the mask");
    }
    if (which == "partial_warp") {
        float* out = nullptr;
        cudaMalloc(&out, 48 * sizeof(float));
        return expect(cudaemu::launch(full_mask_in_partial_warp, 1, 48, 0, nullptr, out), cudaErrorLaunchFailure,
                      "full-mask shuffle in a 16-lane warp");
    }
    if (which == "out_of_bounds") {
        const int n = 1000;
        float* out = nullptr;
        cudaMalloc(&out, n * sizeof(float));
        cudaemu::set_allocation_label(out, "output");
        return expect(cudaemu::launch(write_past_end, (n + 255) / 256, 256, 0, nullptr, out, n), cudaErrorIllegalAddress,
                      "write one past the end");
    }
    if (which == "shared_overflow") {
        float* out = nullptr;
        cudaMalloc(&out, 64 * sizeof(float));
        return expect(cudaemu::launch(shared_past_end, 1, 64, 64 * sizeof(float), nullptr, out), cudaErrorIllegalAddress,
                      "write past dynamic shared memory");
    }
    if (which == "host_pointer") {
        std::vector<float> host(32, 1.0f);
        return expect(cudaemu::launch(scale_kernel, 1, 32, 0, nullptr, 2.0f, host.data()), cudaErrorIllegalAddress,
                      "host pointer as kernel argument");
    }
    std::fprintf(stderr, "unknown case '%s'\n", which.c_str());
    return 2;
}
