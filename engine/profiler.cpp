#include "engine/profiler.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <unordered_map>

#include "engine/error.h"

namespace strata::profiler {

namespace {

struct Accumulator {
  int64_t calls = 0;
  int64_t self_ns = 0;
  int64_t total_ns = 0;
  double flops = 0;
  double bytes = 0;
};

thread_local bool t_enabled = false;
thread_local Scope* t_innermost = nullptr;
thread_local const char* t_memory_tag = nullptr;
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
// The same per outermost scope name (by address, as the keys).
thread_local std::unordered_map<const char*, std::unordered_map<Key, Accumulator, KeyHash>> t_nested;

void add_to(Accumulator& a, int64_t elapsed, int64_t child_ns, bool count_total, double flops, double bytes) {
  a.calls += 1;
  a.self_ns += elapsed - child_ns;
  if (count_total) a.total_ns += elapsed;
  a.flops += flops;
  a.bytes += bytes;
}

std::string display_name(const Key& key) {
  return key.phase == Phase::backward ? std::string(key.name) + " backward" : std::string(key.name);
}

void merge_into(Entry& e, const Accumulator& a) {
  e.calls += a.calls;
  e.self_seconds += static_cast<double>(a.self_ns) * 1e-9;
  e.total_seconds += static_cast<double>(a.total_ns) * 1e-9;
  e.flops += a.flops;
  e.bytes += a.bytes;
}

bool by_self_time(const Entry& a, const Entry& b) { return a.self_seconds > b.self_seconds; }

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

void enable(bool on) { t_enabled = on; }

bool enabled() { return t_enabled; }

void reset() {
  t_entries.clear();
  t_nested.clear();
}

void count(double flops, double bytes) {
  if (!t_enabled || t_innermost == nullptr) return;
  t_innermost->flops_ += flops;
  t_innermost->bytes_ += bytes;
}

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
  bool nested_in_same_name = false;
  const char* outermost = name_;
  for (Scope* s = parent_; s != nullptr; s = s->parent_) {
    nested_in_same_name = nested_in_same_name || (s->phase_ == phase_ && std::strcmp(s->name_, name_) == 0);
    outermost = s->name_;
  }
  const Key key{name_, phase_};
  add_to(t_entries[key], elapsed, child_ns_, !nested_in_same_name, flops_, bytes_);
  add_to(t_nested[outermost][key], elapsed, child_ns_, !nested_in_same_name, flops_, bytes_);
  if (parent_ != nullptr) parent_->child_ns_ += elapsed;
  t_innermost = parent_;
}

std::vector<Entry> report() {
  std::map<std::string, Entry> merged;
  for (const auto& [key, a] : t_entries) {
    std::string name = display_name(key);
    Entry& e = merged[name];
    e.name = name;
    merge_into(e, a);
  }
  std::vector<Entry> out;
  for (auto& [name, e] : merged) out.push_back(std::move(e));
  std::sort(out.begin(), out.end(), by_self_time);
  return out;
}

std::vector<NestedEntry> report_by_outermost() {
  std::map<std::pair<std::string, std::string>, Entry> merged;
  for (const auto& [outermost, entries] : t_nested) {
    for (const auto& [key, a] : entries) {
      std::string name = display_name(key);
      Entry& e = merged[{outermost, name}];
      e.name = name;
      merge_into(e, a);
    }
  }
  std::vector<NestedEntry> out;
  for (auto& [names, e] : merged) out.push_back(NestedEntry{names.first, std::move(e)});
  std::sort(out.begin(), out.end(),
            [](const NestedEntry& a, const NestedEntry& b) { return by_self_time(a.entry, b.entry); });
  return out;
}

MemoryTag::MemoryTag(const char* tag) : previous_(t_memory_tag) { t_memory_tag = tag; }

MemoryTag::~MemoryTag() { t_memory_tag = previous_; }

const char* allocation_context() {
  if (t_memory_tag != nullptr) return t_memory_tag;
  const Scope* outermost = t_innermost;
  while (outermost != nullptr && outermost->parent() != nullptr) outermost = outermost->parent();
  return outermost != nullptr ? outermost->name() : nullptr;
}

MemoryProfile::MemoryProfile(const Device& device) : allocator_(&allocator_for(device)) {
  check(allocator_->observer() == nullptr, "MemoryProfile: the allocator of ", device.str(),
        " is already watched by another observer");
  before_ = allocator_->stats().allocated_bytes;
  peak_ = peak_before_ = before_;
  allocator_->set_observer(this);
}

MemoryProfile::~MemoryProfile() { allocator_->set_observer(nullptr); }

void MemoryProfile::reset_peak() {
  allocator_->reset_peak();
  std::lock_guard<std::mutex> lock(mutex_);
  peak_ = before_ + tracked_;
  peak_before_ = before_;
  peak_live_.clear();
  for (const auto& [ptr, live] : live_) peak_live_.push_back(live);
  peak_moved_ = true;
}

int64_t MemoryProfile::peak_bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return peak_;
}

bool MemoryProfile::peak_moved() {
  std::lock_guard<std::mutex> lock(mutex_);
  const bool moved = peak_moved_;
  peak_moved_ = false;
  return moved;
}

void MemoryProfile::allocated(const void* ptr, int64_t bytes, int64_t) {
  const char* context = allocation_context();
  std::lock_guard<std::mutex> lock(mutex_);
  live_[ptr] = Live{ptr, bytes, next_serial_++, context};
  tracked_ += bytes;
  if (before_ + tracked_ <= peak_) return;
  // A new peak: remember what is live now. The copy is paid only while the peak still rises (the
  // first iterations of a step), never once it has settled.
  peak_ = before_ + tracked_;
  peak_before_ = before_;
  peak_live_.clear();
  for (const auto& [p, live] : live_) peak_live_.push_back(live);
  peak_moved_ = true;
}

void MemoryProfile::deallocated(const void* ptr, int64_t bytes, int64_t) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = live_.find(ptr);
  if (it == live_.end()) {
    before_ -= bytes;  // allocated before the profile
    return;
  }
  tracked_ -= it->second.bytes;
  live_.erase(it);
}

std::vector<MemoryProfile::Row> MemoryProfile::peak_breakdown(
    const std::vector<std::pair<std::string, std::vector<const void*>>>& owners,
    const std::function<std::string(const char* context)>& row_of_context, const std::string& before_row) const {
  std::lock_guard<std::mutex> lock(mutex_);
  // The serial of each owned allocation that is live now, with its owner's row.
  std::unordered_map<uint64_t, const std::string*> owned;
  for (const auto& [row, pointers] : owners) {
    for (const void* ptr : pointers) {
      auto it = live_.find(ptr);
      if (it != live_.end()) owned.emplace(it->second.serial, &row);
    }
  }
  std::vector<Row> rows;
  auto add = [&rows](const std::string& name, int64_t bytes) {
    auto it = std::find_if(rows.begin(), rows.end(), [&](const Row& r) { return r.name == name; });
    if (it == rows.end()) it = rows.insert(rows.end(), Row{name, 0, 0});
    it->bytes += bytes;
    it->allocations += 1;
  };
  // Allocations in the order they were made (the live map's order is a hash's).
  std::vector<Live> peak_live = peak_live_;
  std::sort(peak_live.begin(), peak_live.end(), [](const Live& a, const Live& b) { return a.serial < b.serial; });
  if (peak_before_ > 0) add(before_row, peak_before_);
  for (const Live& live : peak_live) {
    auto it = owned.find(live.serial);
    add(it != owned.end() ? *it->second : row_of_context(live.context), live.bytes);
  }
  return rows;
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
