#include "incremental/report.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/error.h"
#include "engine/safetensors.h"

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
