#include "engine/cuda/device_memory.h"

#include <utility>

#include "engine/error.h"
#include "kernels/cuda/check.h"

namespace strata {

namespace {

cudaEvent_t to_event(uint64_t event) { return reinterpret_cast<cudaEvent_t>(static_cast<uintptr_t>(event)); }

uint64_t to_id(cudaEvent_t event) { return static_cast<uint64_t>(reinterpret_cast<uintptr_t>(event)); }

}  // namespace

CudaDeviceMemory::CudaDeviceMemory(int index) : index_(index) {
  cudaDeviceProp properties{};
  STRATA_CUDA_CHECK(cudaGetDeviceProperties(&properties, index));
  name_ = cat("cuda:", index, " (", properties.name, ")");
}

void* CudaDeviceMemory::malloc(size_t bytes) {
  STRATA_CUDA_CHECK(cudaSetDevice(index_));
  void* ptr = nullptr;
  cudaError_t status = cudaMalloc(&ptr, bytes);
  if (status == cudaErrorMemoryAllocation) {
    // cudaMalloc also left it as the thread's last error, where the next checked launch would find it.
    cudaGetLastError();
    return nullptr;
  }
  if (status != cudaSuccess) {
    kernels::cuda::throw_cuda_error(cat("cudaMalloc(", bytes, " bytes) on cuda:", index_).c_str(), status, __FILE__,
                                    __LINE__);
  }
  return ptr;
}

void CudaDeviceMemory::free(void* ptr) {
  STRATA_CUDA_CHECK(cudaSetDevice(index_));
  STRATA_CUDA_CHECK(cudaFree(ptr));
}

std::optional<DeviceMemoryInfo> CudaDeviceMemory::info() {
  DeviceMemoryInfo info;
  if (cudaSetDevice(index_) != cudaSuccess || cudaMemGetInfo(&info.free_bytes, &info.total_bytes) != cudaSuccess) {
    // Only used to enrich an out-of-memory message: do not let it replace that message.
    cudaGetLastError();
    return std::nullopt;
  }
  return info;
}

void* CudaPinnedMemory::allocate(size_t bytes) {
  STRATA_CUDA_CHECK(cudaSetDevice(index_));
  void* ptr = nullptr;
  cudaError_t status = cudaHostAlloc(&ptr, bytes, cudaHostAllocPortable);
  if (status != cudaSuccess) {
    kernels::cuda::throw_cuda_error(cat("cudaHostAlloc(", bytes, " bytes of pinned host memory) for cuda:", index_).c_str(),
                                    status, __FILE__, __LINE__);
  }
  return ptr;
}

void CudaPinnedMemory::free(void* ptr) { STRATA_CUDA_CHECK(cudaFreeHost(ptr)); }

CudaStreamEvents::CudaStreamEvents(int index, std::function<cudaStream_t(StreamId)> stream_of)
    : index_(index), stream_of_(std::move(stream_of)) {
  check(static_cast<bool>(stream_of_), "CudaStreamEvents(cuda:", index, "): needs a StreamId -> cudaStream_t map");
}

CudaStreamEvents::~CudaStreamEvents() {
  // Destructors must not throw: a failing cudaEventDestroy at teardown is dropped.
  for (cudaEvent_t event : created_) cudaEventDestroy(event);
}

uint64_t CudaStreamEvents::record(StreamId stream) {
  cudaEvent_t event = nullptr;
  if (idle_.empty()) {
    STRATA_CUDA_CHECK(cudaSetDevice(index_));
    // Only completion is asked for; timing would cost every record a timestamp.
    STRATA_CUDA_CHECK(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
    created_.push_back(event);
  } else {
    event = idle_.back();
    idle_.pop_back();
  }
  cudaError_t status = cudaEventRecord(event, stream_of_(stream));
  if (status != cudaSuccess) {
    idle_.push_back(event);
    kernels::cuda::throw_cuda_error(cat("cudaEventRecord(event, stream ", stream, ") on cuda:", index_).c_str(), status,
                                    __FILE__, __LINE__);
  }
  return to_id(event);
}

bool CudaStreamEvents::query(uint64_t event) {
  cudaError_t status = cudaEventQuery(to_event(event));
  if (status == cudaErrorNotReady) {
    // Not an error, but the runtime may keep it as the last error; clear it as PyTorch does.
    cudaGetLastError();
    return false;
  }
  if (status != cudaSuccess) kernels::cuda::throw_cuda_error("cudaEventQuery(event)", status, __FILE__, __LINE__);
  return true;
}

void CudaStreamEvents::synchronize(uint64_t event) { STRATA_CUDA_CHECK(cudaEventSynchronize(to_event(event))); }

void CudaStreamEvents::release(uint64_t event) { idle_.push_back(to_event(event)); }

void CudaStreamEvents::make_stream_wait(StreamId waiting, uint64_t event) {
  STRATA_CUDA_CHECK(cudaStreamWaitEvent(stream_of_(waiting), to_event(event), 0));
}

}  // namespace strata
