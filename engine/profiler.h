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
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace strata::profiler {

void enable(bool on = true);
bool enabled();
void reset();  // forgets the entries accumulated so far by this thread

struct Entry {
  std::string name;
  int64_t calls = 0;
  double self_seconds = 0;   // time inside the scope minus time inside scopes nested in it
  double total_seconds = 0;  // time inside the scope (an outer call of a recursive name counts once)
};

// This thread's entries, most self time first.
std::vector<Entry> report();

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

 private:
  const char* name_ = nullptr;  // null when profiling was off at construction
  Phase phase_ = Phase::forward;
  int64_t start_ns_ = 0;
  int64_t child_ns_ = 0;
  Scope* parent_ = nullptr;
};

}  // namespace strata::profiler
