// STRATA_HOST_DEVICE marks math that both backends call: the CPU reference kernels and the CUDA
// kernels (compiled by nvcc, or by the host compiler against tests/cudaemu), so it is written once.
#pragma once

#if defined(__CUDACC__) || defined(STRATA_CUDA_EMULATION)
#define STRATA_HOST_DEVICE __host__ __device__
#else
#define STRATA_HOST_DEVICE
#endif
