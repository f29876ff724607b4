// The context of one CUDA device: the compute stream, the cuBLAS and cuDNN handles bound to it,
// the copy stream for the loader's batches, the device allocator (whose stream ids are
// kComputeStream and kCopyStream), the pinned staging buffers of host-to-device copies and the
// cuDNN convolution algorithm cache. Created by open_cuda_device()
// (engine/device.h) and reached by ops through their inputs' Device; nothing about the device is
// global.
//
// Environment switches, read once when the context is created:
//   STRATA_CUDA_SYNC=1        synchronise after every kernel launch, so a fault is reported at the
//                             kernel that caused it, and evaluate every deferred check (bad labels)
//                             right after the op that made it
//   STRATA_CUDA_NO_CACHING=1  one cudaMalloc per tensor (see direct_allocator.h)
//   STRATA_CUDNN_BENCHMARK=1  choose convolution algorithms by running them (cudnnFind*AlgorithmEx)
//                             instead of cuDNN's heuristics (kernels/cuda/conv_algorithms.h)
//   STRATA_CUDNN_DETERMINISTIC=1
//                             only convolution algorithms cuDNN reports as deterministic, so a
//                             training run repeats bit for bit (PyTorch's cudnn.deterministic)
//   STRATA_CUDNN_WORKSPACE_LIMIT=<n>[K|M|G]
//                             the largest workspace (bytes) a convolution algorithm may use; 1G by
//                             default
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "engine/caching_allocator.h"
#include "engine/device.h"
#include "engine/device_context.h"
#include "engine/precision.h"
#include "kernels/cuda/backend.h"
#include "kernels/cuda/conv_algorithms.h"

namespace strata {

struct CudaOptions {
  bool sync_after_launch = false;
  bool caching = true;
  bool cudnn_benchmark = false;                    // STRATA_CUDNN_BENCHMARK
  bool cudnn_deterministic = false;                // STRATA_CUDNN_DETERMINISTIC
  size_t cudnn_workspace_limit = size_t{1} << 30;  // STRATA_CUDNN_WORKSPACE_LIMIT
  Precision precision = Precision::f32;            // --precision (engine/precision.h), not from the environment
  // Throws strata::Error naming the variable for a malformed STRATA_CUDNN_WORKSPACE_LIMIT.
  static CudaOptions from_environment();
};

// What a device is, as its properties and attributes say (for roofline bounds: `strata bench gpu`).
struct CudaDeviceInfo {
  std::string name;
  int major = 0, minor = 0;  // compute capability
  int multiprocessors = 0;
  double clock_hz = 0;          // the SMs' peak clock
  double memory_bandwidth = 0;  // bytes/s: 2 (double data rate) x the memory's peak clock x its bus width
  size_t total_memory = 0;      // bytes
};

class CudaStreamEvents;
class PinnedStagingPool;
struct PinnedStagingStats;

class CudaContext final : public DeviceContext {
 public:
  static constexpr StreamId kComputeStream = 0;
  static constexpr StreamId kCopyStream = 1;

  CudaContext(int index, const CudaOptions& options);
  ~CudaContext() override;
  CudaContext(const CudaContext&) = delete;
  CudaContext& operator=(const CudaContext&) = delete;

  // DeviceContext
  Allocator& allocator() override { return *allocator_; }
  std::string name() const override;
  void synchronize() override;
  void empty_cache() override;
  void copy_from_host(void* device_dst, const void* host_src, size_t bytes) override;
  void copy_to_host(void* host_dst, const void* device_src, size_t bytes) override;
  void copy_on_device(void* device_dst, const void* device_src, size_t bytes) override;
  void fill_zero(void* device_dst, size_t bytes) override;
  void fill(void* device_dst, DType dtype, double value, int64_t n) override;
  void copy_strided(void* device_dst, DType dst_dtype, const void* device_src, DType src_dtype,
                    const int64_t* shape, const int64_t* strides, int rank, int64_t src_offset) override;
  CopyStreamTransfer copy_from_host_on_copy_stream(const void* host_src, size_t bytes) override;
  void hand_over(const CopyStreamTransfer& transfer) override;
  void forget(const CopyStreamTransfer& transfer) override;
  void check_at_next_synchronize(const void* device_src, size_t bytes, CheckVerdict verdict) override;
  std::unique_ptr<DeviceGraph> create_graph() override;

  // For a capture (engine/cuda/graph.cpp): until end_capture_checks(), check_at_next_synchronize
  // copies the checked bytes to `buffer` (`capacity` bytes of device memory owned by the graph) and
  // keeps the check instead of making it pending; the graph makes the kept checks again after each
  // launch, from `buffer`. Throws when the checks outgrow `capacity`.
  struct CapturedCheck {
    size_t offset;
    size_t bytes;
    CheckVerdict verdict;
  };
  void begin_capture_checks(void* buffer, size_t capacity);
  std::vector<CapturedCheck> end_capture_checks();

  int index() const { return index_; }
  CudaDeviceInfo info() const;
  const kernels::cuda::Stream& stream() const { return stream_; }
  PinnedStagingStats staging_stats() const;
  cublasHandle_t cublas() const { return cublas_; }
  cudnnHandle_t cudnn() const { return cudnn_; }
  const CudaOptions& options() const { return options_; }
  // cuDNN convolution algorithms chosen on this device, by shape (kernels/cuda/conv2d.h).
  kernels::cuda::ConvAlgorithmCache& conv_algorithms() { return conv_algorithms_; }
  // What this device's kernels take as their backend argument (kernels/cuda/backend.h): the compute
  // stream, the handles bound to it, the algorithm cache, `scratch` (the caller's) and the float math
  // of `op` at the device's precision (engine/precision.h's policy).
  kernels::cuda::Backend kernel_backend(kernels::Scratch* scratch, std::string_view op = "");
  // Called once the Device value exists (the allocator names its device in messages).
  void attach(const Device& device);

 private:
  cudaStream_t handle_of(StreamId stream) const;
  // Copies `bytes` from the host through a pinned staging buffer on `stream`; returns at once.
  void stage_and_copy(void* device_dst, const void* host_src, size_t bytes, StreamId stream);

  // A deferred check (device_context.h): where its bytes sit in check_bytes_, and its verdict.
  struct PendingCheck {
    size_t offset;
    size_t bytes;
    CheckVerdict verdict;
  };
  // The checks taken at a synchronisation, their bytes on their way to `host` (a staging buffer).
  struct TakenChecks {
    std::vector<PendingCheck> checks;
    void* host = nullptr;
  };
  // Runs `wait` (work that makes the host wait for the compute stream) with the pending checks' bytes
  // copied to the host before it, then evaluates the checks.
  void synchronize_with_checks(const std::function<void()>& wait);
  TakenChecks take_checks();
  void evaluate_checks(const TakenChecks& taken);

  int index_;
  CudaOptions options_;
  kernels::cuda::Stream stream_;
  kernels::cuda::Stream copy_stream_;
  // Events of the staging pool (used under its mutex) and of copy-stream transfers (under
  // transfer_mutex_); CudaStreamEvents does not lock.
  std::unique_ptr<CudaStreamEvents> staging_events_;
  std::unique_ptr<CudaStreamEvents> transfer_events_;
  std::mutex transfer_mutex_;
  std::unique_ptr<PinnedStagingPool> staging_;
  cublasHandle_t cublas_ = nullptr;
  cudnnHandle_t cudnn_ = nullptr;
  kernels::cuda::ConvAlgorithmCache conv_algorithms_;
  std::unique_ptr<Allocator> allocator_;
  // Deferred checks: their bytes side by side in one device buffer (from allocator_, grown by
  // doubling, reused from the start after each synchronisation), in the order they were made.
  std::mutex checks_mutex_;
  void* check_bytes_ = nullptr;
  size_t check_capacity_ = 0;
  size_t check_used_ = 0;
  std::vector<PendingCheck> pending_checks_;
  void* capture_check_buffer_ = nullptr;  // set between begin_ and end_capture_checks
  size_t capture_check_capacity_ = 0;
  std::vector<CapturedCheck> captured_checks_;
};

// The CUDA context of `device`; throws naming the device when it is not a CUDA device.
CudaContext& cuda_context(const Device& device);

}  // namespace strata
