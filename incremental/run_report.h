// Reports of finished runs (`strata report`): what the trainer's JSONL logs hold, read back into one
// struct per run, and rendered as one self-contained HTML page.
//
// A run directory is a trainer's --output folder; every log in it, logs/<task>-<dataset>_<name>.jsonl
// (report.h's JsonlLog), is one run. From its records:
//   "run"         the setting (dataset, task, protocol, convention, method and its terms, model,
//                 device, seed; the --save-predictions folder)
//   "step_start"  each step's recipe (classes, channel names, epochs, lr, batch, crop, iterations)
//   "result"      each step's final scores: old/new/all mIoU in both conventions, per-channel IoU
//   "eval"        mid-step evaluations (--val-interval), kept apart from the results
//   "train"       the loss and each weighted term per logging interval
//   "checkpoint"  where each complete step checkpoint went
// A log is appended to when a step is resumed or run again, so the last record of a step (of a
// step and iteration for "train") wins. A run that starts at step t >= 1 from another run's step
// t-1 checkpoint (strata demo's FT and MiB runs share one step-0 run) shows that run's earlier
// results as its own first rows, marked with the run they come from.
//
// Prediction strips: the first `predictions_per_step` PNG files (by name) of each step<k>/ folder
// under the run's --save-predictions folder (as logged when it exists, else relative to the run
// directory), or else under <run directory>/predictions/<name>/ (strata demo's layout, which holds
// when a run directory is moved), read whole to be embedded.
//
// The page (render_report_html) holds everything inline: CSS, SVG charts, PNGs as data: URIs; no
// script, no network. Per run: the setting and per-step recipe, the old/new/all table in both
// conventions, mIoU over steps (one SVG), per-class IoU across steps as a heat map (one SVG), the
// loss terms over iterations (one SVG per step), the prediction strips. With several runs, first a
// table of every run's last step side by side (the papers' layout) and their mIoU curves on one
// chart per convention. Every string from the logs is HTML-escaped.
//
// Errors (strata::Error): a run directory that does not exist or holds no logs/*.jsonl (naming it);
// a line that is not a JSON object or a record whose fields have the wrong kind ("<file>:<line>:
// ..."); a prediction image that cannot be read (naming it).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/json.h"

namespace strata::incremental {

// Mean IoUs as fractions; NaN where the log has null (no ground truth for the group).
struct RunMeans {
  double old_with_background = 0, new_with_background = 0, all_with_background = 0;           // PLOP
  double old_without_background = 0, new_without_background = 0, all_without_background = 0;  // MiB
};

struct RunScores {
  int step = 0;
  int64_t epoch = -1;  // "eval" records: the epoch; -1 for a step's final result
  int64_t images = 0;
  double miou = 0;
  RunMeans means;
  std::vector<double> iou;  // per channel at the step; NaN: no ground truth
  std::string from;         // the run whose log holds these scores when not this one ("": this run)
};

struct RunStep {
  int step = 0;
  std::string classes;                     // "16,17,18,19,20"
  std::vector<std::string> channel_names;  // every channel at the step; empty in logs that predate them
  int64_t epochs = 0, batch_size = 0, crop_size = 0, max_iterations = 0, training_images = 0;
  double lr = 0;
  std::string method, model;
  std::string previous_checkpoint;
};

struct RunLosses {
  int step = 0;
  int64_t iteration = 0;
  double loss = 0;
  std::vector<std::pair<std::string, double>> terms;  // each weighted term, in the record's order
};

struct PredictionStrip {
  int step = 0;
  std::string path;  // the PNG file
  std::string png;   // its bytes
};

struct RunLog {
  std::string path;                                      // the JSONL log
  std::string run_dir;                                   // the run directory it was found in
  std::string name, task, dataset;                       // from the file name <task>-<dataset>_<name>.jsonl
  json::Object configuration;                            // the last "run" record (empty when the log has none)
  std::vector<RunStep> steps;                            // step order
  std::vector<RunScores> results;                        // one per step, step order
  std::vector<RunScores> evaluations;                    // mid-step, in (step, epoch) order
  std::vector<RunLosses> losses;                         // (step, iteration) order
  std::vector<std::pair<int, std::string>> checkpoints;  // complete step checkpoints (step, path)
  std::vector<PredictionStrip> predictions;              // step order, then file name
  int64_t prediction_files = 0;                          // how many the folders hold in all

  // The configuration's string `key`, "" when absent.
  std::string setting(std::string_view key) const;
  // The names of channel 0..n-1 at the run's last step ("channel k" where the log has none).
  std::vector<std::string> channel_names(size_t n) const;
};

// One run from its log (the prediction strips not yet read).
RunLog read_run_log(const std::string& jsonl_path, const std::string& run_dir);
// Every run of every directory, in directory then file name order, with their shared earlier steps
// and up to `predictions_per_step` prediction strips per step.
std::vector<RunLog> read_runs(const std::vector<std::string>& run_dirs, int predictions_per_step = 4);

// The whole page.
std::string render_report_html(const std::vector<RunLog>& runs);

// `text` with & < > " ' as character references.
std::string html_escape(std::string_view text);
// RFC 4648 base64 with padding.
std::string base64(std::string_view bytes);

}  // namespace strata::incremental
