// cudaemu: replacement of the CUDA toolkit's `cuda_runtime.h` for the emulation build
// (STRATA_CUDA_EMULATION). It provides the runtime C API (cuda_runtime_api.h), the C++ template
// overloads of the real header (cudaMalloc<T>, cudaMallocHost<T>, cudaHostAlloc<T>,
// cudaFuncSetAttribute<T>, cudaEventCreate(event, flags), cudaMemcpyToSymbol<T>), the kernel
// language (qualifiers, built-in variables, intrinsics: cudaemu/kernel_lang.h) and the launch
// entry point cudaemu::launch (cudaemu/launch.h). nvcc includes the real header implicitly; g++
// does not, so every .cu file of the backend must `#include <cuda_runtime.h>` itself.
#pragma once

#include "cuda_runtime_api.h"
#include "cudaemu/kernel_lang.h"
#include "cudaemu/launch.h"
#include "driver_types.h"
#include "vector_functions.h"
#include "vector_types.h"

#ifndef STRATA_CUDA_EMULATION
#define STRATA_CUDA_EMULATION 1
#endif

inline cudaError_t cudaMallocHost(void** ptr, size_t size, unsigned int flags) {
    return ::cudaHostAlloc(ptr, size, flags);
}

template <class T>
inline cudaError_t cudaMalloc(T** devPtr, size_t size) {
    return ::cudaMalloc(reinterpret_cast<void**>(devPtr), size);
}

template <class T>
inline cudaError_t cudaMallocHost(T** ptr, size_t size, unsigned int flags = 0) {
    return ::cudaHostAlloc(reinterpret_cast<void**>(ptr), size, flags);
}

template <class T>
inline cudaError_t cudaHostAlloc(T** ptr, size_t size, unsigned int flags) {
    return ::cudaHostAlloc(reinterpret_cast<void**>(ptr), size, flags);
}

inline cudaError_t cudaEventCreate(cudaEvent_t* event, unsigned int flags) {
    return ::cudaEventCreateWithFlags(event, flags);
}

template <class T>
inline cudaError_t cudaFuncSetAttribute(T* func, enum cudaFuncAttribute attr, int value) {
    return ::cudaFuncSetAttribute(::cudaemu::detail::function_address(func), attr, value);
}

template <class T>
inline cudaError_t cudaMemcpyToSymbol(const T& symbol, const void* src, size_t count, size_t offset = 0,
                                      enum cudaMemcpyKind kind = cudaMemcpyHostToDevice) {
    return ::cudaMemcpyToSymbol(static_cast<const void*>(&symbol), src, count, offset, kind);
}
