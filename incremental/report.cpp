#include "incremental/report.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/atomic_file.h"
#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/ops/channels.h"
#include "engine/ops/elementwise.h"

namespace strata::incremental {

namespace {

void make_parent(const std::string& path) {
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (parent.empty()) return;
  std::error_code error;
  std::filesystem::create_directories(parent, error);
  check(!error, "cannot create the folder ", parent.string(), " for ", path, ": ", error.message());
}

// The terminal's width for a redrawn line (80 when unknown).
size_t terminal_width(std::FILE* out) {
  winsize size{};
  if (ioctl(fileno(out), TIOCGWINSZ, &size) == 0 && size.ws_col > 20) return size.ws_col;
  return 80;
}

}  // namespace

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const auto total = static_cast<int64_t>(std::llround(seconds));
  const int64_t h = total / 3600, m = (total / 60) % 60, s = total % 60;
  char text[32];
  if (h > 0) {
    std::snprintf(text, sizeof(text), "%lld:%02lld:%02lld", static_cast<long long>(h), static_cast<long long>(m),
                  static_cast<long long>(s));
  } else if (m > 0) {
    std::snprintf(text, sizeof(text), "%lld:%02lld", static_cast<long long>(m), static_cast<long long>(s));
  } else {
    std::snprintf(text, sizeof(text), "%llds", static_cast<long long>(s));
  }
  return text;
}

std::string format_bytes(int64_t bytes) {
  const double b = static_cast<double>(bytes);
  char text[32];
  if (b >= 1024.0 * 1024 * 1024) {
    std::snprintf(text, sizeof(text), "%.1f GiB", b / (1024.0 * 1024 * 1024));
  } else if (b >= 1024.0 * 1024) {
    std::snprintf(text, sizeof(text), "%.1f MiB", b / (1024.0 * 1024));
  } else {
    std::snprintf(text, sizeof(text), "%.1f KiB", b / 1024.0);
  }
  return text;
}

std::string format_percent(double fraction) {
  if (!std::isfinite(fraction)) return "-";
  char text[16];
  std::snprintf(text, sizeof(text), "%.2f", 100 * fraction);
  return text;
}

TrainingInterval::TrainingInterval() : start_(std::chrono::steady_clock::now()) {}

void TrainingInterval::add(const Tensor& loss, const std::vector<std::string>& names, const Tensor& terms,
                           int64_t images) {
  if (iterations_ == 0) {
    names_ = names;
  } else {
    check(names == names_, "TrainingInterval: an iteration with other loss terms than the interval's first (",
          names.size(), " terms instead of ", names_.size(), ")");
  }
  autograd::NoGradGuard no_grad;
  // f64 sums of the f32 values, in iteration order: the means a host-side double sum would give.
  Tensor row = concat({loss.detach().reshape({1}), terms.detach()}).to(DType::f64);
  sums_ = sums_.defined() ? strata::add(sums_, row) : row;
  ++iterations_;
  images_ += images;
}

IntervalMeans TrainingInterval::read(const Tensor& probe) {
  check(iterations_ > 0, "TrainingInterval::read: no iteration since the last read");
  const int64_t count = sums_.numel();
  std::vector<double> sums;
  {
    autograd::NoGradGuard no_grad;
    const Tensor values = probe.defined() ? concat({sums_, probe.reshape({probe.numel()})}) : sums_;
    sums = values.to_vector<double>();  // the interval's one device-to-host copy
  }
  IntervalMeans means;
  means.probe.assign(sums.begin() + count, sums.end());
  const double n = static_cast<double>(iterations_);
  means.loss = sums[0] / n;
  for (size_t k = 0; k < names_.size(); ++k) means.terms.emplace_back(names_[k], sums[k + 1] / n);
  means.iterations = iterations_;
  means.images = images_;
  const auto now = std::chrono::steady_clock::now();
  means.seconds = std::chrono::duration<double>(now - start_).count();
  sums_ = Tensor();
  iterations_ = 0;
  images_ = 0;
  start_ = now;
  return means;
}

std::string format_training_stats(const IntervalMeans& means, double lr, int64_t peak_bytes) {
  char loss_text[64];
  std::snprintf(loss_text, sizeof(loss_text), "loss %.4f", means.loss);
  std::string text = loss_text;
  if (means.terms.size() > 1) {
    text += " (";
    for (size_t i = 0; i < means.terms.size(); ++i) {
      char term_text[64];
      std::snprintf(term_text, sizeof(term_text), "%s%s %.4f", i ? " " : "", means.terms[i].first.c_str(),
                    means.terms[i].second);
      text += term_text;
    }
    text += ")";
  }
  char rest_text[96];
  std::snprintf(rest_text, sizeof(rest_text), " lr %.3g %.1f img/s peak %s", lr, means.images_per_second(),
                format_bytes(peak_bytes).c_str());
  return text + rest_text;
}

json::Object training_record(int step, int64_t epoch, int64_t iteration, const IntervalMeans& means, double lr,
                             int64_t peak_bytes, double elapsed_seconds) {
  json::Object record{
      {"event", "train"}, {"step", step}, {"epoch", epoch}, {"iteration", iteration}, {"loss", means.loss}};
  for (const auto& [term, value] : means.terms) record.emplace_back(term, value);
  record.emplace_back("lr", lr);
  record.emplace_back("images_per_second", means.images_per_second());
  record.emplace_back("peak_memory_bytes", peak_bytes);
  record.emplace_back("elapsed_seconds", elapsed_seconds);
  return record;
}

json::Value number_or_null(double value) { return std::isfinite(value) ? json::Value(value) : json::Value(); }

json::Object scores_record(const SegmentationScores& scores, const StepMeans& means) {
  json::Array iou;
  for (int c = 0; c < scores.num_classes(); ++c) {
    iou.push_back(scores.has_ground_truth(c) ? number_or_null(scores.iou[static_cast<size_t>(c)]) : json::Value());
  }
  return json::Object{
      {"images", scores.images},
      {"miou", number_or_null(scores.mean_iou)},
      {"pixel_accuracy", number_or_null(scores.pixel_accuracy)},
      {"mean_class_accuracy", number_or_null(scores.mean_class_accuracy)},
      {"old_with_background", number_or_null(means.old_with_background)},
      {"new_with_background", number_or_null(means.new_with_background)},
      {"all_with_background", number_or_null(means.all_with_background)},
      {"old_without_background", number_or_null(means.old_without_background)},
      {"new_without_background", number_or_null(means.new_without_background)},
      {"all_without_background", number_or_null(means.all_without_background)},
      {"iou", iou},
  };
}

json::Object joined(json::Object head, const json::Object& tail) {
  head.insert(head.end(), tail.begin(), tail.end());
  return head;
}

std::string format_step_scores(int step, const std::string& what, const SegmentationScores& scores,
                               const StepMeans& means) {
  return cat("step ", step, " ", what, " (", scores.images, " images): mIoU ", format_percent(scores.mean_iou),
             "% | old/new/all with background ", format_percent(means.old_with_background), " / ",
             format_percent(means.new_with_background), " / ", format_percent(means.all_with_background),
             " | without background ", format_percent(means.old_without_background), " / ",
             format_percent(means.new_without_background), " / ", format_percent(means.all_without_background),
             " | pixel accuracy ", format_percent(scores.pixel_accuracy), "%, mean class accuracy ",
             format_percent(scores.mean_class_accuracy), "%\n");
}

std::string format_results_average(const std::string& path, const ResultsAverage& average) {
  return cat("results ", path, ": ", average.rows, " step", average.rows == 1 ? "" : "s", ", final mIoU ",
             format_percent(average.final_miou), "%, average over steps ", format_percent(average.average_miou),
             "%\n");
}

std::string format_steps_table(const Task& task, const std::vector<StepResult>& results) {
  auto cell = [](double fraction) {
    char text[16];
    if (std::isfinite(fraction)) {
      std::snprintf(text, sizeof(text), "%6.1f", 100 * fraction);
    } else {
      std::snprintf(text, sizeof(text), "%6s", "-");
    }
    return std::string(text);
  };
  std::string out = cat("mean IoU (%) of task ", task.describe(), "\n",
                        "                          background included       background excluded\n",
                        "step  classes added          old    new    all        old    new    all\n");
  for (const StepResult& r : results) {
    const std::vector<int>& added = task.classes(r.step);
    char row[160];
    std::snprintf(row, sizeof(row), "%4d  %-18s", r.step,
                  cat(added.front(), "-", added.back(), " (", added.size(), ")").c_str());
    out += row;
    if (r.stopped) {
      out += "   stopped before its evaluation\n";
      continue;
    }
    const StepMeans& m = r.means;
    out += cat(cell(m.old_with_background), " ", cell(m.new_with_background), " ", cell(m.all_with_background),
               "     ", cell(m.old_without_background), " ", cell(m.new_without_background), " ",
               cell(m.all_without_background), "\n");
  }
  return out;
}

ProgressBar::ProgressBar(std::FILE* out, bool interactive, double min_interval)
    : out_(out), interactive_(interactive), min_interval_(min_interval) {}

void ProgressBar::start(const std::string& title, int64_t total, int64_t done) {
  title_ = title;
  total_ = total;
  first_ = done;
  start_ = std::chrono::steady_clock::now();
  last_draw_ = start_;
  drawn_ = false;
  last_width_ = 0;
}

double ProgressBar::eta_seconds(int64_t done) const {
  const int64_t ran = done - first_;
  if (ran <= 0) return 0;
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  return elapsed / static_cast<double>(ran) * static_cast<double>(std::max<int64_t>(0, total_ - done));
}

void ProgressBar::update(int64_t done, const std::string& epoch, const std::string& stats, bool force) {
  if (out_ == nullptr) return;
  const auto now = std::chrono::steady_clock::now();
  if (interactive_ && !force && drawn_ && std::chrono::duration<double>(now - last_draw_).count() < min_interval_) {
    return;
  }
  last_draw_ = now;
  const double fraction = total_ > 0 ? static_cast<double>(done) / static_cast<double>(total_) : 1.0;
  const int cells = 20;
  const int filled = std::clamp(static_cast<int>(fraction * cells), 0, cells);
  std::string bar(static_cast<size_t>(cells) + 2, '-');
  bar.front() = '[';
  bar.back() = ']';
  for (int i = 0; i < filled; ++i) bar[static_cast<size_t>(i) + 1] = '#';
  const std::string eta = done > first_ ? format_duration(eta_seconds(done)) : "?";
  std::string line = cat(title_, " ", bar, " ", static_cast<int>(std::floor(100 * fraction)), "% ", done, "/", total_,
                         " ", epoch, " ETA ", eta, " | ", stats);
  if (interactive_) {
    const size_t width = terminal_width(out_) - 1;
    if (line.size() > width) line.resize(width);
    const size_t pad = last_width_ > line.size() ? last_width_ - line.size() : 0;
    std::fprintf(out_, "\r%s%s", line.c_str(), std::string(pad, ' ').c_str());
    last_width_ = line.size();
  } else {
    std::fprintf(out_, "%s\n", line.c_str());
  }
  std::fflush(out_);
  drawn_ = true;
}

void ProgressBar::finish() {
  if (out_ == nullptr) return;
  if (interactive_ && drawn_) std::fprintf(out_, "\n");
  std::fflush(out_);
  drawn_ = false;
}

JsonlLog::JsonlLog(std::string path) : path_(std::move(path)) {
  make_parent(path_);
  std::ofstream file(path_, std::ios::app);
  check(file.good(), "cannot open the log ", path_, " for appending");
}

void JsonlLog::write(const json::Object& record) const {
  if (path_.empty()) return;
  std::ofstream file(path_, std::ios::app);
  file << json::dump(json::Value(record)) << '\n';
  file.flush();
  check(file.good(), "cannot write to the log ", path_);
}

ResultsCsv::ResultsCsv(std::string path) : path_(std::move(path)) {
  std::ifstream file(path_);
  if (!file.good()) return;
  std::string line;
  size_t number = 0;
  while (std::getline(file, line)) {
    ++number;
    if (line.empty()) continue;
    const size_t comma = line.find(',');
    int step = -1;
    try {
      step = std::stoi(line.substr(0, comma));
    } catch (const std::exception&) {
      step = -1;
    }
    check(step >= 0 && comma != std::string::npos, path_, ":", number, ": expected a results row 'step,IoU_0,...,mIoU', got '",
          line, "'");
    rows_[step] = line;
  }
}

void ResultsCsv::set_row(int step, const std::string& row) {
  check(row.rfind(std::to_string(step) + ",", 0) == 0, "ResultsCsv: the row of step ", step, " starts with '",
        row.substr(0, row.find(',')), "'");
  rows_[step] = row;
  make_parent(path_);
  write_file_atomically(path_, text());
}

std::string ResultsCsv::text() const {
  std::string out;
  for (const auto& [step, row] : rows_) out += row + "\n";
  return out;
}

ResultsAverage ResultsCsv::average() const { return average_results_csv(text()); }

}  // namespace strata::incremental
