// Planted failure for the build check: a kernel whose dynamically indexed per-thread array holds
// values loaded from memory, so it must live in local memory. Compiling it with the flags of
// strata_kernels_cuda must fail (ctest cuda.build.local_memory_is_an_error), proving the check
// catches what it is meant to catch.
#include <cuda_runtime.h>

__global__ void planted_local_memory(const float* in, const int* index, float* out) {
  float scratch[64];
  float sum = 0;
  for (int i = 0; i < 64; ++i) scratch[i] = sum += in[i * blockDim.x + threadIdx.x];  // prefix sums
  scratch[index[2 * threadIdx.x] & 63] *= 2.0f;  // a store at a runtime index
  out[threadIdx.x] = scratch[index[2 * threadIdx.x + 1] & 63];
}
