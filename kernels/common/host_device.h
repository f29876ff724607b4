// STRATA_HOST_DEVICE marks math that both backends call: the CPU reference kernels and the CUDA
// kernels, so it is written once. Only nvcc needs the qualifiers; the emulated build (the CUDA
// sources compiled by the host compiler) and CPU code compile the same functions as plain C++.
#pragma once

#if defined(__CUDACC__)
#define STRATA_HOST_DEVICE __host__ __device__
#else
#define STRATA_HOST_DEVICE
#endif
