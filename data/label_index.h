// The label index: which label values each image of a dataset contains, in the dataset's sample
// order. The incremental layer filters images with it (SPEC-continual.md §2.2: an image is used at
// step t when it contains a class of step t, ...), exactly as the references' filter_images scan.
//
// Scanning every label map of VOC train_aug or ADE20K takes a while, so the index is cached next
// to the data, in <root>/strata_label_index_<kind>_<split>.json. The cache is trusted only when it
// matches the data: same format version, dataset kind, sample source and number of classes, and
// for every sample in list order the same label path and the same label file size and
// modification time (nanoseconds). Anything else -- a reordered list, an edited or replaced label
// file, another class count -- rebuilds it. Size + mtime is checked rather than a content hash
// because validating then costs one stat() per file instead of reading every label map at each
// start; a rewrite that keeps both size and nanosecond mtime is the blind spot.
// A root that cannot be written to gets a warning on stderr and an in-memory index.
//
// Bad samples: a label that fails to read (missing, corrupt, a value outside the dataset's range)
// is recorded with the reader's error, which names the file and what was expected, in the index
// and in the cache. Whether it stops the run is decided each time an index is built or loaded, by
// the dataset's skip_bad, never by the run that wrote the cache: without skip_bad the index throws
// the first recorded error in list order, saying how many other samples are bad and listing them
// (a fresh scan reads every label first and writes the cache, so every problem shows at once);
// with skip_bad each bad sample is logged to stderr once per load and marked bad (left out by every
// filter). The messages name the files under the root as given when they were recorded: a cache
// holding bad samples is rebuilt under another spelling of the root.
#pragma once

#include <bitset>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "data/dataset.h"

namespace strata::data {

class LabelIndex {
 public:
  LabelIndex() = default;
  explicit LabelIndex(int64_t size) : present_(static_cast<size_t>(size)), errors_(static_cast<size_t>(size)) {}

  int64_t size() const { return static_cast<int64_t>(present_.size()); }
  bool contains(int64_t image, int label) const { return present_.at(static_cast<size_t>(image)).test(static_cast<size_t>(label)); }
  std::vector<int> labels(int64_t image) const;         // the values present, ascending (255 included)
  std::vector<int64_t> images_with(int label) const;   // indices of the images containing `label`
  // A sample whose label failed to read: it contains nothing and is never used. error() is the
  // reader's message (naming the file and what was expected), empty for a good sample.
  bool bad(int64_t image) const { return !error(image).empty(); }
  const std::string& error(int64_t image) const { return errors_.at(static_cast<size_t>(image)); }
  int64_t bad_count() const;

  void set(int64_t image, const std::bitset<256>& labels) { present_.at(static_cast<size_t>(image)) = labels; }
  void set_bad(int64_t image, std::string error);  // throws when `error` is empty
  const std::bitset<256>& present(int64_t image) const { return present_.at(static_cast<size_t>(image)); }
  bool operator==(const LabelIndex&) const = default;

 private:
  std::vector<std::bitset<256>> present_;
  std::vector<std::string> errors_;
};

// Scans every label map (decoded, validated and mapped as the loader reads them) on `threads`
// threads (0 = all), then applies the dataset's skip_bad to the bad samples (see above): throws
// naming the lowest failing index whatever the thread count, or logs them and marks them bad.
LabelIndex build_label_index(const Dataset& dataset, int threads = 0);

// The cached index, rebuilt and rewritten when the cache is missing or does not match the data,
// then the dataset's skip_bad applied to its bad samples as by build_label_index. `rebuilt`
// (optional) tells whether a scan happened; it is set also when bad samples then throw.
LabelIndex load_label_index(const Dataset& dataset, int threads = 0, bool* rebuilt = nullptr);
std::string label_index_cache_path(const Dataset& dataset);

}  // namespace strata::data
