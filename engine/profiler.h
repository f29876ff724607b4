// A small per-op wall-clock profiler: where a training step's time goes, op by op.
//
// Every op's public function and its backward open a Scope named "<op>" / "<op> backward". When
// the calling thread has enabled profiling, a Scope measures its wall time and charges it to its
// name, minus the time of the scopes opened inside it, so a composite op (sub = scale + add) or a
// backward that calls other ops is not counted twice: each name gets its SELF time and its call
// count. Disabled (the default), a Scope costs one thread-local flag test.
//
// Profiling is per thread: enable(), the accumulated entries and report() belong to the calling
// thread. Ops run their kernels' OpenMP threads inside the calling thread's scope, so their time
// is charged there.
//
// Work: an op reports what it computed with count(flops, bytes), charged to the innermost open scope
// (the op's own). The convention, for every op alike: flops counts arithmetic operations of the op's
// math (a multiply-add is 2; an exp or a division is 1), bytes the traffic the op's kernels cannot
// avoid: each input read and each output written once per pass the kernel makes over it (batch
// norm's statistics pass reads x once more), with no cache reuse across passes and no workspace
// (im2col, cuDNN's) traffic. So bytes / time is a lower bound of the bandwidth an op used, and
// max(flops / peak, bytes / bandwidth) is the op's roofline time on a device. Ops that do not call
// count() report zeros: argmax, dropout, pad and map_labels' label statistics.
//
// Memory: MemoryProfile watches one device's allocator and says, at the moment of its peak, which
// live allocations made it up: each allocation is remembered with its allocation context (the
// innermost MemoryTag, else the name of the outermost scope open when it was made), and at the end
// the caller names the owners of long-lived tensors (weights, gradients, optimizer state) to split
// the rest by context. Its rows sum exactly to the allocator's peak.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "engine/allocator.h"
#include "engine/device.h"

namespace strata::profiler {

void enable(bool on = true);
bool enabled();
void reset();  // forgets the entries accumulated so far by this thread

struct Entry {
  std::string name;
  int64_t calls = 0;
  double self_seconds = 0;   // time inside the scope minus time inside scopes nested in it
  double total_seconds = 0;  // time inside the scope (an outer call of a recursive name counts once)
  double flops = 0;          // count() calls made directly inside the scope (not in nested scopes)
  double bytes = 0;
};

// This thread's entries, most self time first.
std::vector<Entry> report();

// This thread's entries split by the outermost scope open when each ran (a training step's phase,
// incremental/step_session.h): `outermost` is that scope's name (its own for an outermost scope), so
// the entries of one outermost name add up to its total time. Most self time first.
struct NestedEntry {
  std::string outermost;
  Entry entry;
};
std::vector<NestedEntry> report_by_outermost();

// Charges `flops` and `bytes` (the convention above) to the innermost open scope; nothing when
// profiling is off on this thread or no scope is open.
void count(double flops, double bytes);

// A table of the first `rows` entries: name, calls, self ms (per run when runs > 1), % of the
// entries' summed self time.
std::string format_report(const std::vector<Entry>& entries, int rows = 20, int runs = 1);

enum class Phase { forward, backward };

class Scope {
 public:
  // `name` must outlive the profiler's use of it (a string literal); a backward scope is reported
  // as "<name> backward".
  explicit Scope(const char* name, Phase phase = Phase::forward);
  ~Scope();
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;

  const char* name() const { return name_; }
  const Scope* parent() const { return parent_; }

 private:
  const char* name_ = nullptr;  // null when profiling was off at construction
  Phase phase_ = Phase::forward;
  int64_t start_ns_ = 0;
  int64_t child_ns_ = 0;
  Scope* parent_ = nullptr;
  double flops_ = 0;
  double bytes_ = 0;
  friend void count(double flops, double bytes);
};

// Names the allocations made on this thread while it lives (innermost tag wins), whatever scope is
// open: the kernels' scratch memory is tagged "workspace" (engine/ops/device_dispatch.h). `tag` must
// outlive its use (a string literal).
class MemoryTag {
 public:
  explicit MemoryTag(const char* tag);
  ~MemoryTag();
  MemoryTag(const MemoryTag&) = delete;
  MemoryTag& operator=(const MemoryTag&) = delete;

 private:
  const char* previous_;
};

// The context of an allocation made now on this thread: the innermost MemoryTag, else the name of
// the outermost open scope (only while profiling is on), else nullptr.
const char* allocation_context();

// Which live allocations make up the peak of one device's allocator (see the file comment).
//
// The constructor installs the profile as the allocator's observer (one at a time: a second one
// throws) and the destructor removes it. Allocations that were live before it was installed are
// one amount, "allocated before the profile". Exact when one thread allocates on the device while
// it watches (a training step without a loader; the allocator's own counters do not say which
// thread moved them).
class MemoryProfile final : public AllocationObserver {
 public:
  explicit MemoryProfile(const Device& device);
  ~MemoryProfile() override;
  MemoryProfile(const MemoryProfile&) = delete;
  MemoryProfile& operator=(const MemoryProfile&) = delete;

  // Starts a new peak now, for this profile and the allocator alike (Allocator::reset_peak).
  void reset_peak();
  // The peak since reset_peak() (or construction), allocations from before the profile included:
  // the allocator's peak_allocated_bytes.
  int64_t peak_bytes() const;
  // True when the peak rose (or was reset) since the last call: the moment to call peak_breakdown(),
  // while the owners of the peak's long-lived tensors still hold them.
  bool peak_moved();

  struct Row {
    std::string name;
    int64_t bytes = 0;
    int64_t allocations = 0;
  };
  // The allocations live at the peak, in rows. An allocation that is still live now (the same one,
  // not a later one at the same address) and is the storage of a tensor in owners[i].second (its
  // data pointer) goes to row owners[i].first (the first owner that names it); any other to row
  // row_of_context(its allocation context); those from before the profile to `before_row`. The rows
  // appear in the order they were first used and their bytes add up to peak_bytes().
  std::vector<Row> peak_breakdown(const std::vector<std::pair<std::string, std::vector<const void*>>>& owners,
                                  const std::function<std::string(const char* context)>& row_of_context,
                                  const std::string& before_row) const;

  void allocated(const void* ptr, int64_t bytes, int64_t requested) override;
  void deallocated(const void* ptr, int64_t bytes, int64_t requested) override;

 private:
  struct Live {
    const void* ptr = nullptr;
    int64_t bytes = 0;
    uint64_t serial = 0;
    const char* context = nullptr;
  };

  Allocator* allocator_;
  mutable std::mutex mutex_;
  std::unordered_map<const void*, Live> live_;
  uint64_t next_serial_ = 1;
  int64_t before_ = 0;   // bytes still live of the allocations made before the profile
  int64_t tracked_ = 0;  // bytes live of the allocations it saw
  int64_t peak_ = 0;     // of before_ + tracked_
  int64_t peak_before_ = 0;
  std::vector<Live> peak_live_;
  bool peak_moved_ = true;
};

}  // namespace strata::profiler
