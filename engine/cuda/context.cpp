#include "engine/cuda/context.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "engine/caching_allocator.h"
#include "engine/cuda/device_memory.h"
#include "engine/cuda/direct_allocator.h"
#include "engine/cuda/graph.h"
#include "engine/dispatch.h"
#include "engine/error.h"
#include "engine/pinned_staging.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/tensor_utils.h"

namespace strata {

namespace {

bool env_flag(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr && std::strcmp(value, "") != 0 && std::strcmp(value, "0") != 0;
}

// A byte count with an optional K, M or G suffix (powers of 1024), e.g. "512M".
size_t env_bytes(const char* name, size_t fallback) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return fallback;
  char* end = nullptr;
  errno = 0;
  unsigned long long number = std::strtoull(value, &end, 10);
  int shift = 0;
  if (end != value && *end != '\0' && end[1] == '\0') {
    shift = *end == 'K' ? 10 : *end == 'M' ? 20 : *end == 'G' ? 30 : -1;
    ++end;
  }
  check(end != value && *end == '\0' && shift >= 0 && errno == 0 && value[0] != '-' &&
            number <= (std::numeric_limits<size_t>::max() >> shift),
        name, "=", value, ": expected a byte count such as 1073741824, 512M or 1G");
  return static_cast<size_t>(number) << shift;
}

}  // namespace

CudaOptions CudaOptions::from_environment() {
  CudaOptions o;
  o.sync_after_launch = env_flag("STRATA_CUDA_SYNC");
  o.caching = !env_flag("STRATA_CUDA_NO_CACHING");
  o.cudnn_benchmark = env_flag("STRATA_CUDNN_BENCHMARK");
  o.cudnn_deterministic = env_flag("STRATA_CUDNN_DETERMINISTIC");
  o.cudnn_workspace_limit = env_bytes("STRATA_CUDNN_WORKSPACE_LIMIT", o.cudnn_workspace_limit);
  return o;
}

CudaContext::CudaContext(int index, const CudaOptions& options)
    : index_(index),
      options_(options),
      conv_algorithms_(kernels::cuda::ConvAlgorithmPolicy{options.cudnn_benchmark, options.cudnn_workspace_limit,
                                                          options.cudnn_deterministic}) {
  STRATA_CUDA_CHECK(cudaSetDevice(index));
  STRATA_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_.handle, cudaStreamNonBlocking));
  stream_.sync_after_launch = options.sync_after_launch;
  STRATA_CUDA_CHECK(cudaStreamCreateWithFlags(&copy_stream_.handle, cudaStreamNonBlocking));
  copy_stream_.sync_after_launch = options.sync_after_launch;
  auto stream_of = [this](StreamId id) { return handle_of(id); };
  staging_events_ = std::make_unique<CudaStreamEvents>(index, stream_of);
  transfer_events_ = std::make_unique<CudaStreamEvents>(index, stream_of);
  staging_ = std::make_unique<PinnedStagingPool>(std::make_unique<CudaPinnedMemory>(index), *staging_events_);
  STRATA_CUBLAS_CHECK(cublasCreate(&cublas_));
  STRATA_CUBLAS_CHECK(cublasSetStream(cublas_, stream_.handle));
  // Strict fp32: no TF32 tensor-core math unless an op asks for it explicitly (STYLE.md).
  STRATA_CUBLAS_CHECK(cublasSetMathMode(cublas_, CUBLAS_DEFAULT_MATH));
  STRATA_CUDNN_CHECK(cudnnCreate(&cudnn_));
  STRATA_CUDNN_CHECK(cudnnSetStream(cudnn_, stream_.handle));
}

CudaContext::~CudaContext() {
  // Destructors must not throw: report nothing, release what exists in reverse order. Pending checks
  // are dropped.
  if (copy_stream_.handle) cudaStreamSynchronize(copy_stream_.handle);
  if (stream_.handle) cudaStreamSynchronize(stream_.handle);
  if (check_bytes_) allocator_->deallocate(check_bytes_, check_capacity_);
  staging_.reset();
  allocator_.reset();
  transfer_events_.reset();
  staging_events_.reset();
  if (cudnn_) cudnnDestroy(cudnn_);
  if (cublas_) cublasDestroy(cublas_);
  if (copy_stream_.handle) cudaStreamDestroy(copy_stream_.handle);
  if (stream_.handle) cudaStreamDestroy(stream_.handle);
}

kernels::cuda::Backend CudaContext::kernel_backend(kernels::Scratch* scratch, std::string_view op) {
  return kernels::cuda::Backend{stream_,           cublas_, cudnn_,
                                &conv_algorithms_, scratch, float_math_for(options_.precision, op)};
}

void CudaContext::attach(const Device& device) {
  // The allocator's Device has no context: the context owns the allocator.
  Device plain{device.type, device.index, nullptr};
  if (!options_.caching) {
    allocator_ = std::make_unique<DirectDeviceAllocator>(plain);
    return;
  }
  auto stream_of = [this](StreamId id) { return handle_of(id); };
  allocator_ = std::make_unique<CachingAllocator>(std::make_unique<CudaDeviceMemory>(index_),
                                                  std::make_unique<CudaStreamEvents>(index_, stream_of), plain);
}

cudaStream_t CudaContext::handle_of(StreamId stream) const {
  if (stream == kComputeStream) return stream_.handle;
  if (stream == kCopyStream) return copy_stream_.handle;
  throw Error(cat("cuda:", index_, ": unknown stream id ", stream, " (0 = compute, 1 = copy)"));
}

void CudaContext::empty_cache() {
  if (auto* caching = dynamic_cast<CachingAllocator*>(allocator_.get())) caching->empty_cache();
  staging_->empty_cache();
}

PinnedStagingStats CudaContext::staging_stats() const { return staging_->stats(); }

std::string CudaContext::name() const {
  cudaDeviceProp properties{};
  STRATA_CUDA_CHECK(cudaGetDeviceProperties(&properties, index_));
  return cat("cuda:", index_, " (", properties.name, ", sm_", properties.major, properties.minor, ")");
}

CudaDeviceInfo CudaContext::info() const {
  cudaDeviceProp properties{};
  STRATA_CUDA_CHECK(cudaGetDeviceProperties(&properties, index_));
  auto attribute = [&](cudaDeviceAttr attr) {
    int value = 0;
    STRATA_CUDA_CHECK(cudaDeviceGetAttribute(&value, attr, index_));
    return static_cast<double>(value);
  };
  CudaDeviceInfo info;
  info.name = properties.name;
  info.major = properties.major;
  info.minor = properties.minor;
  info.multiprocessors = properties.multiProcessorCount;
  info.clock_hz = attribute(cudaDevAttrClockRate) * 1e3;  // kHz
  info.memory_bandwidth =
      2 * attribute(cudaDevAttrMemoryClockRate) * 1e3 * attribute(cudaDevAttrGlobalMemoryBusWidth) / 8;
  info.total_memory = properties.totalGlobalMem;
  return info;
}

void CudaContext::synchronize() {
  synchronize_with_checks([&] {
    STRATA_CUDA_CHECK(cudaStreamSynchronize(copy_stream_.handle));
    STRATA_CUDA_CHECK(cudaStreamSynchronize(stream_.handle));
  });
}

std::unique_ptr<DeviceGraph> CudaContext::create_graph() {
  auto* caching = dynamic_cast<CachingAllocator*>(allocator_.get());
  if (caching == nullptr || options_.sync_after_launch) return nullptr;
  return std::make_unique<CudaGraph>(*this, *caching);
}

void CudaContext::begin_capture_checks(void* buffer, size_t capacity) {
  std::lock_guard<std::mutex> lock(checks_mutex_);
  capture_check_buffer_ = buffer;
  capture_check_capacity_ = capacity;
  captured_checks_.clear();
}

std::vector<CudaContext::CapturedCheck> CudaContext::end_capture_checks() {
  std::lock_guard<std::mutex> lock(checks_mutex_);
  capture_check_buffer_ = nullptr;
  capture_check_capacity_ = 0;
  return std::move(captured_checks_);
}

void CudaContext::check_at_next_synchronize(const void* device_src, size_t bytes, CheckVerdict verdict) {
  {
    std::lock_guard<std::mutex> lock(checks_mutex_);
    if (capture_check_buffer_ != nullptr) {
      const size_t offset =
          captured_checks_.empty() ? 0 : captured_checks_.back().offset + captured_checks_.back().bytes;
      const size_t aligned = (offset + 15) / 16 * 16;
      check(aligned + bytes <= capture_check_capacity_, "CUDA graph capture on ", name(),
            ": its deferred checks need more than ", capture_check_capacity_, " bytes");
      copy_on_device(static_cast<char*>(capture_check_buffer_) + aligned, device_src, bytes);
      captured_checks_.push_back({aligned, bytes, std::move(verdict)});
      return;
    }
    // 16-byte slots keep every check's bytes aligned for any element type.
    const size_t offset = check_used_, end = offset + (bytes + 15) / 16 * 16;
    if (end > check_capacity_) {
      // Grown in stream order: the bytes already copied aside move to the new buffer first.
      const size_t capacity = std::max<size_t>(4096, 2 * end);
      void* grown = allocator_->allocate(capacity);
      if (offset > 0) copy_on_device(grown, check_bytes_, offset);
      if (check_bytes_) allocator_->deallocate(check_bytes_, check_capacity_);
      check_bytes_ = grown;
      check_capacity_ = capacity;
    }
    copy_on_device(static_cast<char*>(check_bytes_) + offset, device_src, bytes);
    check_used_ = end;
    pending_checks_.push_back({offset, bytes, std::move(verdict)});
  }
  if (options_.sync_after_launch) synchronize();
}

CudaContext::TakenChecks CudaContext::take_checks() {
  std::lock_guard<std::mutex> lock(checks_mutex_);
  TakenChecks taken;
  if (pending_checks_.empty()) return taken;
  // Pinned memory, so the copy is queued and the host does not wait for it here.
  taken.host = staging_->acquire(check_used_);
  cudaError_t status = cudaMemcpyAsync(taken.host, check_bytes_, check_used_, cudaMemcpyDeviceToHost, stream_.handle);
  if (status != cudaSuccess) {
    staging_->release_after(taken.host, kComputeStream);
    kernels::cuda::throw_cuda_error("cudaMemcpyAsync(deferred checks, device to host)", status, __FILE__, __LINE__);
  }
  // Later checks reuse the buffer from the start, in stream order after this copy.
  taken.checks = std::move(pending_checks_);
  pending_checks_.clear();
  check_used_ = 0;
  return taken;
}

void CudaContext::evaluate_checks(const TakenChecks& taken) {
  std::string failure;
  for (const PendingCheck& check : taken.checks) {
    failure = check.verdict(static_cast<const char*>(taken.host) + check.offset);
    if (!failure.empty()) break;
  }
  if (taken.host) staging_->release_after(taken.host, kComputeStream);
  if (failure.empty()) return;
  const std::string where = options_.sync_after_launch
                                ? std::string("right after the op, STRATA_CUDA_SYNC=1")
                                : cat("on cuda:", index_,
                                      " at the first host synchronisation after the op ran; STRATA_CUDA_SYNC=1 "
                                      "detects it right after the op");
  throw Error(cat(failure, " (detected ", where, ")"));
}

void CudaContext::synchronize_with_checks(const std::function<void()>& wait) {
  const TakenChecks taken = take_checks();
  try {
    wait();
  } catch (...) {
    if (taken.host) staging_->release_after(taken.host, kComputeStream);
    throw;
  }
  evaluate_checks(taken);
}

void CudaContext::stage_and_copy(void* device_dst, const void* host_src, size_t bytes, StreamId stream) {
  if (bytes == 0) return;
  void* staged = staging_->acquire(bytes);
  std::memcpy(staged, host_src, bytes);
  const cudaStream_t handle = handle_of(stream);
  cudaError_t status = cudaMemcpyAsync(device_dst, staged, bytes, cudaMemcpyHostToDevice, handle);
  // Released whether or not the copy was queued: the event behind it completes either way.
  staging_->release_after(staged, stream);
  if (status != cudaSuccess) {
    kernels::cuda::throw_cuda_error(cat("cudaMemcpyAsync(", bytes, " bytes, host to device, stream ", stream, ")").c_str(),
                                    status, __FILE__, __LINE__);
  }
  if (options_.sync_after_launch) STRATA_CUDA_CHECK(cudaStreamSynchronize(handle));
}

void CudaContext::copy_from_host(void* device_dst, const void* host_src, size_t bytes) {
  stage_and_copy(device_dst, host_src, bytes, kComputeStream);
}

// Not staged: the host waits for this copy anyway, and staging would add a host memcpy of its own.
void CudaContext::copy_to_host(void* host_dst, const void* device_src, size_t bytes) {
  if (bytes == 0) return;
  synchronize_with_checks([&] {
    STRATA_CUDA_CHECK(cudaMemcpyAsync(host_dst, device_src, bytes, cudaMemcpyDeviceToHost, stream_.handle));
    STRATA_CUDA_CHECK(cudaStreamSynchronize(stream_.handle));
  });
}

void CudaContext::copy_on_device(void* device_dst, const void* device_src, size_t bytes) {
  if (bytes == 0) return;
  STRATA_CUDA_CHECK(cudaMemcpyAsync(device_dst, device_src, bytes, cudaMemcpyDeviceToDevice, stream_.handle));
}

void CudaContext::fill_zero(void* device_dst, size_t bytes) {
  if (bytes == 0) return;
  STRATA_CUDA_CHECK(cudaMemsetAsync(device_dst, 0, bytes, stream_.handle));
}

void CudaContext::fill(void* device_dst, DType dtype, double value, int64_t n) {
  visit_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    kernels::cuda::fill_cuda<T>(static_cast<T*>(device_dst), convert_scalar<T>(value), n, stream_);
  });
}

void CudaContext::copy_strided(void* device_dst, DType dst_dtype, const void* device_src, DType src_dtype,
                               const int64_t* shape, const int64_t* strides, int rank, int64_t src_offset) {
  kernels::cuda::StridedView view;
  check(rank <= kernels::cuda::StridedView::kMaxRank, "copy_strided: rank ", rank, " above ",
        kernels::cuda::StridedView::kMaxRank);
  view.rank = rank;
  view.offset = src_offset;
  for (int d = 0; d < rank; ++d) {
    view.shape[d] = shape[d];
    view.strides[d] = strides[d];
  }
  visit_dtype(dst_dtype, [&](auto to_tag) {
    using To = decltype(to_tag);
    visit_dtype(src_dtype, [&](auto from_tag) {
      using From = decltype(from_tag);
      kernels::cuda::copy_strided_cuda<To, From>(static_cast<To*>(device_dst), static_cast<const From*>(device_src),
                                                 view, stream_);
    });
  });
}

DeviceContext::CopyStreamTransfer CudaContext::copy_from_host_on_copy_stream(const void* host_src, size_t bytes) {
  // Allocated for the copy stream: its pool is reused only by later copy-stream work, which runs
  // after everything queued before it there, so no event is needed until hand_over.
  auto* caching = dynamic_cast<CachingAllocator*>(allocator_.get());
  CopyStreamTransfer transfer;
  transfer.bytes = bytes;
  transfer.device_ptr = caching != nullptr ? caching->allocate_on(kCopyStream, bytes) : allocator_->allocate(bytes);
  try {
    stage_and_copy(transfer.device_ptr, host_src, bytes, kCopyStream);
    std::lock_guard<std::mutex> lock(transfer_mutex_);
    transfer.done = transfer_events_->record(kCopyStream);
  } catch (...) {
    allocator_->deallocate(transfer.device_ptr, bytes);
    throw;
  }
  return transfer;
}

void CudaContext::hand_over(const CopyStreamTransfer& transfer) {
  {
    std::lock_guard<std::mutex> lock(transfer_mutex_);
    transfer_events_->make_stream_wait(kComputeStream, transfer.done);
    // The wait refers to the record already made, so the event may be recorded again by others.
    transfer_events_->release(transfer.done);
  }
  if (auto* caching = dynamic_cast<CachingAllocator*>(allocator_.get()))
    caching->record_stream(transfer.device_ptr, kComputeStream);
}

void CudaContext::forget(const CopyStreamTransfer& transfer) {
  std::lock_guard<std::mutex> lock(transfer_mutex_);
  transfer_events_->release(transfer.done);
}

CudaContext& cuda_context(const Device& device) {
  check(device.is_cuda() && device.context != nullptr, "expected a CUDA device opened with open_cuda_device(), got ",
        device.str());
  return static_cast<CudaContext&>(*device.context);
}

Device open_cuda_device(int index, Precision precision) {
  int count = 0;
  cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    cudaGetLastError();
    throw Error(cat("open_cuda_device(", index, "): no usable CUDA device (", cudaGetErrorString(status), ")"));
  }
  check(index >= 0 && index < count, "open_cuda_device(", index, "): this machine has ", count, " CUDA device(s)");
  CudaOptions options = CudaOptions::from_environment();
  options.precision = precision;
  auto context = std::make_shared<CudaContext>(index, options);
  Device device{Device::Type::cuda, index, context};
  context->attach(device);
  return device;
}

std::string default_device_text() {
  if (std::string(cuda_backend()) != "real") return "cpu";
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // no driver or no device: clear the error, run on the CPU
    return "cpu";
  }
  return count > 0 ? "cuda" : "cpu";
}

const char* cuda_backend() {
#if defined(STRATA_CUDA_EMULATION)
  return "emulated";
#else
  return "real";
#endif
}

}  // namespace strata
