// cudaemu: streams and events, in two modes (control.h, StreamMode).
//
// Eager mode runs every operation when it is submitted: streams are ordered no-ops, one legal
// schedule of the asynchronous API, and the one that hides every missing inter-stream dependency.
//
// Deferred mode gives each stream a FIFO queue of operations: work (kernel, copy, memset), event
// records and waits. What the CUDA Runtime API reference ("Stream synchronization behavior") orders
// is ordered; nothing else is:
//   - the operations of one stream run in submission order;
//   - a wait (cudaStreamWaitEvent) refers to the event's most recent record at the time of the call
//     and, when it reaches the front of its queue, first runs the recording stream up to that record;
//   - the legacy default stream (null, cudaStreamLegacy; cudaStreamPerThread is merged into it)
//     waits for the earlier work of every blocking stream, and every blocking stream waits for the
//     earlier work of the legacy stream: both are implemented as implicit waits queued before the
//     operation. Streams created with cudaStreamNonBlocking get no implicit waits.
// A wait always refers to an operation submitted before it, so running a queue terminates and
// two queues never wait for each other.
//
// Queued work runs when the host observes it (cudaStreamSynchronize, cudaEventSynchronize,
// cudaDeviceSynchronize, cudaStreamDestroy, cudaFree/cudaFreeHost, a blocking copy, a query that
// answers cudaErrorNotReady, a cuBLAS/cuDNN call on the stream) and at random: after each submission
// a seeded generator may run the front operations of one stream whose front is not blocked by a
// wait (README.md, "Streams and events", states the exact policy). So a kernel may run before or
// after the copy it forgot to wait for, depending on the seed.
//
// One mutex guards all queues and events and is held while queued operations run. Operations never
// call back into the stream machinery (kernels, memmove, memset), so holding it cannot deadlock;
// cuBLAS and cuDNN only take it to drain their stream, then compute without it.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "cudaemu/control.h"
#include "internal.h"

namespace cudaemu::detail {
struct StreamQueue;
struct EventState;
}  // namespace cudaemu::detail

struct CUstream_st {
    unsigned int flags;
    std::shared_ptr<cudaemu::detail::StreamQueue> queue;
};

// The state is shared with the event's queued record operations: an event may be destroyed before
// its record has run ("resources ... released automatically once the device has completed event").
struct CUevent_st {
    unsigned int flags;
    std::shared_ptr<cudaemu::detail::EventState> state;
};

namespace cudaemu::detail {

using Clock = std::chrono::steady_clock;

// The operation at `position` (1 for the first one submitted) of `queue`.
struct StreamPoint {
    std::shared_ptr<StreamQueue> queue;
    std::uint64_t position = 0;
};

struct Operation {
    enum class Kind { work, record, wait };
    Kind kind = Kind::work;
    StreamWork work;                     // Kind::work
    std::shared_ptr<EventState> event;   // Kind::record
    StreamPoint target;                  // Kind::wait: everything up to this point must have run
};

struct StreamQueue {
    bool blocking = true;  // synchronizes with the legacy default stream
    std::deque<Operation> pending;
    std::uint64_t submitted = 0;  // position of the last operation submitted
    std::uint64_t completed = 0;  // position of the last operation that ran; FIFO, so all before it too

    bool reached(std::uint64_t position) const { return completed >= position; }
    bool idle() const { return completed == submitted; }
};

struct EventState {
    StreamPoint record;  // the most recent cudaEventRecord; a null queue if never recorded
    Clock::time_point time;  // when that record ran

    bool recorded() const { return record.queue != nullptr; }
    bool complete() const { return !recorded() || record.queue->reached(record.position); }
};

namespace {

struct Scheduler {
    std::mutex mutex;
    StreamMode mode = StreamMode::eager;
    std::uint64_t seed = 0;
    std::uint64_t random_state = 0;
    std::shared_ptr<StreamQueue> legacy = std::make_shared<StreamQueue>();
    // The legacy stream, then the live created streams in creation order (an order that does not
    // depend on addresses keeps the random progress reproducible).
    std::vector<std::shared_ptr<StreamQueue>> queues{legacy};
    // The first error of deferred work not yet returned by a synchronizing call.
    cudaError_t deferred_error = cudaSuccess;
};

StreamMode mode_from_environment() {
    const char* text = std::getenv("CUDAEMU_STREAMS");
    if (text == nullptr || *text == '\0' || std::strcmp(text, "eager") == 0) {
        return StreamMode::eager;
    }
    if (std::strcmp(text, "deferred") == 0) {
        return StreamMode::deferred;
    }
    std::fprintf(stderr, "cudaemu: ignoring CUDAEMU_STREAMS='%s' (expected eager or deferred)\n", text);
    return StreamMode::eager;
}

Scheduler& scheduler() {
    static Scheduler* instance = [] {
        auto* s = new Scheduler;  // never destroyed: streams may be used until process exit
        s->mode = mode_from_environment();
        if (const char* seed = std::getenv("CUDAEMU_STREAM_SEED"); seed != nullptr && *seed != '\0') {
            s->seed = std::strtoull(seed, nullptr, 10);
        }
        s->random_state = s->seed;
        return s;
    }();
    return *instance;
}

// Live streams and events, separate from the scheduler so that validating a handle does not wait
// for queued work that is running.
struct Handles {
    std::mutex mutex;
    std::set<const CUstream_st*> streams;
    std::set<const CUevent_st*> events;
};

Handles& handles() {
    static Handles* instance = new Handles;
    return *instance;
}

// SplitMix64 (Steele, Lea, Flood: "Fast splittable pseudorandom number generators", 2014).
std::uint64_t next_random(Scheduler& s) {
    std::uint64_t z = (s.random_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

StreamQueue& queue_of(Scheduler& s, cudaStream_t stream) {
    if (stream == nullptr || stream == cudaStreamLegacy || stream == cudaStreamPerThread) {
        return *s.legacy;
    }
    return *stream->queue;
}

std::shared_ptr<StreamQueue> shared_queue_of(Scheduler& s, cudaStream_t stream) {
    if (stream == nullptr || stream == cudaStreamLegacy || stream == cudaStreamPerThread) {
        return s.legacy;
    }
    return stream->queue;
}

void run_until(Scheduler& s, StreamQueue& queue, std::uint64_t position);

// Runs the front operation of `queue`. The caller holds the scheduler mutex.
void run_front(Scheduler& s, StreamQueue& queue) {
    // Taken off the queue first: while a wait runs another stream, this queue's front is in flight.
    Operation op = std::move(queue.pending.front());
    queue.pending.pop_front();
    const std::uint64_t position = queue.completed + 1;
    switch (op.kind) {
        case Operation::Kind::work: {
            const cudaError_t error = op.work();
            if (error != cudaSuccess && s.deferred_error == cudaSuccess) {
                s.deferred_error = error;
            }
            break;
        }
        case Operation::Kind::record:
            // A record that was superseded by a later cudaEventRecord no longer describes the event.
            if (op.event->record.queue.get() == &queue && op.event->record.position == position) {
                op.event->time = Clock::now();
            }
            break;
        case Operation::Kind::wait:
            run_until(s, *op.target.queue, op.target.position);
            break;
    }
    queue.completed = position;
}

void run_until(Scheduler& s, StreamQueue& queue, std::uint64_t position) {
    while (!queue.reached(position)) {
        run_front(s, queue);
    }
}

void run_everything(Scheduler& s) {
    for (const std::shared_ptr<StreamQueue>& queue : s.queues) {
        run_until(s, *queue, queue->submitted);
    }
}

bool front_is_ready(const StreamQueue& queue) {
    const Operation& front = queue.pending.front();
    return front.kind != Operation::Kind::wait || front.target.queue->reached(front.target.position);
}

Operation wait_for(const std::shared_ptr<StreamQueue>& queue, std::uint64_t position) {
    Operation op;
    op.kind = Operation::Kind::wait;
    op.target = StreamPoint{queue, position};
    return op;
}

// Queues `op` on `queue` behind the implicit waits of the legacy default stream; returns its
// position. The caller holds the scheduler mutex and is in deferred mode.
std::uint64_t enqueue(Scheduler& s, StreamQueue& queue, Operation op) {
    if (&queue == s.legacy.get()) {
        for (const std::shared_ptr<StreamQueue>& other : s.queues) {
            if (other != s.legacy && other->blocking && !other->idle()) {
                queue.pending.push_back(wait_for(other, other->submitted));
                ++queue.submitted;
            }
        }
    } else if (queue.blocking && !s.legacy->idle()) {
        queue.pending.push_back(wait_for(s.legacy, s.legacy->submitted));
        ++queue.submitted;
    }
    queue.pending.push_back(std::move(op));
    return ++queue.submitted;
}

// The random progress made after every submission in deferred mode: with probability 1/2 nothing;
// otherwise one stream is chosen uniformly among those whose front operation can run without
// running another stream (not a wait on unfinished work), and between 1 and all of its queued
// operations (uniformly) run from the front, stopping early at a wait on unfinished work.
void make_random_progress(Scheduler& s) {
    if (next_random(s) % 2 == 0) {
        return;
    }
    std::vector<StreamQueue*> ready;
    for (const std::shared_ptr<StreamQueue>& queue : s.queues) {
        if (!queue->pending.empty() && front_is_ready(*queue)) {
            ready.push_back(queue.get());
        }
    }
    if (ready.empty()) {
        return;
    }
    StreamQueue& chosen = *ready[next_random(s) % ready.size()];
    std::uint64_t steps = 1 + next_random(s) % chosen.pending.size();
    while (steps-- > 0 && !chosen.pending.empty() && front_is_ready(chosen)) {
        run_front(s, chosen);
    }
}

// Returns the first error of deferred work not yet returned, and records it as the calling thread's
// last error, as a synchronizing call reports an earlier asynchronous failure in CUDA.
cudaError_t take_deferred_error(Scheduler& s) {
    const cudaError_t error = s.deferred_error;
    s.deferred_error = cudaSuccess;
    return set_last_error(error);
}

// What every synchronizing call ends with: the guard zones of all allocations are verified, and an
// earlier failure of deferred work is returned.
cudaError_t finish_synchronize(cudaError_t deferred_error, const char* api) {
    const int corrupted = check_all_guards(format("by %s", api).c_str());
    if (deferred_error != cudaSuccess) {
        return deferred_error;
    }
    return corrupted != 0 ? set_last_error(cudaErrorIllegalAddress) : cudaSuccess;
}

bool is_live_event(cudaEvent_t event) {
    Handles& h = handles();
    std::lock_guard lock(h.mutex);
    return h.events.count(event) != 0;
}

cudaError_t check_event(cudaEvent_t event, const char* api) {
    if (event == nullptr || !is_live_event(event)) {
        return fail(cudaErrorInvalidResourceHandle, api,
                    format("event %p was not created by cudaEventCreate or was destroyed", static_cast<void*>(event)));
    }
    return cudaSuccess;
}

}  // namespace

bool is_valid_stream(cudaStream_t stream) {
    if (stream == nullptr || stream == cudaStreamLegacy || stream == cudaStreamPerThread) {
        return true;
    }
    Handles& h = handles();
    std::lock_guard lock(h.mutex);
    return h.streams.count(stream) != 0;
}

cudaError_t check_stream(cudaStream_t stream, const char* api) {
    if (!is_valid_stream(stream)) {
        return fail(cudaErrorInvalidResourceHandle, api,
                    format("stream %p was not created by cudaStreamCreate or was destroyed", static_cast<void*>(stream)));
    }
    return cudaSuccess;
}

namespace {

// Eager mode: runs `work` now and returns its error. Deferred: queues it (then lets the schedule
// make progress) and, when `wait`, runs the stream up to it and returns the first deferred error.
cudaError_t submit_work(cudaStream_t stream, StreamWork work, bool wait) {
  if (cudaError_t captured = cudaSuccess; !wait && capture_work(stream, work, &captured)) {
    return captured;
  }
    Scheduler& s = scheduler();
    std::lock_guard lock(s.mutex);
    StreamQueue& queue = queue_of(s, stream);
    if (s.mode == StreamMode::eager) {
        const cudaError_t error = work();
        queue.completed = ++queue.submitted;
        return error;
    }
    Operation op;
    op.work = std::move(work);
    const std::uint64_t position = enqueue(s, queue, std::move(op));
    make_random_progress(s);
    if (!wait) {
        return cudaSuccess;
    }
    run_until(s, queue, position);
    return take_deferred_error(s);
}

}  // namespace

cudaError_t submit(cudaStream_t stream, StreamWork work) { return submit_work(stream, std::move(work), false); }

cudaError_t submit_and_wait(cudaStream_t stream, StreamWork work) {
    return submit_work(stream, std::move(work), true);
}

void complete_stream(cudaStream_t stream) {
    if (!is_valid_stream(stream)) {
        return;
    }
    Scheduler& s = scheduler();
    std::lock_guard lock(s.mutex);
    StreamQueue& queue = queue_of(s, stream);
    run_until(s, queue, queue.submitted);
}

void complete_all_streams() {
    Scheduler& s = scheduler();
    std::lock_guard lock(s.mutex);
    run_everything(s);
}

}  // namespace cudaemu::detail

// ---- control API --------------------------------------------------------------------------------
namespace cudaemu {

void set_stream_mode(StreamMode mode) {
    detail::Scheduler& s = detail::scheduler();
    std::lock_guard lock(s.mutex);
    if (mode == StreamMode::eager) {
        detail::run_everything(s);
    }
    s.mode = mode;
}

StreamMode stream_mode() {
    detail::Scheduler& s = detail::scheduler();
    std::lock_guard lock(s.mutex);
    return s.mode;
}

void set_stream_schedule_seed(std::uint64_t seed) {
    detail::Scheduler& s = detail::scheduler();
    std::lock_guard lock(s.mutex);
    s.seed = seed;
    s.random_state = seed;
}

std::uint64_t stream_schedule_seed() {
    detail::Scheduler& s = detail::scheduler();
    std::lock_guard lock(s.mutex);
    return s.seed;
}

}  // namespace cudaemu

// ---- runtime C API ------------------------------------------------------------------------------
using cudaemu::detail::fail;
using cudaemu::detail::format;

extern "C" {

cudaError_t cudaDeviceSynchronize(void) {
  if (cudaError_t e = cudaemu::detail::check_unsafe_call("cudaDeviceSynchronize"); e != cudaSuccess) {
    return e;
  }
    cudaemu::detail::count_host_synchronization();
    cudaemu::detail::Scheduler& s = cudaemu::detail::scheduler();
    std::unique_lock lock(s.mutex);
    cudaemu::detail::run_everything(s);
    const cudaError_t deferred_error = cudaemu::detail::take_deferred_error(s);
    lock.unlock();
    return cudaemu::detail::finish_synchronize(deferred_error, "cudaDeviceSynchronize");
}

cudaError_t cudaStreamCreate(cudaStream_t* pStream) { return cudaStreamCreateWithFlags(pStream, cudaStreamDefault); }

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* pStream, unsigned int flags) {
    if (pStream == nullptr) {
        return fail(cudaErrorInvalidValue, "cudaStreamCreateWithFlags", "null output pointer");
    }
    if ((flags & ~static_cast<unsigned int>(cudaStreamNonBlocking)) != 0) {
        return fail(cudaErrorInvalidValue, "cudaStreamCreateWithFlags", format("unknown flags 0x%x", flags));
    }
    auto queue = std::make_shared<cudaemu::detail::StreamQueue>();
    queue->blocking = (flags & cudaStreamNonBlocking) == 0;
    auto* stream = new CUstream_st{flags, queue};
    {
        cudaemu::detail::Scheduler& s = cudaemu::detail::scheduler();
        std::lock_guard lock(s.mutex);
        s.queues.push_back(queue);
    }
    cudaemu::detail::Handles& h = cudaemu::detail::handles();
    std::lock_guard lock(h.mutex);
    h.streams.insert(stream);
    *pStream = stream;
    return cudaSuccess;
}

// CUDA lets cudaStreamDestroy return while the stream still works and completes that work later;
// running it now is one legal schedule of that.
cudaError_t cudaStreamDestroy(cudaStream_t stream) {
    {
        cudaemu::detail::Handles& h = cudaemu::detail::handles();
        std::unique_lock lock(h.mutex);
        if (stream == nullptr || h.streams.erase(stream) == 0) {
            lock.unlock();
            return fail(cudaErrorInvalidResourceHandle, "cudaStreamDestroy",
                        format("stream %p is not a live created stream", static_cast<void*>(stream)));
        }
    }
    cudaemu::detail::forget_capture(stream);
    cudaemu::detail::Scheduler& s = cudaemu::detail::scheduler();
    std::lock_guard lock(s.mutex);
    cudaemu::detail::run_until(s, *stream->queue, stream->queue->submitted);
    std::erase(s.queues, stream->queue);
    delete stream;
    return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
    if (cudaError_t e = cudaemu::detail::check_stream(stream, "cudaStreamSynchronize"); e != cudaSuccess) {
        return e;
    }
    if (cudaError_t e = cudaemu::detail::refuse_on_capturing_stream(stream, "cudaStreamSynchronize", "waits");
        e != cudaSuccess) {
      return e;
    }
    if (cudaError_t e = cudaemu::detail::check_unsafe_call("cudaStreamSynchronize"); e != cudaSuccess) {
      return e;
    }
    cudaemu::detail::count_host_synchronization();
    cudaemu::detail::Scheduler& s = cudaemu::detail::scheduler();
    std::unique_lock lock(s.mutex);
    cudaemu::detail::StreamQueue& queue = cudaemu::detail::queue_of(s, stream);
    cudaemu::detail::run_until(s, queue, queue.submitted);
    const cudaError_t deferred_error = cudaemu::detail::take_deferred_error(s);
    lock.unlock();
    return cudaemu::detail::finish_synchronize(deferred_error, "cudaStreamSynchronize");
}

cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int flags) {
    if (cudaError_t e = cudaemu::detail::check_stream(stream, "cudaStreamWaitEvent"); e != cudaSuccess) {
        return e;
    }
    if (cudaError_t e = cudaemu::detail::check_event(event, "cudaStreamWaitEvent"); e != cudaSuccess) {
        return e;
    }
    if (flags != 0) {
        return fail(cudaErrorInvalidValue, "cudaStreamWaitEvent", format("unknown flags 0x%x", flags));
    }
    if (cudaError_t captured = cudaSuccess;
        cudaemu::detail::capture_event_wait(stream, event, "cudaStreamWaitEvent", &captured)) {
      return captured;
    }
    cudaemu::detail::Scheduler& s = cudaemu::detail::scheduler();
    std::lock_guard lock(s.mutex);
    // Eager mode has run the record already; a never-recorded or completed event orders nothing.
    if (s.mode == cudaemu::StreamMode::eager || event->state->complete()) {
        return cudaSuccess;
    }
    // The wait copies the record it refers to: recording the event again later does not move it.
    const cudaemu::detail::StreamPoint& record = event->state->record;
    cudaemu::detail::enqueue(s, cudaemu::detail::queue_of(s, stream),
                             cudaemu::detail::wait_for(record.queue, record.position));
    cudaemu::detail::make_random_progress(s);
    return cudaSuccess;
}

// cudaErrorNotReady is not an error: it is neither reported nor kept as the last error (the CUDA
// Programming Guide, "Error Checking"). Each NotReady answer runs the stream's front operation, so
// a host loop polling the stream terminates.
cudaError_t cudaStreamQuery(cudaStream_t stream) {
    if (cudaError_t e = cudaemu::detail::check_stream(stream, "cudaStreamQuery"); e != cudaSuccess) {
        return e;
    }
    if (cudaError_t e = cudaemu::detail::refuse_on_capturing_stream(stream, "cudaStreamQuery", "asks about the work");
        e != cudaSuccess) {
      return e;
    }
    cudaemu::detail::Scheduler& s = cudaemu::detail::scheduler();
    std::lock_guard lock(s.mutex);
    cudaemu::detail::StreamQueue& queue = cudaemu::detail::queue_of(s, stream);
    if (queue.idle()) {
        return cudaSuccess;
    }
    cudaemu::detail::run_front(s, queue);
    return cudaErrorNotReady;
}

cudaError_t cudaEventCreate(cudaEvent_t* event) { return cudaEventCreateWithFlags(event, cudaEventDefault); }

cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned int flags) {
    if (event == nullptr) {
        return fail(cudaErrorInvalidValue, "cudaEventCreateWithFlags", "null output pointer");
    }
    constexpr unsigned int known = cudaEventBlockingSync | cudaEventDisableTiming | cudaEventInterprocess;
    if ((flags & ~known) != 0) {
        return fail(cudaErrorInvalidValue, "cudaEventCreateWithFlags", format("unknown flags 0x%x", flags));
    }
    if ((flags & cudaEventInterprocess) != 0 && (flags & cudaEventDisableTiming) == 0) {
        return fail(cudaErrorInvalidValue, "cudaEventCreateWithFlags",
                    "cudaEventInterprocess requires cudaEventDisableTiming");
    }
    auto* created = new CUevent_st{flags, std::make_shared<cudaemu::detail::EventState>()};
    cudaemu::detail::Handles& h = cudaemu::detail::handles();
    std::lock_guard lock(h.mutex);
    h.events.insert(created);
    *event = created;
    return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
    if (cudaError_t e = cudaemu::detail::check_event(event, "cudaEventRecord"); e != cudaSuccess) {
        return e;
    }
    if (cudaError_t e = cudaemu::detail::check_stream(stream, "cudaEventRecord"); e != cudaSuccess) {
        return e;
    }
    if (cudaemu::detail::capture_event_record(event, stream)) {
      return cudaSuccess;
    }
    cudaemu::detail::Scheduler& s = cudaemu::detail::scheduler();
    std::lock_guard lock(s.mutex);
    const std::shared_ptr<cudaemu::detail::StreamQueue> queue = cudaemu::detail::shared_queue_of(s, stream);
    cudaemu::detail::EventState& state = *event->state;
    if (s.mode == cudaemu::StreamMode::eager) {
        queue->completed = ++queue->submitted;
        state.record = {queue, queue->submitted};
        state.time = cudaemu::detail::Clock::now();
        return cudaSuccess;
    }
    cudaemu::detail::Operation op;
    op.kind = cudaemu::detail::Operation::Kind::record;
    op.event = event->state;
    const std::uint64_t position = cudaemu::detail::enqueue(s, *queue, std::move(op));
    state.record = {queue, position};
    cudaemu::detail::make_random_progress(s);
    return cudaSuccess;
}

// See cudaStreamQuery for cudaErrorNotReady; each NotReady answer runs the front operation of the
// stream the event was recorded on.
cudaError_t cudaEventQuery(cudaEvent_t event) {
    if (cudaError_t e = cudaemu::detail::check_event(event, "cudaEventQuery"); e != cudaSuccess) {
        return e;
    }
    if (cudaError_t e = cudaemu::detail::check_event_not_captured(event, "cudaEventQuery"); e != cudaSuccess) {
      return e;
    }
    cudaemu::detail::Scheduler& s = cudaemu::detail::scheduler();
    std::lock_guard lock(s.mutex);
    const cudaemu::detail::EventState& state = *event->state;
    if (state.complete()) {
        return cudaSuccess;
    }
    cudaemu::detail::run_front(s, *state.record.queue);
    return cudaErrorNotReady;
}

cudaError_t cudaEventSynchronize(cudaEvent_t event) {
    if (cudaError_t e = cudaemu::detail::check_event(event, "cudaEventSynchronize"); e != cudaSuccess) {
        return e;
    }
    if (cudaError_t e = cudaemu::detail::check_event_not_captured(event, "cudaEventSynchronize"); e != cudaSuccess) {
      return e;
    }
    if (cudaError_t e = cudaemu::detail::check_unsafe_call("cudaEventSynchronize"); e != cudaSuccess) {
      return e;
    }
    cudaemu::detail::count_host_synchronization();
    cudaemu::detail::Scheduler& s = cudaemu::detail::scheduler();
    std::unique_lock lock(s.mutex);
    const cudaemu::detail::EventState& state = *event->state;
    if (state.recorded()) {
        cudaemu::detail::run_until(s, *state.record.queue, state.record.position);
    }
    const cudaError_t deferred_error = cudaemu::detail::take_deferred_error(s);
    lock.unlock();
    return cudaemu::detail::finish_synchronize(deferred_error, "cudaEventSynchronize");
}

cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
    if (ms == nullptr) {
        return fail(cudaErrorInvalidValue, "cudaEventElapsedTime", "null output pointer");
    }
    if (cudaError_t e = cudaemu::detail::check_event(start, "cudaEventElapsedTime"); e != cudaSuccess) {
        return e;
    }
    if (cudaError_t e = cudaemu::detail::check_event(end, "cudaEventElapsedTime"); e != cudaSuccess) {
        return e;
    }
    if (((start->flags | end->flags) & cudaEventDisableTiming) != 0) {
        return fail(cudaErrorInvalidResourceHandle, "cudaEventElapsedTime",
                    "an event was created with cudaEventDisableTiming");
    }
    cudaemu::detail::Scheduler& s = cudaemu::detail::scheduler();
    std::unique_lock lock(s.mutex);
    const cudaemu::detail::EventState& first = *start->state;
    const cudaemu::detail::EventState& second = *end->state;
    if (!first.recorded() || !second.recorded()) {
        lock.unlock();
        return fail(cudaErrorInvalidResourceHandle, "cudaEventElapsedTime", "an event has not been recorded");
    }
    // As for the queries, a record that has not run yet is a state, not a misuse.
    if (!first.complete() || !second.complete()) {
        return cudaErrorNotReady;
    }
    *ms = std::chrono::duration<float, std::milli>(second.time - first.time).count();
    return cudaSuccess;
}

cudaError_t cudaEventDestroy(cudaEvent_t event) {
    cudaemu::detail::Handles& h = cudaemu::detail::handles();
    std::unique_lock lock(h.mutex);
    if (event == nullptr || h.events.erase(event) == 0) {
        lock.unlock();
        return fail(cudaErrorInvalidResourceHandle, "cudaEventDestroy",
                    format("event %p is not a live event", static_cast<void*>(event)));
    }
    lock.unlock();
    // A record still queued keeps the event's state alive until it has run.
    delete event;
    return cudaSuccess;
}

}  // extern "C"
