// Kernels written once for both builds through the launch contract (launch_contract.h): a block
// sum through dynamic shared memory and warp shuffles, launched with STRATA_LAUNCH.
//   block_sums: in (n) -> partial (blocks), partial[b] = sum of in[b*block .. (b+1)*block)
#include "dual_build_kernels.h"

#include "launch_contract.h"

namespace {

constexpr unsigned kFullMask = 0xffffffffu;

template <int kBlock>
__global__ void __launch_bounds__(kBlock) block_sums_kernel(const float* __restrict__ in, float* __restrict__ partial,
                                                            int n) {
    STRATA_DYNAMIC_SHARED(float, warp_sums);
    const int i = static_cast<int>(blockIdx.x) * kBlock + static_cast<int>(threadIdx.x);
    float v = i < n ? __ldg(in + i) : 0.0f;
    for (int offset = warpSize / 2; offset > 0; offset /= 2) {
        v += __shfl_xor_sync(kFullMask, v, offset);
    }
    const unsigned lane = threadIdx.x % warpSize;
    const unsigned warp = threadIdx.x / warpSize;
    if (lane == 0) {
        warp_sums[warp] = v;
    }
    __syncthreads();
    if (warp == 0) {
        v = lane < kBlock / warpSize ? warp_sums[lane] : 0.0f;
        for (int offset = warpSize / 2; offset > 0; offset /= 2) {
            v += __shfl_down_sync(kFullMask, v, static_cast<unsigned>(offset));
        }
        if (lane == 0) {
            partial[blockIdx.x] = v;
        }
    }
}

}  // namespace

cudaError_t dual_build_block_sums(const float* in, float* partial, int n, cudaStream_t stream) {
    constexpr int kBlock = 256;
    const int blocks = (n + kBlock - 1) / kBlock;
    return STRATA_LAUNCH((block_sums_kernel<kBlock>), blocks, kBlock, (kBlock / 32) * sizeof(float), stream, in,
                         partial, n);
}
