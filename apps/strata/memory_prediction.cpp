#include "apps/strata/memory_prediction.h"

#include <algorithm>
#include <cmath>
#include <mutex>
#include <unordered_map>

#include "engine/error.h"
#include "engine/profiler.h"
#include "incremental/report.h"

namespace strata::app {

namespace {

// The rows of a prediction: what the iteration found allocated (row 0), the gradients live at its
// end (row 1), then the rows of the phases that allocated the rest (profile_memory_rows() from
// "input batch" on).
const std::vector<std::string>& prediction_rows() {
  static const std::vector<std::string> rows = [] {
    std::vector<std::string> out = {"weights, teacher weights, optimizer state", "gradients"};
    const std::vector<std::string>& profile = profile_memory_rows();
    out.insert(out.end(), profile.begin() + 4, profile.end());
    return out;
  }();
  return rows;
}

// One iteration's allocations and frees, in order, each with its row.
class AllocationTrace final : public AllocationObserver {
 public:
  struct Event {
    int64_t bytes;  // > 0 allocated, < 0 freed
    size_t row;
  };

  // The sizes asked for: a caching allocator's blocks also hold a remainder it did not split off,
  // which depends on what its cache held, not on the step.
  void allocated(const void* ptr, int64_t, int64_t requested) override {
    std::lock_guard<std::mutex> lock(mutex_);
    live_[ptr] = events_.size();
    events_.push_back({requested, row_of(profiler::allocation_context())});
  }
  void deallocated(const void* ptr, int64_t, int64_t requested) override {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto it = live_.find(ptr);
    // Memory allocated before the iteration leaves row 0.
    events_.push_back({-requested, it == live_.end() ? 0 : events_[it->second].row});
    if (it != live_.end()) live_.erase(it);
  }
  // The allocations of the iteration that are still live at `ptrs` move to `row` (the frees of
  // those allocations, had there been any, are not: they are still live).
  void claim(const std::vector<const void*>& ptrs, size_t row) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const void* p : ptrs) {
      if (const auto it = live_.find(p); it != live_.end()) events_[it->second].row = row;
    }
  }
  const std::vector<Event>& events() const { return events_; }

 private:
  // profile_memory_row_of() names one of the phase rows, "other" for a context it does not know.
  static size_t row_of(const char* context) {
    const std::vector<std::string>& rows = prediction_rows();
    return static_cast<size_t>(std::find(rows.begin(), rows.end(), profile_memory_row_of(context)) - rows.begin());
  }

  std::mutex mutex_;
  std::vector<Event> events_;
  std::unordered_map<const void*, size_t> live_;
};

struct Probe {
  int64_t before = 0;
  std::vector<AllocationTrace::Event> events;
};

Probe probe(const ProfileSettings& settings, int64_t batch, int64_t crop) {
  ProfileSettings s = settings;
  s.batch = batch;
  s.crop = crop;
  s.iterations = 1;
  s.compare.clear();
  AllocationTrace trace;
  Probe out;
  observe_iteration(s, trace, [&](incremental::StepSession& session, int64_t allocated_before) {
    std::vector<const void*> gradients;
    for (const auto& [name, p] : session.model().named_parameters()) {
      if (p.grad().defined()) gradients.push_back(p.grad().raw_data());
    }
    trace.claim(gradients, 1);
    out.before = allocated_before;
  });
  out.events = trace.events();
  return out;
}

}  // namespace

MemoryPrediction predict_peak_memory(const ProfileSettings& settings) {
  check(settings.batch >= 1 && settings.crop >= 16, "memory prediction: --batch must be >= 1 and the crop >= 16, got ",
        settings.batch, " and ", settings.crop);
  check(settings.device.rfind("cuda", 0) == 0, "memory prediction: --device ", settings.device,
        ": it predicts a CUDA device's memory only; the CPU's convolutions take their im2col workspace in ",
        "chunks of a fixed budget, which is not affine in the batch, so extending a CPU trace would not hold ",
        "(run `strata profile --device cpu` at the size instead)");
  MemoryPrediction out;
  const std::vector<std::string>& names = prediction_rows();
  Probe probes[2];
  double pixels[2];
  for (int p = 0; p < 2; ++p) {
    probes[p] = probe(settings, out.probe_batch, out.probe_crop[p]);
    pixels[p] = static_cast<double>(out.probe_batch * out.probe_crop[p] * out.probe_crop[p]);
  }
  const std::vector<AllocationTrace::Event>&a = probes[0].events, &b = probes[1].events;
  check(a.size() == b.size(), "memory prediction: the step allocates ", a.size(), " times at ", out.probe_crop[0], "x",
        out.probe_crop[0], " but ", b.size(), " times at ", out.probe_crop[1], "x", out.probe_crop[1],
        ": its allocations depend on the size in a way the prediction cannot extend");
  for (size_t i = 0; i < a.size(); ++i) {
    check(a[i].row == b[i].row && (a[i].bytes > 0) == (b[i].bytes > 0), "memory prediction: allocation ", i,
          " of the step differs between the probes (", names[a[i].row], " ", a[i].bytes, " bytes, then ",
          names[b[i].row], " ", b[i].bytes, " bytes)");
  }
  out.allocations = static_cast<int64_t>(a.size());
  const double target = static_cast<double>(settings.batch) * static_cast<double>(settings.crop * settings.crop);
  auto extend = [&](int64_t at0, int64_t at1) {
    const double slope = static_cast<double>(at1 - at0) / (pixels[1] - pixels[0]);
    return static_cast<int64_t>(std::llround(static_cast<double>(at0) + slope * (target - pixels[0])));
  };
  // Replays the traces: each probe's own, and the extended one, keeping the rows at each one's peak.
  struct Replay {
    std::vector<int64_t> live, at_peak;
    int64_t total = 0, peak = -1;
    void step(size_t row, int64_t bytes) {
      live[row] += bytes;
      total += bytes;
      if (total > peak) {
        peak = total;
        at_peak = live;
      }
    }
  };
  Replay replays[3];
  for (Replay& r : replays) r.live.assign(names.size(), 0);
  for (int p = 0; p < 2; ++p) replays[p].step(0, probes[p].before);
  replays[2].step(0, std::max<int64_t>(0, extend(probes[0].before, probes[1].before)));
  for (size_t i = 0; i < a.size(); ++i) {
    replays[0].step(a[i].row, a[i].bytes);
    replays[1].step(b[i].row, b[i].bytes);
    // A size extended below zero (a shrinking workspace) is no allocation.
    const int64_t size = std::max<int64_t>(0, extend(std::abs(a[i].bytes), std::abs(b[i].bytes)));
    replays[2].step(a[i].row, a[i].bytes > 0 ? size : -size);
  }
  for (size_t r = 0; r < names.size(); ++r) {
    MemoryPrediction::Row row;
    row.name = names[r];
    row.probe[0] = replays[0].at_peak[r];
    row.probe[1] = replays[1].at_peak[r];
    row.predicted = replays[2].at_peak[r];
    out.rows.push_back(row);
  }
  out.probe_peak[0] = replays[0].peak;
  out.probe_peak[1] = replays[1].peak;
  out.predicted_peak = replays[2].peak;
  return out;
}

std::string format_memory_prediction(const ProfileSettings& settings, const MemoryPrediction& prediction) {
  std::string out =
      cat("\nPeak memory of a training step (", settings.method, ", VOC ", settings.task, " step ", settings.step,
          ") on ", settings.device, ", batch ", settings.batch, " at ", settings.crop, "x", settings.crop, ": the ",
          prediction.allocations, " allocations and frees of an iteration, measured at batch ", prediction.probe_batch,
          " x ", prediction.probe_crop[0], "x", prediction.probe_crop[0], " and x ", prediction.probe_crop[1], "x",
          prediction.probe_crop[1], ", each size extended to the target (affine in batch x pixels)\n");
  char line[200];
  auto add = [&](const std::string& name, int64_t a, int64_t b, int64_t c) {
    std::snprintf(line, sizeof line, "  %-44s %12s %12s %14s\n", name.c_str(), incremental::format_bytes(a).c_str(),
                  incremental::format_bytes(b).c_str(), incremental::format_bytes(c).c_str());
    out += line;
  };
  std::snprintf(line, sizeof line, "  %-44s %12s %12s %14s\n", "live at the peak",
                cat("probe ", prediction.probe_crop[0]).c_str(), cat("probe ", prediction.probe_crop[1]).c_str(),
                "predicted");
  out += line;
  for (const MemoryPrediction::Row& row : prediction.rows) add(row.name, row.probe[0], row.probe[1], row.predicted);
  add("peak (tensors live at once)", prediction.probe_peak[0], prediction.probe_peak[1], prediction.predicted_peak);
  out += "  A caching allocator holds more than its peak of live tensors (segments, fragmentation): leave a margin.\n";
  return out;
}

}  // namespace strata::app
