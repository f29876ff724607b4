#include "incremental/run_report.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <set>

#include "engine/error.h"

namespace strata::incremental {

namespace {

namespace fs = std::filesystem;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// A number field; NaN when absent or null (the trainer writes a group without ground truth as null).
double number(const json::Value& record, std::string_view key) {
  const json::Value* v = record.find(key);
  return v == nullptr || v->is_null() ? kNaN : v->as_double();
}

int64_t integer(const json::Value& record, std::string_view key) {
  const json::Value* v = record.find(key);
  return v == nullptr || v->is_null() ? 0 : v->as_int();
}

std::string text(const json::Value& record, std::string_view key) {
  const json::Value* v = record.find(key);
  return v == nullptr || v->is_null() ? std::string() : v->as_string();
}

RunScores scores_of(const json::Value& record) {
  RunScores s;
  s.step = static_cast<int>(integer(record, "step"));
  s.images = integer(record, "images");
  s.miou = number(record, "miou");
  s.means.old_with_background = number(record, "old_with_background");
  s.means.new_with_background = number(record, "new_with_background");
  s.means.all_with_background = number(record, "all_with_background");
  s.means.old_without_background = number(record, "old_without_background");
  s.means.new_without_background = number(record, "new_without_background");
  s.means.all_without_background = number(record, "all_without_background");
  if (const json::Value* iou = record.find("iou"); iou != nullptr) {
    for (const json::Value& v : iou->as_array()) s.iou.push_back(v.is_null() ? kNaN : v.as_double());
  }
  return s;
}

RunStep step_of(const json::Value& record) {
  RunStep s;
  s.step = static_cast<int>(integer(record, "step"));
  s.classes = text(record, "classes");
  if (const json::Value* names = record.find("channel_names"); names != nullptr) {
    for (const json::Value& v : names->as_array()) s.channel_names.push_back(v.as_string());
  }
  s.epochs = integer(record, "epochs");
  s.batch_size = integer(record, "batch_size");
  s.crop_size = integer(record, "crop_size");
  s.max_iterations = integer(record, "max_iterations");
  s.training_images = integer(record, "training_images");
  s.lr = number(record, "lr");
  s.method = text(record, "method");
  s.model = text(record, "model");
  s.previous_checkpoint = text(record, "previous_checkpoint");
  return s;
}

// The weighted terms of a "train" record are the number fields training_record() writes between
// the loss and the rate: every field but these.
const std::set<std::string, std::less<>> kTrainFields = {
    "event",           "step",     "epoch", "iteration", "loss", "lr", "images_per_second", "peak_memory_bytes",
    "elapsed_seconds", "grad_norm"};

RunLosses losses_of(const json::Value& record) {
  RunLosses l;
  l.step = static_cast<int>(integer(record, "step"));
  l.iteration = integer(record, "iteration");
  l.loss = number(record, "loss");
  for (const auto& [key, value] : record.as_object()) {
    if (kTrainFields.count(key) == 0 && value.is_number()) l.terms.emplace_back(key, value.as_double());
  }
  return l;
}

// The state of one log while its lines are read: later records of a step replace earlier ones.
struct LogRecords {
  std::map<int, RunStep> steps;
  std::map<int, RunScores> results;
  std::map<std::pair<int, int64_t>, RunScores> evaluations;
  std::map<std::pair<int, int64_t>, RunLosses> losses;
  std::map<int, std::string> checkpoints;
};

void add_record(const json::Value& record, RunLog& run, LogRecords& records) {
  const std::string event = text(record, "event");
  if (event == "run") {
    run.configuration = record.as_object();
  } else if (event == "step_start") {
    RunStep s = step_of(record);
    records.steps[s.step] = std::move(s);
  } else if (event == "result") {
    RunScores s = scores_of(record);
    records.results[s.step] = std::move(s);
  } else if (event == "eval") {
    RunScores s = scores_of(record);
    s.epoch = integer(record, "epoch");
    records.evaluations[{s.step, s.epoch}] = std::move(s);
  } else if (event == "train") {
    RunLosses l = losses_of(record);
    records.losses[{l.step, l.iteration}] = std::move(l);
  } else if (event == "checkpoint" && record.find("complete") != nullptr && record.at("complete").as_bool()) {
    records.checkpoints[static_cast<int>(integer(record, "step"))] = text(record, "path");
  }
}

// "<task>-<dataset>_<name>.jsonl": the task and dataset never hold '_', the name may.
void name_from_file(RunLog& run) {
  const std::string stem = fs::path(run.path).stem().string();
  const size_t underscore = stem.find('_');
  const std::string head = stem.substr(0, underscore);
  run.name = underscore == std::string::npos ? stem : stem.substr(underscore + 1);
  const size_t dash = head.rfind('-');
  run.task = dash == std::string::npos ? head : head.substr(0, dash);
  run.dataset = dash == std::string::npos ? std::string() : head.substr(dash + 1);
}

bool same_file(const std::string& a, const std::string& b) {
  if (a.empty() || b.empty()) return false;
  std::error_code error;
  if (fs::equivalent(a, b, error)) return true;
  return fs::path(a).lexically_normal() == fs::path(b).lexically_normal();
}

// Prepends to `run` the results of the steps before its first one from the run whose complete
// checkpoint it started from, recursively (a chain of single-step runs).
void add_shared_steps(std::vector<RunLog>& runs, size_t index, int depth) {
  RunLog& run = runs[index];
  if (run.results.empty() || run.results.front().step == 0 || depth > static_cast<int>(runs.size())) return;
  const int first = run.results.front().step;
  std::string previous;
  for (const RunStep& s : run.steps) {
    if (s.step == first) previous = s.previous_checkpoint;
  }
  for (size_t other = 0; other < runs.size(); ++other) {
    if (other == index) continue;
    for (const auto& [step, path] : runs[other].checkpoints) {
      if (step != first - 1 || !same_file(path, previous)) continue;
      add_shared_steps(runs, other, depth + 1);
      std::vector<RunScores> earlier;
      for (const RunScores& s : runs[other].results) {
        if (s.step >= first) continue;
        earlier.push_back(s);
        if (earlier.back().from.empty()) earlier.back().from = runs[other].name;
      }
      run.results.insert(run.results.begin(), earlier.begin(), earlier.end());
      return;
    }
  }
}

std::string read_bytes(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  check(file.good(), "report: cannot read the prediction image ", path);
  std::string bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  check(!file.bad(), "report: cannot read the prediction image ", path);
  return bytes;
}

// The first `per_step` PNG files of each step<k>/ under the run's --save-predictions folder.
void read_predictions(RunLog& run, int per_step) {
  const std::string given = run.setting("save_predictions");
  fs::path folder = given;
  if (given.empty() || !fs::is_directory(folder)) folder = fs::path(run.run_dir) / given;
  if (given.empty() || !fs::is_directory(folder)) folder = fs::path(run.run_dir) / "predictions" / run.name;
  if (!fs::is_directory(folder)) return;
  std::map<int, std::vector<std::string>> files;
  for (const fs::directory_entry& entry : fs::directory_iterator(folder)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_directory() || name.rfind("step", 0) != 0 || name.size() == 4 ||
        name.find_first_not_of("0123456789", 4) != std::string::npos) {
      continue;
    }
    std::vector<std::string>& step_files = files[std::stoi(name.substr(4))];
    for (const fs::directory_entry& image : fs::directory_iterator(entry.path())) {
      if (image.is_regular_file() && image.path().extension() == ".png") step_files.push_back(image.path().string());
    }
  }
  for (auto& [step, paths] : files) {
    std::sort(paths.begin(), paths.end());
    run.prediction_files += static_cast<int64_t>(paths.size());
    const size_t shown = std::min(paths.size(), static_cast<size_t>(std::max(per_step, 0)));
    for (size_t i = 0; i < shown; ++i) run.predictions.push_back({step, paths[i], read_bytes(paths[i])});
  }
}

}  // namespace

std::string RunLog::setting(std::string_view key) const {
  for (const auto& [k, v] : configuration) {
    if (k == key) return v.is_string() ? v.as_string() : v.is_null() ? std::string() : json::dump(v);
  }
  return "";
}

std::vector<std::string> RunLog::channel_names(size_t n) const {
  std::vector<std::string> names;
  for (auto s = steps.rbegin(); s != steps.rend() && names.empty(); ++s) names = s->channel_names;
  for (size_t c = names.size(); c < n; ++c) names.push_back(cat("channel ", c));
  return names;
}

RunLog read_run_log(const std::string& jsonl_path, const std::string& run_dir) {
  RunLog run;
  run.path = jsonl_path;
  run.run_dir = run_dir;
  name_from_file(run);
  std::ifstream file(jsonl_path);
  check(file.good(), "report: cannot read the log ", jsonl_path);
  LogRecords records;
  std::string line;
  int64_t number = 0;
  while (std::getline(file, line)) {
    ++number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    try {
      const json::Value record = json::parse(line);
      check(record.is_object(), "a log line is one JSON object");
      add_record(record, run, records);
    } catch (const Error& e) {
      throw Error(cat(jsonl_path, ":", number, ": not a training log record: ", e.what()));
    }
  }
  check(!file.bad(), "report: cannot read the log ", jsonl_path);
  for (auto& [step, s] : records.steps) run.steps.push_back(std::move(s));
  for (auto& [step, s] : records.results) run.results.push_back(std::move(s));
  for (auto& [key, s] : records.evaluations) run.evaluations.push_back(std::move(s));
  for (auto& [key, l] : records.losses) run.losses.push_back(std::move(l));
  for (auto& [step, path] : records.checkpoints) run.checkpoints.emplace_back(step, std::move(path));
  const std::string name = run.setting("name");
  if (!name.empty()) run.name = name;
  return run;
}

std::vector<RunLog> read_runs(const std::vector<std::string>& run_dirs, int predictions_per_step) {
  check(!run_dirs.empty(), "report: no run directory given");
  std::vector<RunLog> runs;
  for (const std::string& dir : run_dirs) {
    check(fs::is_directory(dir), "report: the run directory ", dir, " does not exist");
    const fs::path logs = fs::path(dir) / "logs";
    std::vector<std::string> files;
    if (fs::is_directory(logs)) {
      for (const fs::directory_entry& entry : fs::directory_iterator(logs)) {
        if (entry.is_regular_file() && entry.path().extension() == ".jsonl") files.push_back(entry.path().string());
      }
    }
    check(!files.empty(), "report: ", dir, " holds no run logs (", logs.string(),
          "/*.jsonl, written by strata train --output ", dir, ")");
    std::sort(files.begin(), files.end());
    for (const std::string& f : files) runs.push_back(read_run_log(f, dir));
  }
  for (size_t i = 0; i < runs.size(); ++i) add_shared_steps(runs, i, 0);
  for (RunLog& run : runs) read_predictions(run, predictions_per_step);
  return runs;
}

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string base64(std::string_view bytes) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    const size_t n = std::min<size_t>(3, bytes.size() - i);
    uint32_t group = 0;
    for (size_t k = 0; k < 3; ++k) {
      group = (group << 8) | (k < n ? static_cast<uint8_t>(bytes[i + k]) : 0u);
    }
    for (size_t k = 0; k < 4; ++k) {
      out += k <= n ? kAlphabet[(group >> (18 - 6 * k)) & 63] : '=';
    }
  }
  return out;
}

}  // namespace strata::incremental
