// Training reports (SPEC-continual.md §5, §8.2): what a run shows and leaves behind.
//
//   ProgressBar       one terminal line redrawn in place (a tty) with the step, a bar, iterations
//                     done / total, the epoch, the ETA from this run's pace, and the trainer's stats
//                     (loss and its components, lr, images/s, peak memory); when the output is not a
//                     terminal it prints a plain line at each update instead, so logs stay readable
//   TrainingInterval  the loss values of one logging interval, summed on their device as the
//                     iterations run and read back once, in one copy, when the interval is logged;
//                     format_training_stats / training_record turn the means into the progress
//                     text and the JSONL "train" record
//   JsonlLog          <output>/logs/<task>-<dataset>_<name>.jsonl: one JSON object per line for every
//                     logged value (run configuration, training records every --log-interval
//                     iterations, evaluations, checkpoints); appended, so a resumed run continues it
//   ResultsCsv        <output>/results/<task>-<dataset>_<name>.csv: PLOP's results file, one row per
//                     step ("step,IoU_0,...,IoU_{n-1},mIoU", incremental/metrics.h); a step run again
//                     replaces its row; rewritten atomically after every step
//   StepResult        what one step produced, and format_steps_table, the run's summary of them
//   scores_record     the JSON fields of a step's scores (eval and result records)
//
// Errors: a log or results file that cannot be written throws strata::Error naming it; a results
// file whose rows do not parse is an error naming the line (metrics.h's parser); TrainingInterval
// throws when iterations of one interval name different loss terms or a read finds none.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "engine/json.h"
#include "engine/tensor.h"
#include "incremental/metrics.h"
#include "incremental/task.h"

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
// A fraction as a percentage with two decimals ("37.25"); "-" when not finite (no ground truth).
std::string format_percent(double fraction);

// The means of one logging interval.
struct IntervalMeans {
  double loss = 0;                                    // the total loss
  std::vector<std::pair<std::string, double>> terms;  // each weighted term, in the method's term order
  int64_t iterations = 0;
  int64_t images = 0;
  double seconds = 0;  // wall time from the interval's start to its read (which waits for its work)
  std::vector<double> probe;  // the values of the tensor given to read(), copied with the sums
  double images_per_second() const { return seconds > 0 ? static_cast<double>(images) / seconds : 0; }
};

// The loss values of one logging interval, accumulated on their device: add() queues two small ops
// (no host read); read() copies the sums back once and starts the next interval.
class TrainingInterval {
 public:
  TrainingInterval();  // the interval's clock starts here

  // One iteration: loss a scalar, terms (K) named `names`, both detached on the same device
  // (StepSession's IterationStats); images in its batch. Throws when `names` differ from the
  // interval's first iteration's.
  void add(const Tensor& loss, const std::vector<std::string>& names, const Tensor& terms, int64_t images);
  int64_t iterations() const { return iterations_; }
  // The interval's means, in one device-to-host copy; the next interval starts (clock included).
  // `probe` (optional, f64 on the values' device) rides along in the same copy: IntervalMeans::probe.
  // Throws when no iteration was added.
  IntervalMeans read(const Tensor& probe = Tensor());

 private:
  Tensor sums_;  // (1 + K) f64 on the values' device: the total, then each term
  std::vector<std::string> names_;
  int64_t iterations_ = 0, images_ = 0;
  std::chrono::steady_clock::time_point start_;
};

// "loss 0.1234 (unce 0.1000 unkd 0.0234) lr 0.001 12.3 img/s peak 1.2 GiB" (the terms only when
// there are several): the progress bar's stats.
std::string format_training_stats(const IntervalMeans& means, double lr, int64_t peak_bytes);
// The JSONL "train" record: event, step, epoch, iteration, loss, each term, lr, images_per_second,
// peak_memory_bytes, elapsed_seconds.
json::Object training_record(int step, int64_t epoch, int64_t iteration, const IntervalMeans& means, double lr,
                             int64_t peak_bytes, double elapsed_seconds);

// A finite value, or null (JSON has no NaN).
json::Value number_or_null(double value);
// The scores' fields of eval and result records: images, miou, pixel_accuracy, mean_class_accuracy,
// old/new/all with and without background, iou (per channel; null without ground truth).
json::Object scores_record(const SegmentationScores& scores, const StepMeans& means);
// `head`'s fields followed by `tail`'s.
json::Object joined(json::Object head, const json::Object& tail);

// "step 1 test (1449 images): mIoU 41.20% | old/new/all with background ... | without background
// ... | pixel accuracy ...%, mean class accuracy ...%" and a newline: a step's scores in one line.
std::string format_step_scores(int step, const std::string& what, const SegmentationScores& scores,
                               const StepMeans& means);
// "results <path>: 2 steps, final mIoU ...%, average over steps ...%" and a newline.
std::string format_results_average(const std::string& path, const ResultsAverage& average);

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

struct StepResult {
  int step = 0;
  bool trained = false;   // false for `test` (evaluation only) and for a resumed complete checkpoint
  bool stopped = false;   // stopped by stop_after: checkpoint written, no evaluation
  SegmentationScores scores;
  StepMeans means;
  std::string checkpoint;
  int64_t iterations = 0;         // run by this call
  int64_t training_images = 0;    // the step's training subset
  double train_seconds = 0, eval_seconds = 0;
  int64_t peak_memory_bytes = 0;  // on the run's device, during the step
};

// The summary of a run: one row per step with the classes it added and old/new/all mean IoU with
// background (PLOP's convention) and without (MiB's Table 1/2 columns); old = step-0 classes,
// new = classes of steps 1..t. A step evaluated without ground truth for a group shows "-".
std::string format_steps_table(const Task& task, const std::vector<StepResult>& results);

}  // namespace strata::incremental
