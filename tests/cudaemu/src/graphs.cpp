// cudaemu: stream capture and CUDA graphs (CUDA Programming Guide, "CUDA Graphs" and "Stream
// Capture"; Runtime API reference, cudaStreamBeginCapture and cudaThreadExchangeStreamCaptureMode).
//
// Capture. cudaStreamBeginCapture(s) puts a created stream in capture mode: from then on what is
// submitted to s (kernel launches, cudaMemcpyAsync between the device and device or pinned memory,
// cudaMemsetAsync, and the cuBLAS/cuDNN computing calls of handles bound to s) is validated at the
// call, as always, and then recorded as a node of the capture's graph instead of running. A node is
// the same closure the stream would have run: a kernel's arguments are copied at the call (a pointer
// keeps pointing at the same device memory, a scalar keeps the value it had when captured), a
// library call keeps its descriptors' values and its host-pointer-mode scalars as read at the call.
// The graph is linear: one capturing stream, nodes in submission order (forks into other streams
// through events are not emulated and are refused).
//
// Replay. cudaGraphInstantiate copies the nodes; cudaGraphLaunch(exec, s) submits them to s as one
// operation that runs every node in order (so in the deferred stream mode the whole graph runs
// late or early as one unit, ordered like any other work of s), stopping at the first failing node.
//
// Rules enforced during a capture, from the reference:
//   - a call that makes the host wait for the capturing stream (cudaStreamSynchronize and
//     cudaStreamQuery of it, a blocking copy on it: to or from pageable memory, host to host) fails
//     with cudaErrorStreamCaptureUnsupported and invalidates the capture;
//   - "potentially unsafe" calls (cudaMalloc, cudaFree, cudaMallocHost, cudaHostAlloc, cudaFreeHost,
//     cudaDeviceSynchronize, the synchronous cudaMemcpy that makes the host wait, cudaStreamSynchronize
//     and cudaEventSynchronize of any stream) fail the same way when the calling thread is
//     prohibited from them: it has a capture of its own not begun in Relaxed mode, or another thread
//     has a capture begun in Global mode (every thread is in Global mode here:
//     cudaThreadExchangeStreamCaptureMode is not emulated). The prohibiting captures are invalidated;
//   - cudaEventRecord on a capturing stream records nothing that runs; the event is then "last
//     recorded in a capture": querying or synchronizing it is cudaErrorCapturedEvent, and only the
//     same capture may wait for it. A capturing stream waiting for an event recorded outside its
//     capture is cudaErrorStreamCaptureIsolation;
//   - an invalidated capture records nothing more; every call submitting to it returns
//     cudaErrorStreamCaptureInvalidated, and cudaStreamEndCapture returns that too, with a null graph;
//   - the legacy default stream cannot capture; cudaStreamEndCapture from another thread than the one
//     that began a non-Relaxed capture is cudaErrorStreamCaptureWrongThread.
// Not emulated: cross-stream capture (fork/join through events), the legacy stream's implicit
// dependency on a capturing blocking stream (cudaErrorStreamCaptureImplicit), graph updates, child
// graphs, the graph construction API (cudaGraphAdd*Node), conditional nodes.
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "internal.h"

struct CUgraph_st {
  std::vector<cudaemu::detail::StreamWork> nodes;
};

// The nodes are shared with the launches, which may run after the executable graph is destroyed
// ("the graph is destroyed once its launches have completed").
struct CUgraphExec_st {
  std::shared_ptr<const std::vector<cudaemu::detail::StreamWork>> nodes;
};

namespace cudaemu::detail {
namespace {

struct Capture {
  cudaStreamCaptureMode mode = cudaStreamCaptureModeGlobal;
  std::thread::id thread;
  unsigned long long id = 0;
  bool invalidated = false;
  std::string why;  // what invalidated it
  std::vector<StreamWork> nodes;
};

struct Captures {
  std::mutex mutex;
  std::map<cudaStream_t, Capture> active;  // by capturing stream
  // Events whose last record was made on a capturing stream: the id of that capture.
  std::map<cudaEvent_t, unsigned long long> captured_events;
  std::set<const CUgraph_st*> graphs;
  std::set<const CUgraphExec_st*> execs;
  unsigned long long next_id = 1;
};

Captures& captures() {
  static Captures* instance = new Captures;  // never destroyed, like the stream scheduler
  return *instance;
}

bool is_legacy(cudaStream_t stream) {
  return stream == nullptr || stream == cudaStreamLegacy || stream == cudaStreamPerThread;
}

void invalidate(Capture& capture, const std::string& why) {
  if (!capture.invalidated) {
    capture.invalidated = true;
    capture.why = why;
    capture.nodes.clear();
  }
}

// Whether `capture` prohibits unsafe calls from the calling thread (see the file comment).
bool prohibits(const Capture& capture) {
  if (capture.mode == cudaStreamCaptureModeRelaxed) {
    return false;
  }
  return capture.thread == std::this_thread::get_id() || capture.mode == cudaStreamCaptureModeGlobal;
}

}  // namespace

bool is_capturing(cudaStream_t stream) {
  if (is_legacy(stream)) {
    return false;
  }
  Captures& c = captures();
  std::lock_guard lock(c.mutex);
  return c.active.count(stream) != 0;
}

bool capture_work(cudaStream_t stream, StreamWork& work, cudaError_t* result) {
  if (is_legacy(stream)) {
    return false;
  }
  Captures& c = captures();
  std::lock_guard lock(c.mutex);
  auto it = c.active.find(stream);
  if (it == c.active.end()) {
    return false;
  }
  if (it->second.invalidated) {
    *result = set_last_error(cudaErrorStreamCaptureInvalidated);
    return true;
  }
  it->second.nodes.push_back(std::move(work));
  *result = cudaSuccess;
  return true;
}

bool run_or_capture(cudaStream_t stream, std::function<void()> compute) {
  StreamWork work = [compute = std::move(compute)] {
    compute();
    return cudaSuccess;
  };
  cudaError_t result = cudaSuccess;
  if (!capture_work(stream, work, &result)) {
    work();
  }
  return result == cudaSuccess;
}

cudaError_t refuse_on_capturing_stream(cudaStream_t stream, const char* api, const char* what) {
  if (is_legacy(stream)) {
    return cudaSuccess;
  }
  Captures& c = captures();
  std::unique_lock lock(c.mutex);
  auto it = c.active.find(stream);
  if (it == c.active.end()) {
    return cudaSuccess;
  }
  const std::string why = format("%s %s on stream %p, which is capturing", api, what, static_cast<void*>(stream));
  invalidate(it->second, why);
  lock.unlock();
  return fail(cudaErrorStreamCaptureUnsupported, api, why + "; the capture is invalidated");
}

cudaError_t check_unsafe_call(const char* api) {
  Captures& c = captures();
  std::unique_lock lock(c.mutex);
  std::string streams;
  for (auto& [stream, capture] : c.active) {
    if (prohibits(capture)) {
      invalidate(capture, format("%s was called during the capture", api));
      streams += format("%s%p", streams.empty() ? "" : ", ", static_cast<void*>(stream));
    }
  }
  if (streams.empty()) {
    return cudaSuccess;
  }
  lock.unlock();
  return fail(cudaErrorStreamCaptureUnsupported, api,
              format("not permitted while stream %s captures (it would wait for, allocate or free device memory "
                     "outside the graph); the capture is invalidated",
                     streams.c_str()));
}

bool capture_event_record(cudaEvent_t event, cudaStream_t stream) {
  Captures& c = captures();
  std::lock_guard lock(c.mutex);
  auto it = is_legacy(stream) ? c.active.end() : c.active.find(stream);
  if (it == c.active.end()) {
    c.captured_events.erase(event);
    return false;
  }
  c.captured_events[event] = it->second.id;
  return true;
}

cudaError_t check_event_not_captured(cudaEvent_t event, const char* api) {
  Captures& c = captures();
  std::unique_lock lock(c.mutex);
  if (c.captured_events.count(event) == 0) {
    return cudaSuccess;
  }
  lock.unlock();
  return fail(cudaErrorCapturedEvent, api,
              format("event %p was last recorded in a capturing stream", static_cast<void*>(event)));
}

bool capture_event_wait(cudaStream_t stream, cudaEvent_t event, const char* api, cudaError_t* result) {
  Captures& c = captures();
  std::unique_lock lock(c.mutex);
  auto event_it = c.captured_events.find(event);
  auto it = is_legacy(stream) ? c.active.end() : c.active.find(stream);
  if (it == c.active.end()) {
    if (event_it == c.captured_events.end()) {
      return false;
    }
    lock.unlock();
    *result = fail(cudaErrorStreamCaptureUnsupported, api,
                   format("stream %p would join the capture that recorded event %p: cross-stream capture is "
                          "not emulated",
                          static_cast<void*>(stream), static_cast<void*>(event)));
    return true;
  }
  if (event_it != c.captured_events.end() && event_it->second == it->second.id) {
    *result = cudaSuccess;  // the capture is linear: its earlier nodes run before later ones anyway
    return true;
  }
  const std::string why = format("stream %p, which is capturing, waits for event %p recorded outside the capture",
                                 static_cast<void*>(stream), static_cast<void*>(event));
  invalidate(it->second, why);
  lock.unlock();
  *result = fail(cudaErrorStreamCaptureIsolation, api, why + "; the capture is invalidated");
  return true;
}

void forget_capture(cudaStream_t stream) {
  Captures& c = captures();
  std::lock_guard lock(c.mutex);
  c.active.erase(stream);
}

}  // namespace cudaemu::detail

using cudaemu::detail::fail;
using cudaemu::detail::format;

extern "C" {

cudaError_t cudaStreamBeginCapture(cudaStream_t stream, enum cudaStreamCaptureMode mode) {
  const char* api = "cudaStreamBeginCapture";
  if (cudaError_t e = cudaemu::detail::check_stream(stream, api); e != cudaSuccess) {
    return e;
  }
  if (mode != cudaStreamCaptureModeGlobal && mode != cudaStreamCaptureModeThreadLocal &&
      mode != cudaStreamCaptureModeRelaxed) {
    return fail(cudaErrorInvalidValue, api, format("unknown capture mode %d", static_cast<int>(mode)));
  }
  if (cudaemu::detail::is_legacy(stream)) {
    return fail(cudaErrorStreamCaptureUnsupported, api, "the legacy default stream cannot capture");
  }
  cudaemu::detail::Captures& c = cudaemu::detail::captures();
  std::unique_lock lock(c.mutex);
  if (c.active.count(stream) != 0) {
    lock.unlock();
    return fail(cudaErrorIllegalState, api, format("stream %p is already capturing", static_cast<void*>(stream)));
  }
  cudaemu::detail::Capture capture;
  capture.mode = mode;
  capture.thread = std::this_thread::get_id();
  capture.id = c.next_id++;
  c.active.emplace(stream, std::move(capture));
  return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t* pGraph) {
  const char* api = "cudaStreamEndCapture";
  if (cudaError_t e = cudaemu::detail::check_stream(stream, api); e != cudaSuccess) {
    return e;
  }
  if (pGraph == nullptr) {
    return fail(cudaErrorInvalidValue, api, "null output pointer");
  }
  cudaemu::detail::Captures& c = cudaemu::detail::captures();
  std::unique_lock lock(c.mutex);
  auto it = cudaemu::detail::is_legacy(stream) ? c.active.end() : c.active.find(stream);
  if (it == c.active.end()) {
    lock.unlock();
    return fail(cudaErrorIllegalState, api, format("stream %p is not capturing", static_cast<void*>(stream)));
  }
  if (it->second.mode != cudaStreamCaptureModeRelaxed && it->second.thread != std::this_thread::get_id()) {
    lock.unlock();
    return fail(cudaErrorStreamCaptureWrongThread, api,
                "the capture was begun by another thread in a mode other than Relaxed");
  }
  cudaemu::detail::Capture capture = std::move(it->second);
  c.active.erase(it);
  for (auto event = c.captured_events.begin(); event != c.captured_events.end();) {
    event = event->second == capture.id ? c.captured_events.erase(event) : std::next(event);
  }
  if (capture.invalidated) {
    *pGraph = nullptr;
    lock.unlock();
    return fail(cudaErrorStreamCaptureInvalidated, api, format("the capture was invalidated: %s", capture.why.c_str()));
  }
  auto* graph = new CUgraph_st{std::move(capture.nodes)};
  c.graphs.insert(graph);
  *pGraph = graph;
  return cudaSuccess;
}

cudaError_t cudaStreamIsCapturing(cudaStream_t stream, enum cudaStreamCaptureStatus* pCaptureStatus) {
  const char* api = "cudaStreamIsCapturing";
  if (cudaError_t e = cudaemu::detail::check_stream(stream, api); e != cudaSuccess) {
    return e;
  }
  if (pCaptureStatus == nullptr) {
    return fail(cudaErrorInvalidValue, api, "null output pointer");
  }
  cudaemu::detail::Captures& c = cudaemu::detail::captures();
  std::lock_guard lock(c.mutex);
  auto it = cudaemu::detail::is_legacy(stream) ? c.active.end() : c.active.find(stream);
  *pCaptureStatus = it == c.active.end()     ? cudaStreamCaptureStatusNone
                    : it->second.invalidated ? cudaStreamCaptureStatusInvalidated
                                             : cudaStreamCaptureStatusActive;
  return cudaSuccess;
}

cudaError_t cudaGraphInstantiate(cudaGraphExec_t* pGraphExec, cudaGraph_t graph, unsigned long long flags) {
  const char* api = "cudaGraphInstantiate";
  if (pGraphExec == nullptr) {
    return fail(cudaErrorInvalidValue, api, "null output pointer");
  }
  if (flags != 0) {
    return fail(cudaErrorInvalidValue, api, format("flags 0x%llx are not emulated (only 0)", flags));
  }
  cudaemu::detail::Captures& c = cudaemu::detail::captures();
  std::unique_lock lock(c.mutex);
  if (graph == nullptr || c.graphs.count(graph) == 0) {
    lock.unlock();
    return fail(cudaErrorInvalidValue, api, format("graph %p is not a live graph", static_cast<void*>(graph)));
  }
  auto* exec = new CUgraphExec_st{std::make_shared<const std::vector<cudaemu::detail::StreamWork>>(graph->nodes)};
  c.execs.insert(exec);
  *pGraphExec = exec;
  return cudaSuccess;
}

cudaError_t cudaGraphLaunch(cudaGraphExec_t graphExec, cudaStream_t stream) {
  const char* api = "cudaGraphLaunch";
  if (cudaError_t e = cudaemu::detail::check_stream(stream, api); e != cudaSuccess) {
    return e;
  }
  {
    cudaemu::detail::Captures& c = cudaemu::detail::captures();
    std::unique_lock lock(c.mutex);
    if (graphExec == nullptr || c.execs.count(graphExec) == 0) {
      lock.unlock();
      return fail(cudaErrorInvalidResourceHandle, api,
                  format("graphExec %p is not a live executable graph", static_cast<void*>(graphExec)));
    }
  }
  if (cudaError_t e = cudaemu::detail::refuse_on_capturing_stream(stream, api, "(a child graph)"); e != cudaSuccess) {
    return e;
  }
  return cudaemu::detail::submit(stream, [nodes = graphExec->nodes] {
    for (const cudaemu::detail::StreamWork& node : *nodes) {
      if (const cudaError_t e = node(); e != cudaSuccess) {
        return e;
      }
    }
    return cudaSuccess;
  });
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t graphExec) {
  cudaemu::detail::Captures& c = cudaemu::detail::captures();
  std::unique_lock lock(c.mutex);
  if (graphExec == nullptr || c.execs.erase(graphExec) == 0) {
    lock.unlock();
    return fail(cudaErrorInvalidValue, "cudaGraphExecDestroy",
                format("graphExec %p is not a live executable graph", static_cast<void*>(graphExec)));
  }
  delete graphExec;
  return cudaSuccess;
}

cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
  cudaemu::detail::Captures& c = cudaemu::detail::captures();
  std::unique_lock lock(c.mutex);
  if (graph == nullptr || c.graphs.erase(graph) == 0) {
    lock.unlock();
    return fail(cudaErrorInvalidValue, "cudaGraphDestroy",
                format("graph %p is not a live graph", static_cast<void*>(graph)));
  }
  delete graph;
  return cudaSuccess;
}

}  // extern "C"
