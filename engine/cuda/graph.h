// CudaGraph: DeviceGraph (engine/device_context.h) on a CUDA device. One graph = one private pool of
// the caching allocator (engine/caching_allocator.h), one captured cudaGraphExec_t, and a small
// device buffer for the deferred checks the captured work makes.
//
//   prime(work)    work runs eagerly with the compute stream's allocations routed to the pool: the
//                  pool takes from the device what the capture of the same work will need.
//   capture(work)  cudaStreamBeginCapture(compute stream, ThreadLocal mode) -> work -> EndCapture ->
//                  instantiate. The pool is routed in capturing mode (it may not grow: no cudaMalloc
//                  during a capture), the deferred checks go to the graph's buffer. Any failure
//                  (an exception of `work`, a host sync inside it, which invalidates the capture)
//                  ends the capture and throws strata::Error; the graph stays empty.
//   launch()       cudaGraphLaunch on the compute stream, then the captured checks are made again on
//                  the graph's buffer, so a replayed step's label checks are evaluated at the next
//                  host synchronisation like an eager step's.
//
// The memory the captured work allocated and released stays in the pool (nobody else gets it while
// the graph lives); what it left allocated (e.g. gradients) is the caller's to keep. The destructor
// destroys the executable graph and releases the pool. ThreadLocal mode: the loader's threads may
// allocate (on the copy stream) while the compute stream captures.
#pragma once

#include <cuda_runtime.h>

#include <functional>
#include <vector>

#include "engine/caching_allocator.h"
#include "engine/cuda/context.h"
#include "engine/device_context.h"

namespace strata {

class CudaGraph final : public DeviceGraph {
 public:
  CudaGraph(CudaContext& context, CachingAllocator& allocator);
  ~CudaGraph() override;
  CudaGraph(const CudaGraph&) = delete;
  CudaGraph& operator=(const CudaGraph&) = delete;

  void prime(const std::function<void()>& work) override;
  void capture(const std::function<void()>& work) override;
  void launch() override;

 private:
  static constexpr size_t kCheckBytes = 4096;

  CudaContext& context_;
  CachingAllocator& allocator_;
  uint64_t pool_ = 0;
  void* check_buffer_ = nullptr;
  cudaGraphExec_t exec_ = nullptr;
  std::vector<CudaContext::CapturedCheck> checks_;
};

}  // namespace strata
