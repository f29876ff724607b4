// Fake stream events for policy tests on the CPU (the caching allocator, the pinned staging pool):
// an event completes when the test says the work queued on its stream is done (complete(stream)),
// or when someone synchronizes on it (counted). Misuse of an event (unknown, released twice)
// throws, so the policy's event bookkeeping is checked too.
#pragma once

#include <cstdint>
#include <map>
#include <memory>

#include "engine/caching_allocator.h"
#include "engine/error.h"

namespace strata::test {

struct FakeEvent {
  StreamId stream = 0;
  bool complete = false;
  bool released = false;
};

struct FakeStreams {
  uint64_t next_event = 1;
  std::map<uint64_t, FakeEvent> events;
  int64_t synchronizations = 0;
  // The work queued so far on `stream` finishes.
  void complete(StreamId stream) {
    for (auto& [id, event] : events)
      if (event.stream == stream) event.complete = true;
  }
  int64_t unreleased() const {
    int64_t n = 0;
    for (const auto& [id, event] : events) n += event.released ? 0 : 1;
    return n;
  }
};

class FakeStreamEvents final : public StreamEvents {
 public:
  explicit FakeStreamEvents(std::shared_ptr<FakeStreams> streams) : streams_(std::move(streams)) {}
  uint64_t record(StreamId stream) override {
    uint64_t id = streams_->next_event++;
    streams_->events[id] = FakeEvent{stream, false, false};
    return id;
  }
  bool query(uint64_t event) override { return find(event).complete; }
  void synchronize(uint64_t event) override {
    ++streams_->synchronizations;
    find(event).complete = true;
  }
  void release(uint64_t event) override {
    FakeEvent& e = find(event);
    if (e.released) throw Error("fake events: released twice");
    e.released = true;
  }

 private:
  FakeEvent& find(uint64_t event) {
    auto it = streams_->events.find(event);
    if (it == streams_->events.end() || it->second.released) throw Error("fake events: unknown or released event");
    return it->second;
  }
  std::shared_ptr<FakeStreams> streams_;
};

}  // namespace strata::test
