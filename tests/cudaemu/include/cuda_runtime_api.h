// cudaemu: the C API of the CUDA runtime (CUDA 13.0 `cuda_runtime_api.h`), the subset strata uses.
// Signatures are those of the real header. Semantics follow the CUDA Runtime API reference;
// every call executes synchronously on the CPU (a legal schedule of the real asynchronous API),
// returns the real error code on bad input, prints a message naming the call to stderr, and
// records the error for cudaGetLastError()/cudaPeekAtLastError() of the calling host thread.
#pragma once

#include <cstddef>

#include "driver_types.h"
#include "vector_types.h"

#define CUDART_VERSION 13000

extern "C" {

// Errors. cudaGetLastError returns the last error of this host thread and resets it to cudaSuccess;
// cudaPeekAtLastError returns it without resetting. Errors are never sticky in the emulator.
cudaError_t cudaGetLastError(void);
cudaError_t cudaPeekAtLastError(void);
const char* cudaGetErrorName(cudaError_t error);
const char* cudaGetErrorString(cudaError_t error);

// Versions: both report CUDA 13.0 (13000).
cudaError_t cudaDriverGetVersion(int* driverVersion);
cudaError_t cudaRuntimeGetVersion(int* runtimeVersion);

// Devices: exactly one emulated sm_90 device, ordinal 0.
cudaError_t cudaGetDeviceCount(int* count);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaGetDevice(int* device);
cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp* prop, int device);
cudaError_t cudaDeviceGetAttribute(int* value, enum cudaDeviceAttr attr, int device);
// Checks every allocation's guard zones; returns cudaErrorIllegalAddress if one was overwritten.
cudaError_t cudaDeviceSynchronize(void);

// Memory. Device allocations are 256-byte aligned, filled with 0xFF bytes (a float/double NaN)
// and surrounded by guard zones. Counting against the configured capacity uses requested sizes.
cudaError_t cudaMalloc(void** devPtr, size_t size);
cudaError_t cudaFree(void* devPtr);
cudaError_t cudaMallocHost(void** ptr, size_t size);
cudaError_t cudaHostAlloc(void** pHost, size_t size, unsigned int flags);
cudaError_t cudaFreeHost(void* ptr);
cudaError_t cudaMemGetInfo(size_t* free, size_t* total);
cudaError_t cudaPointerGetAttributes(struct cudaPointerAttributes* attributes, const void* ptr);
cudaError_t cudaMemcpy(void* dst, const void* src, size_t count, enum cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t count, enum cudaMemcpyKind kind,
                            cudaStream_t stream = 0);
cudaError_t cudaMemset(void* devPtr, int value, size_t count);
cudaError_t cudaMemsetAsync(void* devPtr, int value, size_t count, cudaStream_t stream = 0);

// Streams: ordered no-ops (all work has completed when a call returns).
cudaError_t cudaStreamCreate(cudaStream_t* pStream);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* pStream, unsigned int flags);
cudaError_t cudaStreamDestroy(cudaStream_t stream);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int flags = 0);
cudaError_t cudaStreamQuery(cudaStream_t stream);

// Events record the host wall-clock time at cudaEventRecord.
cudaError_t cudaEventCreate(cudaEvent_t* event);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned int flags);
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream = 0);
cudaError_t cudaEventQuery(cudaEvent_t event);
cudaError_t cudaEventSynchronize(cudaEvent_t event);
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end);
cudaError_t cudaEventDestroy(cudaEvent_t event);

// Kernel attributes: the dynamic shared memory opt-in is recorded per kernel and enforced at launch.
cudaError_t cudaFuncSetAttribute(const void* func, enum cudaFuncAttribute attr, int value);

// Copies to a `__device__`/`__constant__` variable, which is an ordinary host variable here.
cudaError_t cudaMemcpyToSymbol(const void* symbol, const void* src, size_t count, size_t offset = 0,
                               enum cudaMemcpyKind kind = cudaMemcpyHostToDevice);

}  // extern "C"
