#include "engine/cuda/graph.h"

#include <exception>
#include <string>

#include "engine/error.h"
#include "kernels/cuda/check.h"

namespace strata {

CudaGraph::CudaGraph(CudaContext& context, CachingAllocator& allocator)
    : context_(context), allocator_(allocator), pool_(allocator.create_private_pool()) {
  check_buffer_ = allocator_.allocate(kCheckBytes);
}

CudaGraph::~CudaGraph() {
  if (exec_ != nullptr) cudaGraphExecDestroy(exec_);
  try {
    allocator_.deallocate(check_buffer_, kCheckBytes);
    allocator_.release_private_pool(pool_);
  } catch (...) {
    // A destructor cannot report: the pool then stays private, which wastes memory but is safe.
  }
}

void CudaGraph::prime(const std::function<void()>& work) {
  allocator_.begin_private_pool(pool_, CudaContext::kComputeStream, false);
  try {
    work();
  } catch (...) {
    allocator_.end_private_pool();
    throw;
  }
  allocator_.end_private_pool();
}

void CudaGraph::capture(const std::function<void()>& work) {
  check(exec_ == nullptr, "CudaGraph::capture on ", context_.name(), ": the graph was captured already");
  const cudaStream_t stream = context_.stream().handle;
  STRATA_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  context_.begin_capture_checks(check_buffer_, kCheckBytes);
  allocator_.begin_private_pool(pool_, CudaContext::kComputeStream, true);
  std::exception_ptr failure;
  try {
    work();
  } catch (...) {
    failure = std::current_exception();
  }
  allocator_.end_private_pool();
  checks_ = context_.end_capture_checks();
  cudaGraph_t graph = nullptr;
  const cudaError_t ended = cudaStreamEndCapture(stream, &graph);
  if (failure) {
    if (graph != nullptr) cudaGraphDestroy(graph);
    std::rethrow_exception(failure);
  }
  if (ended != cudaSuccess) {
    cudaGetLastError();
    throw Error(cat("CUDA graph capture on ", context_.name(), " failed: ", cudaGetErrorName(ended),
                    " (something in the captured work synchronized the host, allocated device memory or used "
                    "another stream)"));
  }
  const cudaError_t instantiated = cudaGraphInstantiate(&exec_, graph, 0);
  cudaGraphDestroy(graph);
  STRATA_CUDA_CHECK(instantiated);
}

void CudaGraph::launch() {
  check(exec_ != nullptr, "CudaGraph::launch on ", context_.name(), ": nothing was captured");
  STRATA_CUDA_CHECK(cudaGraphLaunch(exec_, context_.stream().handle));
  for (const CudaContext::CapturedCheck& captured : checks_) {
    context_.check_at_next_synchronize(static_cast<const char*>(check_buffer_) + captured.offset, captured.bytes,
                                       captured.verdict);
  }
}

}  // namespace strata
