// Label index: brute-force scan on threads, and its JSON cache validated against the data (the
// invalidation rule is explained in label_index.h). Cache layout:
//   {"format": "strata-label-index 2", "kind": "voc", "source": "splits/train_aug.txt",
//    "classes": 21, "root": "/data/PascalVOC12", "entries": [{"label": "SegmentationClassAug/x.png",
//    "size": 1234, "mtime_ns": 1700000000123456789, "labels": [0, 15, 255]}, ...]}
// with "error": "<the reader's message>" instead of "labels" for a label that failed to read,
// whatever the skip_bad of the run that wrote it (format 1 stored "bad": true, decided by that
// run's skip_bad; it is rebuilt).
#include "data/label_index.h"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <iostream>

#include "data/parallel.h"
#include "engine/error.h"
#include "engine/json.h"
#include "engine/safetensors.h"

namespace strata::data {

namespace fs = std::filesystem;

namespace {

constexpr const char* kFormat = "strata-label-index 2";
constexpr int64_t kListedBad = 10;  // bad samples an error message quotes in full

struct FileStamp {
  int64_t size = -1;
  int64_t mtime_ns = -1;
};

FileStamp stamp(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return {};
  return {static_cast<int64_t>(st.st_size),
          static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + static_cast<int64_t>(st.st_mtim.tv_nsec)};
}

// The label path relative to the root, computed lexically (label paths are built from the root),
// so that validating a cache costs no more than one stat() per file.
std::string relative_label(const Dataset& dataset, int64_t i) {
  fs::path rel = fs::path(dataset.sample(i).label).lexically_relative(dataset.root());
  return rel.empty() ? dataset.sample(i).label : rel.generic_string();
}

// Fills `index` from the cache file when it exists and matches the data; false otherwise.
bool load_cache(const Dataset& dataset, const std::string& path, LabelIndex& index) {
  if (!fs::is_regular_file(path)) return false;
  try {
    std::string text = read_file_bytes(path);
    json::Value v = json::parse(text);
    if (v.at("format").as_string() != kFormat || v.at("kind").as_string() != dataset_kind_name(dataset.kind()) ||
        v.at("source").as_string() != dataset.source() || v.at("classes").as_int() != dataset.num_classes()) {
      return false;
    }
    const json::Array& entries = v.at("entries").as_array();
    if (static_cast<int64_t>(entries.size()) != dataset.size()) return false;
    const bool same_root = v.at("root").as_string() == dataset.root();
    LabelIndex loaded(dataset.size());
    for (int64_t i = 0; i < dataset.size(); ++i) {
      const json::Value& e = entries[static_cast<size_t>(i)];
      FileStamp s = stamp(dataset.sample(i).label);
      if (e.at("label").as_string() != relative_label(dataset, i) || e.at("size").as_int() != s.size ||
          e.at("mtime_ns").as_int() != s.mtime_ns) {
        return false;
      }
      if (const json::Value* error = e.find("error")) {
        // The message names the files under the recorded root; under another one it would not.
        if (!same_root || error->as_string().empty()) return false;
        loaded.set_bad(i, error->as_string());
        continue;
      }
      std::bitset<256> present;
      for (const json::Value& label : e.at("labels").as_array()) {
        int64_t l = label.as_int();
        if (l < 0 || l > 255) return false;
        present.set(static_cast<size_t>(l));
      }
      loaded.set(i, present);
    }
    index = std::move(loaded);
    return true;
  } catch (const Error&) {
    return false;  // unreadable or malformed cache: rebuild it
  }
}

void save_cache(const Dataset& dataset, const std::string& path, const LabelIndex& index) {
  json::Array entries;
  entries.reserve(static_cast<size_t>(index.size()));
  for (int64_t i = 0; i < index.size(); ++i) {
    FileStamp s = stamp(dataset.sample(i).label);
    json::Object e = {{"label", relative_label(dataset, i)}, {"size", s.size}, {"mtime_ns", s.mtime_ns}};
    if (index.bad(i)) {
      e.emplace_back("error", index.error(i));
    } else {
      json::Array labels;
      for (int l : index.labels(i)) labels.emplace_back(l);
      e.emplace_back("labels", std::move(labels));
    }
    entries.emplace_back(std::move(e));
  }
  json::Object root = {{"format", kFormat},          {"kind", dataset_kind_name(dataset.kind())},
                       {"source", dataset.source()}, {"classes", dataset.num_classes()},
                       {"root", dataset.root()},     {"entries", std::move(entries)}};
  try {
    write_file_atomically(path, json::dump(json::Value(std::move(root))) + "\n");
  } catch (const Error& e) {
    std::cerr << "strata: warning: cannot write the label index cache: " << e.what()
              << " (the index is kept in memory for this run)\n";
  }
}

// Every label map read on `threads` threads; a label that fails to read is recorded with its error.
LabelIndex scan(const Dataset& dataset, int threads) {
  LabelIndex index(dataset.size());
  std::vector<std::string> errors(static_cast<size_t>(dataset.size()));
  run_parallel(dataset.size(), threads, [&](int64_t i) {
    try {
      Image label = dataset.read_label(i);
      std::bitset<256> present;
      for (uint8_t v : label.pixels) present.set(v);
      index.set(i, present);
    } catch (const Error& e) {
      errors[static_cast<size_t>(i)] = e.what();
    }
  });
  for (int64_t i = 0; i < dataset.size(); ++i) {
    if (!errors[static_cast<size_t>(i)].empty()) index.set_bad(i, std::move(errors[static_cast<size_t>(i)]));
  }
  return index;
}

// The current run's decision on the bad samples of `index`, whoever recorded them: logged once
// each under skip_bad, otherwise the first one (in list order) thrown with the others listed.
void apply_skip_bad(const Dataset& dataset, const LabelIndex& index) {
  std::vector<int64_t> samples;
  for (int64_t i = 0; i < index.size(); ++i) {
    if (index.bad(i)) samples.push_back(i);
  }
  if (samples.empty()) return;
  if (dataset.skip_bad()) {
    for (int64_t i : samples) {
      std::cerr << "strata: skipping sample " << i << " (" << dataset.sample(i).stem << "): " << index.error(i) << "\n";
    }
    return;
  }
  std::string message = cat("label index of ", dataset.source(), ": ", index.error(samples.front()));
  const auto bad = static_cast<int64_t>(samples.size());
  if (bad > 1) {
    message += cat("\n  ", bad - 1, " other sample", bad == 2 ? " is" : "s are", " bad too:");
    const int64_t listed = std::min<int64_t>(bad, kListedBad + 1);
    for (int64_t k = 1; k < listed; ++k) message += cat("\n  ", index.error(samples[static_cast<size_t>(k)]));
    if (bad > listed) message += cat("\n  ... and ", bad - listed, " more");
  }
  message += "\n  (with --skip-bad, DatasetOptions::skip_bad, bad samples are logged and left out)";
  throw Error(message);
}

}  // namespace

int64_t LabelIndex::bad_count() const {
  return std::count_if(errors_.begin(), errors_.end(), [](const std::string& e) { return !e.empty(); });
}

void LabelIndex::set_bad(int64_t image, std::string error) {
  check(!error.empty(), "LabelIndex::set_bad: sample ", image, " needs the error that makes it bad");
  errors_.at(static_cast<size_t>(image)) = std::move(error);
}

std::vector<int> LabelIndex::labels(int64_t image) const {
  std::vector<int> out;
  const std::bitset<256>& p = present(image);
  for (int l = 0; l < 256; ++l) {
    if (p.test(static_cast<size_t>(l))) out.push_back(l);
  }
  return out;
}

std::vector<int64_t> LabelIndex::images_with(int label) const {
  std::vector<int64_t> out;
  for (int64_t i = 0; i < size(); ++i) {
    if (contains(i, label)) out.push_back(i);
  }
  return out;
}

LabelIndex build_label_index(const Dataset& dataset, int threads) {
  LabelIndex index = scan(dataset, threads);
  apply_skip_bad(dataset, index);
  return index;
}

std::string label_index_cache_path(const Dataset& dataset) {
  std::string split = dataset.split();
  if (dataset.kind() == DatasetKind::voc) split = fs::path(dataset.source()).stem().string();
  return (fs::path(dataset.root()) / cat("strata_label_index_", dataset_kind_name(dataset.kind()), "_", split, ".json"))
      .string();
}

LabelIndex load_label_index(const Dataset& dataset, int threads, bool* rebuilt) {
  std::string path = label_index_cache_path(dataset);
  LabelIndex index;
  const bool cached = load_cache(dataset, path, index);
  if (!cached) {
    // The cache is written before bad samples throw: it records every problem, and the next run
    // with skip_bad starts from it without scanning again.
    index = scan(dataset, threads);
    save_cache(dataset, path, index);
  }
  if (rebuilt) *rebuilt = !cached;
  apply_skip_bad(dataset, index);
  return index;
}

}  // namespace strata::data
