// The CUDA side of the caching allocator (engine/caching_allocator.h): device memory from
// cudaMalloc/cudaFree on one device, and stream events from cudaEventRecord/cudaEventQuery.
// The CUDA context builds its allocator from them:
//   CachingAllocator(std::make_unique<CudaDeviceMemory>(index),
//                    std::make_unique<CudaStreamEvents>(index, stream_of), device)
// Neither class locks: the allocator calls them under its own mutex.
#pragma once

#include <cuda_runtime.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "engine/caching_allocator.h"

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

 private:
  int index_;
  std::function<cudaStream_t(StreamId)> stream_of_;
  // Released events, recorded again before new ones are created (creating one is a driver call).
  std::vector<cudaEvent_t> idle_;
  // Every event created, destroyed with this object.
  std::vector<cudaEvent_t> created_;
};

}  // namespace strata
