#include "incremental/metrics.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>
#include <sstream>

#include "engine/error.h"

namespace strata::incremental {

namespace {

constexpr double kEpsilon = 1e-6;  // StreamSegMetrics' EPS
const double kNaN = std::numeric_limits<double>::quiet_NaN();

bool is_index_dtype(DType dtype) { return dtype == DType::u8 || dtype == DType::i32 || dtype == DType::i64; }

template <class P, class L>
void accumulate(std::vector<int64_t>& counts, int n, const Tensor& predictions, const Tensor& labels) {
  const P* pred = predictions.data<P>();
  const L* gt = labels.data<L>();
  const int64_t size = labels.numel();
  for (int64_t i = 0; i < size; ++i) {
    const int64_t g = static_cast<int64_t>(gt[i]);
    if (g < 0 || g >= n) continue;
    const int64_t p = static_cast<int64_t>(pred[i]);
    if (p < 0 || p >= n) {
      Shape coords(static_cast<size_t>(labels.dim()));
      int64_t rest = i;
      for (int64_t d = labels.dim() - 1; d >= 0; --d) {
        coords[static_cast<size_t>(d)] = rest % labels.size(d);
        rest /= labels.size(d);
      }
      throw Error(cat("ConfusionMatrix::update: prediction ", p, " at ", shape_str(coords), " (ground truth ", g,
                      ") is outside the ", n, " classes [0, ", n, ") of the matrix"));
    }
    counts[static_cast<size_t>(g * n + p)] += 1;
  }
}

template <class P>
void accumulate_labels(std::vector<int64_t>& counts, int n, const Tensor& predictions, const Tensor& labels) {
  switch (labels.dtype()) {
    case DType::u8: return accumulate<P, uint8_t>(counts, n, predictions, labels);
    case DType::i32: return accumulate<P, int32_t>(counts, n, predictions, labels);
    default: return accumulate<P, int64_t>(counts, n, predictions, labels);
  }
}

double mean_of(const std::vector<double>& values) {
  if (values.empty()) return kNaN;
  double total = 0;
  for (double v : values) total += v;
  return total / static_cast<double>(values.size());
}

// Python's str(float): the shortest round-trip digits, fixed notation for decimal exponents in
// [-4, 16), scientific "d.ddde-XX" otherwise, and always a '.' or an exponent ("1.0", not "1").
std::string python_float_str(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  char buffer[64];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof(buffer), value, std::chars_format::scientific);
  std::string sci(buffer, end);  // "-d.ddde+XX"
  size_t e = sci.find('e');
  std::string mantissa = sci.substr(0, e);
  int exponent = std::stoi(sci.substr(e + 1));
  bool negative = mantissa[0] == '-';
  if (negative) mantissa.erase(0, 1);
  std::string digits;
  for (char c : mantissa) {
    if (c != '.') digits += c;
  }
  std::string out;
  if (exponent >= -4 && exponent < 16) {
    int point = exponent + 1;  // digits before the decimal point
    if (point <= 0) {
      out = "0." + std::string(static_cast<size_t>(-point), '0') + digits;
    } else if (point >= static_cast<int>(digits.size())) {
      out = digits + std::string(static_cast<size_t>(point) - digits.size(), '0') + ".0";
    } else {
      out = digits.substr(0, static_cast<size_t>(point)) + "." + digits.substr(static_cast<size_t>(point));
    }
  } else {
    out = digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    char exp[16];
    std::snprintf(exp, sizeof(exp), "e%c%02d", exponent < 0 ? '-' : '+', std::abs(exponent));
    out += exp;
  }
  return negative ? "-" + out : out;
}

std::string percent(double fraction) {
  if (std::isnan(fraction)) return "-";
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.2f", 100.0 * fraction);
  return buffer;
}

std::string pad_left(const std::string& text, size_t width) {
  return text.size() >= width ? text : std::string(width - text.size(), ' ') + text;
}
std::string pad_right(const std::string& text, size_t width) {
  return text.size() >= width ? text : text + std::string(width - text.size(), ' ');
}

std::string range_str(ChannelRange range) {
  if (range.size() <= 0) return "none";
  return range.size() == 1 ? cat(range.begin) : cat(range.begin, "-", range.end - 1);
}

std::string trim(const std::string& text) {
  size_t b = text.find_first_not_of(" \t\r\n"), e = text.find_last_not_of(" \t\r\n");
  return b == std::string::npos ? std::string() : text.substr(b, e - b + 1);
}

double parse_cell(const std::string& cell, size_t line) {
  std::string text = trim(cell);
  if (text == "nan") return kNaN;
  double value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  check(ec == std::errc() && ptr == text.data() + text.size() && !text.empty(), "average_results_csv: line ", line,
        ": '", cell, "' is not a number");
  return value;
}

// average_csv.py's mean of the cells [begin, end) of a row, skipping 'x'/'X' but counting them.
double mean_of_cells(const std::vector<std::string>& row, size_t begin, size_t end, size_t line) {
  end = std::min(end, row.size());
  if (begin >= end) return 0.0;
  double total = 0;
  for (size_t i = begin; i < end; ++i) {
    if (row[i] != "x" && row[i] != "X") total += parse_cell(row[i], line);
  }
  return total / static_cast<double>(end - begin);
}

}  // namespace

// ---- ConfusionMatrix ------------------------------------------------------------------------------

ConfusionMatrix::ConfusionMatrix(int num_classes) : num_classes_(num_classes) {
  check(num_classes >= 1, "ConfusionMatrix: expected at least 1 class, got ", num_classes);
  counts_.assign(static_cast<size_t>(num_classes) * static_cast<size_t>(num_classes), 0);
}

void ConfusionMatrix::update(const Tensor& predictions, const Tensor& labels) {
  const char* op = "ConfusionMatrix::update";
  check_defined(op, "predictions", predictions);
  check_defined(op, "labels", labels);
  check(is_index_dtype(predictions.dtype()), op, ": expected predictions of dtype u8, i32 or i64, got ",
        predictions.describe());
  check(is_index_dtype(labels.dtype()), op, ": expected labels of dtype u8, i32 or i64, got ", labels.describe());
  check_same_shape(op, predictions, "predictions", labels, "labels");
  check_cpu(op, predictions);
  check_cpu(op, labels);
  Tensor p = predictions.contiguous(), l = labels.contiguous();
  switch (p.dtype()) {
    case DType::u8: accumulate_labels<uint8_t>(counts_, num_classes_, p, l); break;
    case DType::i32: accumulate_labels<int32_t>(counts_, num_classes_, p, l); break;
    default: accumulate_labels<int64_t>(counts_, num_classes_, p, l); break;
  }
}

void ConfusionMatrix::merge(const ConfusionMatrix& other) {
  check(other.num_classes_ == num_classes_, "ConfusionMatrix::merge: a ", other.num_classes_, "-class matrix into a ",
        num_classes_, "-class one");
  add_counts(other.counts_);
}

void ConfusionMatrix::add_counts(const std::vector<int64_t>& counts) {
  check(counts.size() == counts_.size(), "ConfusionMatrix::add_counts: ", counts.size(), " counts into a ",
        num_classes_, "-class matrix (", counts_.size(), " counts)");
  for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += counts[i];
}

void ConfusionMatrix::reset() { std::fill(counts_.begin(), counts_.end(), 0); }

int64_t ConfusionMatrix::count(int ground_truth, int prediction) const {
  check(ground_truth >= 0 && ground_truth < num_classes_ && prediction >= 0 && prediction < num_classes_,
        "ConfusionMatrix::count: (", ground_truth, ", ", prediction, ") is outside the ", num_classes_, " classes");
  return counts_[static_cast<size_t>(ground_truth) * static_cast<size_t>(num_classes_) +
                 static_cast<size_t>(prediction)];
}

// ---- scores ---------------------------------------------------------------------------------------

double SegmentationScores::mean_iou_over(int begin, int end) const {
  std::vector<double> values;
  for (int c = std::max(begin, 0); c < std::min(end, num_classes()); ++c) {
    if (has_ground_truth(c)) values.push_back(iou[static_cast<size_t>(c)]);
  }
  return mean_of(values);
}

SegmentationScores compute_scores(const ConfusionMatrix& matrix) {
  const int n = matrix.num_classes();
  const size_t un = static_cast<size_t>(n);
  SegmentationScores s;
  s.iou.assign(un, 0);
  s.class_accuracy.assign(un, 0);
  s.ground_truth_pixels.assign(un, 0);
  s.predicted_pixels.assign(un, 0);
  int64_t diagonal = 0;
  for (int g = 0; g < n; ++g) {
    for (int p = 0; p < n; ++p) {
      int64_t m = matrix.count(g, p);
      s.ground_truth_pixels[static_cast<size_t>(g)] += m;
      s.predicted_pixels[static_cast<size_t>(p)] += m;
      s.pixels += m;
    }
    diagonal += matrix.count(g, g);
  }
  std::vector<double> ious, accuracies;
  double frequency_weighted = 0;
  for (int c = 0; c < n; ++c) {
    const size_t uc = static_cast<size_t>(c);
    const double tp = static_cast<double>(matrix.count(c, c));
    const double gt = static_cast<double>(s.ground_truth_pixels[uc]);
    s.iou[uc] = tp / (gt + static_cast<double>(s.predicted_pixels[uc]) - tp + kEpsilon);
    s.class_accuracy[uc] = tp / (gt + kEpsilon);
    if (s.ground_truth_pixels[uc] > 0) {
      ious.push_back(s.iou[uc]);
      accuracies.push_back(s.class_accuracy[uc]);
      frequency_weighted += gt / static_cast<double>(s.pixels) * s.iou[uc];
    }
  }
  s.pixel_accuracy = s.pixels > 0 ? static_cast<double>(diagonal) / static_cast<double>(s.pixels) : kNaN;
  s.mean_iou = mean_of(ious);
  s.mean_class_accuracy = mean_of(accuracies);
  s.frequency_weighted_iou = s.pixels > 0 ? frequency_weighted : kNaN;
  return s;
}

StepMeans step_means(const SegmentationScores& scores, const Task& task, int step) {
  const int channels = task.num_channels(step);
  check(scores.num_classes() == channels, "step_means: scores of ", scores.num_classes(), " classes for step ", step,
        " of task '", task.name(), "', which has ", channels, " channels");
  StepMeans m;
  m.old_classes = {0, task.num_channels(0)};
  m.new_classes = {task.num_channels(0), channels};
  m.old_with_background = scores.mean_iou_over(0, m.old_classes.end);
  m.new_with_background = scores.mean_iou_over(m.new_classes.begin, m.new_classes.end);
  m.all_with_background = scores.mean_iou_over(0, channels);
  m.old_without_background = scores.mean_iou_over(1, m.old_classes.end);
  m.new_without_background = m.new_with_background;  // channel 0 is never a new class
  m.all_without_background = scores.mean_iou_over(1, channels);
  return m;
}

std::string format_scores(const SegmentationScores& scores, const Task& task, int step) {
  StepMeans means = step_means(scores, task, step);
  const std::vector<int> order = task.channel_order(step);
  const std::vector<std::string> names = task.channel_names(step);
  size_t name_width = 5;
  for (const std::string& name : names) name_width = std::max(name_width, name.size());
  std::ostringstream out;
  out << task.describe() << "\n"
      << "step " << step << ": " << task.num_channels(step) << " channels; old = step-0 classes (channels "
      << range_str(means.old_classes) << "), new = classes of steps 1.." << step << " (channels "
      << range_str(means.new_classes) << ")\n";
  out << "channel    raw  " << pad_right("class", name_width) << "  step     IoU     acc   GT pixels\n";
  for (int c = 0; c < scores.num_classes(); ++c) {
    const size_t uc = static_cast<size_t>(c);
    const bool gt = scores.has_ground_truth(c);
    out << pad_left(cat(c), 7) << "  " << pad_left(cat(order[uc]), 5) << "  " << pad_right(names[uc], name_width)
        << "  " << pad_left(cat(task.step_of(order[uc])), 4) << "  "
        << pad_left(gt ? percent(scores.iou[uc]) : "X", 6) << "  "
        << pad_left(gt ? percent(scores.class_accuracy[uc]) : "X", 6) << "  "
        << pad_left(cat(scores.ground_truth_pixels[uc]), 10) << "\n";
  }
  std::string old_with = cat("old ", range_str(means.old_classes));
  std::string old_without = cat("old ", range_str({1, means.old_classes.end}));
  std::string new_range = cat("new ", range_str(means.new_classes));
  out << "mean IoU (%), classes without ground truth excluded:\n"
      << "  background included (PLOP convention):  " << old_with << ": " << percent(means.old_with_background)
      << "  " << new_range << ": " << percent(means.new_with_background) << "  all "
      << range_str({0, task.num_channels(step)}) << ": " << percent(means.all_with_background) << "\n"
      << "  background excluded (MiB convention):   " << old_without << ": "
      << percent(means.old_without_background) << "  " << new_range << ": " << percent(means.new_without_background)
      << "  all " << range_str({1, task.num_channels(step)}) << ": " << percent(means.all_without_background) << "\n"
      << "pixel accuracy " << percent(scores.pixel_accuracy) << "%, mean class accuracy "
      << percent(scores.mean_class_accuracy) << "%, frequency-weighted IoU " << percent(scores.frequency_weighted_iou)
      << "%, mean IoU " << percent(scores.mean_iou) << "% over " << scores.pixels << " pixels\n";
  return out.str();
}

std::string results_csv_row(int step, const SegmentationScores& scores, const Task& task) {
  const int labels = task.labels().num_classes();
  check(scores.num_classes() <= labels, "results_csv_row: scores of ", scores.num_classes(),
        " classes for a label space of ", labels);
  std::string row = cat(step);
  for (int c = 0; c < labels; ++c) {
    row += ",";
    if (c >= scores.num_classes()) {
      row += "x";
    } else {
      row += scores.has_ground_truth(c) ? python_float_str(scores.iou[static_cast<size_t>(c)]) : "X";
    }
  }
  return row + "," + python_float_str(scores.mean_iou);
}

ResultsAverage average_results_csv(const std::string& csv) {
  ResultsAverage result;
  std::istringstream lines(csv);
  std::string line;
  size_t line_number = 0;
  size_t split_column = 0;
  bool have_split = false;
  double total = 0;
  while (std::getline(lines, line)) {
    ++line_number;
    if (trim(line).empty()) continue;
    std::vector<std::string> row;
    std::stringstream cells(line);
    std::string cell;
    while (std::getline(cells, cell, ',')) row.push_back(cell);
    if (!line.empty() && line.back() == ',') row.push_back("");
    check(row.size() >= 2, "average_results_csv: line ", line_number, " has no mIoU column: '", line, "'");
    double miou = parse_cell(row.back(), line_number);
    total += miou;
    result.final_miou = miou;
    result.last_step = trim(row.front());
    if (result.rows == 0) {
      // The first 'x' among columns 1.. (the mIoU column when there is none), as the loop in average_csv.py.
      split_column = row.size() - 1;
      for (size_t c = 1; c < row.size(); ++c) {
        if (row[c] == "x") {
          split_column = c;
          break;
        }
      }
      have_split = true;
    } else if (have_split) {
      result.first_miou = mean_of_cells(row, 1, split_column, line_number);
      result.last_miou = mean_of_cells(row, split_column, row.size() - 1, line_number);
    }
    ++result.rows;
  }
  check(result.rows > 0, "average_results_csv: no rows");
  result.average_miou = total / result.rows;
  return result;
}

}  // namespace strata::incremental
