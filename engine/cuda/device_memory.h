// The CUDA side of the caching allocator (engine/caching_allocator.h) and of the pinned staging
// pool (engine/pinned_staging.h): device memory from cudaMalloc/cudaFree on one device, pinned host
// memory from cudaHostAlloc/cudaFreeHost, and stream events from cudaEventRecord/cudaEventQuery.
// The CUDA context builds its allocator from them:
//   CachingAllocator(std::make_unique<CudaDeviceMemory>(index),
//                    std::make_unique<CudaStreamEvents>(index, stream_of), device)
// None of these classes locks: their users call them under their own mutex.
#pragma once

#include <cuda_runtime.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "engine/caching_allocator.h"
#include "engine/pinned_staging.h"

namespace strata {

class CudaDeviceMemory final : public DeviceMemory {
 public:
  // Throws kernels::cuda::CudaError when the device does not exist.
  explicit CudaDeviceMemory(int index);
  // cudaMalloc on this device; nullptr when it reports cudaErrorMemoryAllocation (the error is
  // cleared so later calls do not see it); any other failure throws naming the call.
  void* malloc(size_t bytes) override;
  void free(void* ptr) override;
  // "cuda:<index> (<device name>)".
  std::string name() const override { return name_; }
  // cudaMemGetInfo for this device; nullopt if that fails.
  std::optional<DeviceMemoryInfo> info() override;

 private:
  int index_;
  std::string name_;
};

class CudaPinnedMemory final : public PinnedMemory {
 public:
  explicit CudaPinnedMemory(int index) : index_(index) {}
  // cudaHostAlloc (portable: usable by every device); throws naming the call and size on failure.
  void* allocate(size_t bytes) override;
  void free(void* ptr) override;

 private:
  int index_;
};

class CudaStreamEvents final : public StreamEvents {
 public:
  // `stream_of` maps the allocator's stream ids to CUDA streams of device `index` (0 = the compute
  // stream); it is called when an event is recorded, so the streams must outlive this object.
  CudaStreamEvents(int index, std::function<cudaStream_t(StreamId)> stream_of);
  ~CudaStreamEvents() override;
  CudaStreamEvents(const CudaStreamEvents&) = delete;
  CudaStreamEvents& operator=(const CudaStreamEvents&) = delete;

  uint64_t record(StreamId stream) override;
  bool query(uint64_t event) override;
  void synchronize(uint64_t event) override;
  void release(uint64_t event) override;
  // Work queued on `waiting` from now on runs after `event` has completed (cudaStreamWaitEvent);
  // the host does not wait.
  void make_stream_wait(StreamId waiting, uint64_t event);

 private:
  int index_;
  std::function<cudaStream_t(StreamId)> stream_of_;
  // Released events, recorded again before new ones are created (creating one is a driver call).
  std::vector<cudaEvent_t> idle_;
  // Every event created, destroyed with this object.
  std::vector<cudaEvent_t> created_;
};

}  // namespace strata
