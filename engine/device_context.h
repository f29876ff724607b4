// DeviceContext: what the engine needs from a non-CPU device, implemented by the CUDA backend
// (engine/cuda/context.h). The Tensor class moves bytes with it; ops reach the backend-specific
// context (stream, library handles, algorithm caches) through their inputs' Device.
//
// All operations are ordered on the context's stream; copies to the host return once the data is
// there, so host code may read it immediately.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "engine/allocator.h"
#include "engine/dtype.h"

namespace strata {

class DeviceContext {
 public:
  virtual ~DeviceContext() = default;
  virtual Allocator& allocator() = 0;
  virtual std::string name() const = 0;
  virtual void synchronize() = 0;
  // Returns cached, unused device memory to the device (the caching allocator's segments).
  virtual void empty_cache() = 0;

  virtual void copy_from_host(void* device_dst, const void* host_src, size_t bytes) = 0;
  virtual void copy_to_host(void* host_dst, const void* device_src, size_t bytes) = 0;
  virtual void copy_on_device(void* device_dst, const void* device_src, size_t bytes) = 0;
  virtual void fill_zero(void* device_dst, size_t bytes) = 0;
  // dst[i] = value (converted to dtype) for n elements.
  virtual void fill(void* device_dst, DType dtype, double value, int64_t n) = 0;
  // Strided copy with dtype conversion: dst (contiguous, dst_dtype) = src viewed with `shape` and
  // `strides` (in elements, rank <= kMaxStridedRank) starting at element `src_offset`.
  static constexpr int kMaxStridedRank = 8;
  virtual void copy_strided(void* device_dst, DType dst_dtype, const void* device_src, DType src_dtype,
                            const int64_t* shape, const int64_t* strides, int rank, int64_t src_offset) = 0;
};

}  // namespace strata
