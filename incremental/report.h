// Training reports (SPEC-continual.md §5, §8.2): what a run shows and leaves behind.
//
//   ProgressBar  one terminal line redrawn in place (a tty) with the step, a bar, iterations done /
//                total, the epoch, the ETA from this run's pace, and the trainer's stats (loss and
//                its components, lr, images/s, peak memory); when the output is not a terminal it
//                prints a plain line at each update instead, so logs stay readable
//   JsonlLog     <output>/logs/<task>-<dataset>_<name>.jsonl: one JSON object per line for every
//                logged value (run configuration, training records every --log-interval
//                iterations, evaluations, checkpoints); appended, so a resumed run continues it
//   ResultsCsv   <output>/results/<task>-<dataset>_<name>.csv: PLOP's results file, one row per
//                step ("step,IoU_0,...,IoU_{n-1},mIoU", incremental/metrics.h); a step run again
//                replaces its row; rewritten atomically after every step
//
// Errors: a log or results file that cannot be written throws strata::Error naming it; a results
// file whose rows do not parse is an error naming the line (metrics.h's parser).
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <string>

#include "engine/json.h"
#include "incremental/metrics.h"

namespace strata::incremental {

class ProgressBar {
 public:
  // interactive: redraw one line with '\r' (decided by the caller, e.g. isatty); `min_interval`
  // seconds between redraws of an interactive bar.
  ProgressBar(std::FILE* out, bool interactive, double min_interval = 0.2);

  // A new bar of `total` iterations of which `done` already ran before this run (a resume).
  void start(const std::string& title, int64_t total, int64_t done);
  // Shows the bar at `done` with `stats`; an interactive bar redraws at most every min_interval.
  void update(int64_t done, const std::string& epoch, const std::string& stats, bool force = false);
  // Ends the bar's line.
  void finish();

  double eta_seconds(int64_t done) const;  // remaining iterations at this run's pace (0 before any)

 private:
  std::FILE* out_;
  bool interactive_;
  double min_interval_;
  std::string title_;
  int64_t total_ = 0, first_ = 0;
  std::chrono::steady_clock::time_point start_, last_draw_;
  bool drawn_ = false;
  size_t last_width_ = 0;
};

// "1:02:03", "4:05", "7s".
std::string format_duration(double seconds);
// "1.2 GiB", "340.5 MiB", "12.0 KiB".
std::string format_bytes(int64_t bytes);

class JsonlLog {
 public:
  JsonlLog() = default;  // disabled: write() does nothing
  explicit JsonlLog(std::string path);
  void write(const json::Object& record) const;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

class ResultsCsv {
 public:
  // Reads the existing rows of `path` (if any).
  explicit ResultsCsv(std::string path);
  void set_row(int step, const std::string& row);  // `row` as results_csv_row (starting with the step)
  std::string text() const;                        // rows in step order, one per line
  ResultsAverage average() const;                  // average_csv.py over text()
  const std::string& path() const { return path_; }
  size_t rows() const { return rows_.size(); }

 private:
  std::string path_;
  std::map<int, std::string> rows_;
};

}  // namespace strata::incremental
