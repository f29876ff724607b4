// Host entry point of dual_build_kernels.cu.
#pragma once

#include <cuda_runtime.h>

// in: device (n) -> partial: device (ceil(n / 256)), the sum of each block of 256 elements.
cudaError_t dual_build_block_sums(const float* in, float* partial, int n, cudaStream_t stream);
