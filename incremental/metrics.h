// Segmentation metrics of a continual step (SPEC-continual.md §5), as the references'
// StreamSegMetrics computes them, plus the reporting conventions of the papers.
//
// Confusion matrix M (n x n, n = channels seen at the step, background included): for every pixel
// whose ground truth g satisfies 0 <= g < n, M[g, p] += 1 with p the prediction; pixels with any
// other ground truth (255 = ignored) are skipped. Counts are exact (int64).
//
// Scores from M (numpy semantics of the references, including the 1e-6 epsilon):
//   IoU_c            = M_cc / (Σ_j M_cj + Σ_i M_ic − M_cc + 1e-6)
//   class accuracy_c = M_cc / (Σ_j M_cj + 1e-6)
//   mean IoU, mean class accuracy = means over the classes with >= 1 ground-truth pixel; a class
//                      without ground truth prints as "X" and is excluded
//   pixel accuracy   = Σ_c M_cc / Σ M;   frequency-weighted IoU = Σ_c (gt_c / Σ M) IoU_c
// Means over an empty set (no pixel counted) are NaN, as numpy's.
//
// Old / new / all (§5's table; results always print both conventions, labelled):
//   old = the classes of step 0 (channels [0, |step 0|)), new = the classes of steps 1..t, all = both;
//   "with background" (PLOP, average_csv.py: old includes channel 0; ADE includes raw 0) and
//   "without background" (MiB papers: channel 0 excluded). Each is a mean IoU over the range's
//   classes with ground truth; NaN when none has any (e.g. "new" at step 0).
//
// PLOP's results CSV (run.py, §5): one row per step, "step,IoU_0,...,IoU_{n−1},mIoU" over the
// dataset's n labels, 'x' for channels not seen yet and 'X' for seen channels without ground truth,
// numbers as Python's str(float) (shortest round-trip form). average_results_csv reproduces
// average_csv.py: final = the last row's mIoU; average = the mean of every row's mIoU; "first" and
// "last" = from the LAST row, the sum of the IoU columns before (resp. from) the first 'x' column of
// the first row, divided by the number of those columns ('x'/'X' cells add nothing but still count
// in the denominator); both are 0 with a single row, and "last" is 0 when the first row has no 'x'.
// Values are fractions (average_csv.py prints them x100).
//
// Errors: predictions/labels of different shapes or non-integer dtypes, a prediction outside [0, n)
// on a counted pixel (naming its value and position), matrices of different sizes merged, a
// malformed CSV (naming the line).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/tensor.h"
#include "incremental/task.h"

namespace strata::incremental {

class ConfusionMatrix {
 public:
  explicit ConfusionMatrix(int num_classes);

  int num_classes() const { return num_classes_; }
  // predictions and labels: the same shape (e.g. (N,H,W)), dtype u8, i32 or i64, on the CPU.
  void update(const Tensor& predictions, const Tensor& labels);
  void merge(const ConfusionMatrix& other);  // sums counts (e.g. across workers)
  // Adds counts in counts()'s layout (n x n, row-major): another process's matrix.
  void add_counts(const std::vector<int64_t>& counts);
  void reset();

  int64_t count(int ground_truth, int prediction) const;
  const std::vector<int64_t>& counts() const { return counts_; }  // row-major, row = ground truth

 private:
  int num_classes_;
  std::vector<int64_t> counts_;
};

struct SegmentationScores {
  std::vector<double> iou;                  // per class
  std::vector<double> class_accuracy;       // per class
  std::vector<int64_t> ground_truth_pixels;  // per class: Σ_j M_cj
  std::vector<int64_t> predicted_pixels;     // per class: Σ_i M_ic
  int64_t pixels = 0;                        // Σ M
  double pixel_accuracy = 0;
  double mean_class_accuracy = 0;
  double mean_iou = 0;
  double frequency_weighted_iou = 0;
  int64_t images = 0;  // images evaluated (evaluate_model's count; compute_scores leaves 0)

  int num_classes() const { return static_cast<int>(iou.size()); }
  bool has_ground_truth(int c) const { return ground_truth_pixels.at(static_cast<size_t>(c)) > 0; }
  // Mean IoU over the channels in [begin, end) that have ground truth; NaN when none has.
  double mean_iou_over(int begin, int end) const;
};

SegmentationScores compute_scores(const ConfusionMatrix& matrix);

// Old / new / all mean IoU at a step, in both conventions (see the file comment).
struct StepMeans {
  ChannelRange old_classes;  // step-0 classes
  ChannelRange new_classes;  // classes of steps 1..t
  double old_with_background = 0, new_with_background = 0, all_with_background = 0;  // PLOP
  double old_without_background = 0, new_without_background = 0, all_without_background = 0;  // MiB
};
StepMeans step_means(const SegmentationScores& scores, const Task& task, int step);

// A readable report: one row per channel (channel, raw label id, class name, the step learning it,
// IoU, accuracy, GT pixels; "X" without ground truth), then old/new/all in both conventions and the
// accuracies.
std::string format_scores(const SegmentationScores& scores, const Task& task, int step);

// One PLOP results row (no newline) over the label space of `task`.
std::string results_csv_row(int step, const SegmentationScores& scores, const Task& task);

struct ResultsAverage {
  int rows = 0;
  std::string last_step;    // the first column of the last row
  double final_miou = 0;    // the last row's mIoU
  double average_miou = 0;  // the mean of the rows' mIoU
  double first_miou = 0;    // average_csv.py's "Mean IoU first" (step-0 columns of the last row)
  double last_miou = 0;     // its "Mean IoU last" (the other columns)
};
// `csv`: the text of a results file (rows as results_csv_row, one per line).
ResultsAverage average_results_csv(const std::string& csv);

}  // namespace strata::incremental
