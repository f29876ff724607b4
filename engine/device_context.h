// DeviceContext: what the engine needs from a non-CPU device, implemented by the CUDA backend
// (engine/cuda/context.h). The Tensor class moves bytes with it; ops reach the backend-specific
// context (stream, library handles, algorithm caches) through their inputs' Device.
//
// Two streams: the compute stream, on which every op and every method below runs unless it says
// otherwise, and the copy stream, on which the loader's batches travel to the device while the
// compute stream works on the previous batch (data/device_prefetcher.h). Copies to the host return
// once the data is there, so host code may read it immediately; copies from the host return as
// soon as the source has been read (it may be freed or reused), before the device has the data.
//
// Checks deferred to the next host synchronisation. Nothing inside a training step reads a value
// back to the host (DESIGN.md, "One step, one direction"), yet some results of device work must be
// checked on the host, e.g. the label statistics that tell a loss its labels were all in range
// (engine/ops/labels.h). check_at_next_synchronize() takes such a check without waiting for the
// device: the bytes are copied aside in stream order, and the verdict is evaluated at the device's
// next host synchronisation, where the host waits anyway: every blocking copy to the host
// (Tensor::to(cpu), to_vector, item) and synchronize(). Before the synchronisation it performs, that
// call queues one copy of the pending checks' bytes into pinned host memory; after it, it evaluates
// the checks in the order they were made and throws strata::Error with the first failure's message
// (the others are dropped), noting that the failure was detected at the first host synchronisation
// after the op that made the check. The copy the caller asked for has completed by then, but the call
// throws instead of returning. Checks still pending when the context is destroyed are dropped.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "engine/allocator.h"
#include "engine/dtype.h"

namespace strata {

// A CUDA graph of device work (engine/cuda/graph.h): a private memory pool, the work captured once,
// replayed by launch(). The work is a host function that queues device work on the compute stream
// (e.g. one training iteration).
class DeviceGraph {
 public:
  virtual ~DeviceGraph() = default;
  // Runs `work` now, eagerly, with its allocations on the compute stream served by the graph's
  // private pool, which it sizes for the capture that repeats it.
  virtual void prime(const std::function<void()>& work) = 0;
  // Captures `work`: its device work is recorded, not run; its allocations come from the private
  // pool, which may not grow (PoolExhaustedError, engine/caching_allocator.h). Anything that
  // synchronizes the host inside `work` fails the capture. Throws strata::Error naming the failure;
  // the graph is then empty.
  virtual void capture(const std::function<void()>& work) = 0;
  // Queues one replay on the compute stream; the deferred checks the captured work made
  // (check_at_next_synchronize) are made again for it.
  virtual void launch() = 0;
};

class DeviceContext {
 public:
  virtual ~DeviceContext() = default;
  virtual Allocator& allocator() = 0;
  virtual std::string name() const = 0;
  virtual void synchronize() = 0;
  // Returns cached, unused device memory to the device (the caching allocator's segments).
  virtual void empty_cache() = 0;

  // Compute stream; `host_src` is staged in pinned memory, so this returns without waiting for the
  // device.
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

  // ---- the copy stream ----
  // A host-to-device copy queued on the copy stream: `device_ptr` is new device memory (`bytes` as
  // requested, from allocator()) that holds the host bytes once event `done` has completed.
  struct CopyStreamTransfer {
    void* device_ptr = nullptr;
    size_t bytes = 0;
    uint64_t done = 0;
  };
  // Allocates the destination for the copy stream, stages `host_src` in pinned memory and queues the
  // copy; returns at once (`host_src` may be reused). The memory is deallocated with
  // allocator().deallocate(device_ptr, bytes) like any other; deallocated before hand_over, it is
  // reused only by later work of the copy stream, which runs after this copy.
  virtual CopyStreamTransfer copy_from_host_on_copy_stream(const void* host_src, size_t bytes) = 0;
  // Work queued on the compute stream from now on runs after the copy, and the memory becomes the
  // compute stream's too: once deallocated, the copy stream reuses it only after the compute stream
  // has finished the work queued before the deallocation. Call once per transfer, or forget().
  virtual void hand_over(const CopyStreamTransfer& transfer) = 0;
  // A transfer that will never be handed over (e.g. a prefetched batch nobody asked for).
  virtual void forget(const CopyStreamTransfer& transfer) = 0;

  // ---- checks deferred to the next host synchronisation (above) ----
  // Returns the error message for the checked bytes, or "" when they pass.
  using CheckVerdict = std::function<std::string(const void* host_bytes)>;
  // Copies `bytes` bytes at `device_src` aside in the compute stream's order (so device_src may be
  // released or reused once this returns) and evaluates `verdict` on them at the next host
  // synchronisation. With the context's debug switch sync_after_launch (STRATA_CUDA_SYNC=1) it
  // synchronises at once, so a failure throws from here, right after the op.
  virtual void check_at_next_synchronize(const void* device_src, size_t bytes, CheckVerdict verdict) = 0;

  // ---- CUDA graphs ----
  // A new, empty graph; nullptr where graphs do not apply (this default: the CPU; CUDA without the
  // caching allocator, or with STRATA_CUDA_SYNC=1, which synchronizes inside the work).
  virtual std::unique_ptr<DeviceGraph> create_graph() { return nullptr; }
};

}  // namespace strata
