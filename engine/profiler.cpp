#include "engine/profiler.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <unordered_map>

namespace strata::profiler {

namespace {

struct Accumulator {
  int64_t calls = 0;
  int64_t self_ns = 0;
  int64_t total_ns = 0;
};

thread_local bool t_enabled = false;
thread_local Scope* t_innermost = nullptr;
// Keyed by the name's address (string literals) and phase: the hot path does no string work;
// report() merges equal names that live at different addresses.
struct Key {
  const char* name;
  Phase phase;
  bool operator==(const Key& other) const { return name == other.name && phase == other.phase; }
};
struct KeyHash {
  size_t operator()(const Key& k) const {
    return std::hash<const void*>()(k.name) ^ static_cast<size_t>(k.phase == Phase::backward);
  }
};
thread_local std::unordered_map<Key, Accumulator, KeyHash> t_entries;

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

void enable(bool on) { t_enabled = on; }

bool enabled() { return t_enabled; }

void reset() { t_entries.clear(); }

Scope::Scope(const char* name, Phase phase) {
  if (!t_enabled) return;
  name_ = name;
  phase_ = phase;
  parent_ = t_innermost;
  t_innermost = this;
  start_ns_ = now_ns();
}

Scope::~Scope() {
  if (name_ == nullptr) return;
  int64_t elapsed = now_ns() - start_ns_;
  Accumulator& a = t_entries[Key{name_, phase_}];
  a.calls += 1;
  a.self_ns += elapsed - child_ns_;
  bool nested_in_same_name = false;
  for (Scope* s = parent_; s != nullptr && !nested_in_same_name; s = s->parent_) {
    nested_in_same_name = s->phase_ == phase_ && std::strcmp(s->name_, name_) == 0;
  }
  if (!nested_in_same_name) a.total_ns += elapsed;
  if (parent_ != nullptr) parent_->child_ns_ += elapsed;
  t_innermost = parent_;
}

std::vector<Entry> report() {
  std::map<std::string, Entry> merged;
  for (const auto& [key, a] : t_entries) {
    std::string name = key.phase == Phase::backward ? std::string(key.name) + " backward" : std::string(key.name);
    Entry& e = merged[name];
    e.name = name;
    e.calls += a.calls;
    e.self_seconds += static_cast<double>(a.self_ns) * 1e-9;
    e.total_seconds += static_cast<double>(a.total_ns) * 1e-9;
  }
  std::vector<Entry> out;
  for (auto& [name, e] : merged) out.push_back(std::move(e));
  std::sort(out.begin(), out.end(), [](const Entry& a, const Entry& b) { return a.self_seconds > b.self_seconds; });
  return out;
}

std::string format_report(const std::vector<Entry>& entries, int rows, int runs) {
  double sum = 0;
  for (const Entry& e : entries) sum += e.self_seconds;
  const double per_run = runs > 0 ? 1.0 / runs : 1.0;
  std::string out;
  char line[160];
  std::snprintf(line, sizeof line, "%-28s %10s %12s %7s\n", "op", "calls/run", "self ms/run", "%");
  out += line;
  int shown = 0;
  for (const Entry& e : entries) {
    if (shown++ >= rows) break;
    std::snprintf(line, sizeof line, "%-28s %10.1f %12.3f %6.1f%%\n", e.name.c_str(),
                  static_cast<double>(e.calls) * per_run, e.self_seconds * 1e3 * per_run,
                  sum > 0 ? 100.0 * e.self_seconds / sum : 0.0);
    out += line;
  }
  std::snprintf(line, sizeof line, "%-28s %10s %12.3f %6.1f%%\n", "(all ops)", "", sum * 1e3 * per_run, 100.0);
  out += line;
  return out;
}

}  // namespace strata::profiler
