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

// Stream capture and graphs (graphs.cpp; README.md, "Stream capture and graphs"). While a stream
// captures, its kernels, async copies and memsets and the cuBLAS/cuDNN calls bound to it are recorded
// into a graph instead of running; cudaGraphLaunch replays them in order, as one operation of its
// stream. Calls that would make the host wait, or allocate or free memory, are refused during a
// capture as the reference's capture modes say (cudaErrorStreamCaptureUnsupported), and invalidate it.
cudaError_t cudaStreamBeginCapture(cudaStream_t stream, enum cudaStreamCaptureMode mode);
cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t* pGraph);
cudaError_t cudaStreamIsCapturing(cudaStream_t stream, enum cudaStreamCaptureStatus* pCaptureStatus);
cudaError_t cudaGraphInstantiate(cudaGraphExec_t* pGraphExec, cudaGraph_t graph, unsigned long long flags = 0);
cudaError_t cudaGraphLaunch(cudaGraphExec_t graphExec, cudaStream_t stream);
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t graphExec);
cudaError_t cudaGraphDestroy(cudaGraph_t graph);

// Kernel attributes: the dynamic shared memory opt-in is recorded per kernel and enforced at launch.
cudaError_t cudaFuncSetAttribute(const void* func, enum cudaFuncAttribute attr, int value);

// Copies to a `__device__`/`__constant__` variable, which is an ordinary host variable here.
cudaError_t cudaMemcpyToSymbol(const void* symbol, const void* src, size_t count, size_t offset = 0,
                               enum cudaMemcpyKind kind = cudaMemcpyHostToDevice);

}  // extern "C"
