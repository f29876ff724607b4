// The launch contract between strata's CUDA backend and cudaemu, as strata's kernels/cuda/launch.h
// must provide it (README.md, "What the real build must define"). This file is compiled twice by
// the emulator's tests: by g++ against the emulation headers (and run), and by nvcc against the
// real toolkit (compile only), so the definitions below are known to work in both builds.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <utility>

#if !defined(STRATA_CUDA_EMULATION)
// Real build: dynamic shared memory is an unsized extern __shared__ array; every such array of a
// kernel starts at the same address, so one name per kernel suffices.
#define STRATA_DYNAMIC_SHARED(T, name)                          \
    extern __shared__ __align__(16) unsigned char name##_raw[]; \
    T* name = reinterpret_cast<T*>(name##_raw)
#endif

namespace dual_build {

// The one launch helper: arguments are converted to the kernel's parameter types as in a call.
// Returns the launch's error (configuration errors in both builds; in emulation also any misuse
// detected while the kernel ran, since it runs to completion before the call returns).
template <class... KArgs, class... Args>
cudaError_t launch_kernel(const char* name, void (*kernel)(KArgs...), dim3 grid, dim3 block,
                          std::size_t dynamic_shared_bytes, cudaStream_t stream, Args&&... args) {
#if defined(STRATA_CUDA_EMULATION)
    return ::cudaemu::launch_named(name, kernel, grid, block, dynamic_shared_bytes, stream,
                                   std::forward<Args>(args)...);
#else
    static_cast<void>(name);
    kernel<<<grid, block, dynamic_shared_bytes, stream>>>(std::forward<Args>(args)...);
    return cudaGetLastError();
#endif
}

}  // namespace dual_build

// Names the kernel in emulator messages; wrap template kernels in parentheses:
// STRATA_LAUNCH((reduce<float, 256>), grid, block, smem, stream, args...).
#define STRATA_LAUNCH(kernel, grid, block, dynamic_shared_bytes, stream, ...) \
    ::dual_build::launch_kernel(#kernel, kernel, grid, block, dynamic_shared_bytes, stream, __VA_ARGS__)
