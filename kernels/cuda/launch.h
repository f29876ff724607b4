// The one way strata launches a kernel (DESIGN.md: no scattered <<<>>>), in both builds:
//   STRATA_LAUNCH(kernel, stream, grid, block, dynamic_shared_bytes, args...);
// The real build uses the triple-chevron launch; the emulated build (STRATA_CUDA_EMULATION, the
// backend compiled by the host compiler against tests/cudaemu) calls cudaemu::launch_named, which
// runs every block's threads as fibers on the CPU. A launch error throws a CudaError naming the
// kernel; with Stream::sync_after_launch (the context's debug switch, STRATA_CUDA_SYNC=1) the stream
// is synchronised after every launch so an asynchronous fault is reported at the kernel that caused
// it. Template kernels need parentheses: STRATA_LAUNCH((reduce<float, 256>), ...).
//
// Kernels take dynamic shared memory through STRATA_DYNAMIC_SHARED(T, name), which expands to
// `extern __shared__` in the real build and to the emulator's per-block buffer in emulation.
// Include this header from .cu files only (it contains kernel launch syntax in the real build).
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <utility>

#include "kernels/cuda/backend.h"
#include "kernels/cuda/check.h"

#if defined(STRATA_CUDA_EMULATION)
#include <cudaemu/launch.h>
#else
#define STRATA_DYNAMIC_SHARED(T, name)                            \
  extern __shared__ __align__(16) unsigned char name##_raw[];     \
  T* name = reinterpret_cast<T*>(name##_raw)
#endif

namespace strata::kernels::cuda {

template <class... KArgs, class... Args>
void launch(const char* name, const Stream& stream, void (*kernel)(KArgs...), dim3 grid, dim3 block,
            size_t dynamic_shared_bytes, Args&&... args) {
#if defined(STRATA_CUDA_EMULATION)
  cudaError_t status = ::cudaemu::launch_named(name, kernel, grid, block, dynamic_shared_bytes, stream.handle,
                                               std::forward<Args>(args)...);
#else
  kernel<<<grid, block, dynamic_shared_bytes, stream.handle>>>(std::forward<Args>(args)...);
  cudaError_t status = cudaGetLastError();
#endif
  if (status != cudaSuccess) throw_cuda_error(name, status, "kernel launch", 0);
  if (stream.sync_after_launch) {
    status = cudaStreamSynchronize(stream.handle);
    if (status != cudaSuccess) throw_cuda_error(name, status, "synchronize after launch", 0);
  }
}

// Blocks of `threads` covering n items (at least one block, at most the grid's x limit; kernels
// loop with a grid stride past that).
inline unsigned blocks_for(int64_t n, unsigned threads) {
  int64_t blocks = (n + threads - 1) / threads;
  if (blocks < 1) blocks = 1;
  if (blocks > 65535 * 32) blocks = 65535 * 32;
  return static_cast<unsigned>(blocks);
}

}  // namespace strata::kernels::cuda

#define STRATA_LAUNCH(kernel, stream, grid, block, shared, ...) \
  ::strata::kernels::cuda::launch(#kernel, stream, kernel, grid, block, shared, __VA_ARGS__)
