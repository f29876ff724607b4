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
#pragma once

#include <bitset>
#include <cstdint>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace strata::data {

class LabelIndex {
 public:
  LabelIndex() = default;
  explicit LabelIndex(int64_t size) : present_(static_cast<size_t>(size)), bad_(static_cast<size_t>(size), 0) {}

  int64_t size() const { return static_cast<int64_t>(present_.size()); }
  bool contains(int64_t image, int label) const { return present_.at(static_cast<size_t>(image)).test(static_cast<size_t>(label)); }
  std::vector<int> labels(int64_t image) const;         // the values present, ascending (255 included)
  std::vector<int64_t> images_with(int label) const;   // indices of the images containing `label`
  // A sample that failed to read under skip_bad: it contains nothing and should not be used.
  bool bad(int64_t image) const { return bad_.at(static_cast<size_t>(image)) != 0; }

  void set(int64_t image, const std::bitset<256>& labels) { present_.at(static_cast<size_t>(image)) = labels; }
  void set_bad(int64_t image) { bad_.at(static_cast<size_t>(image)) = 1; }
  const std::bitset<256>& present(int64_t image) const { return present_.at(static_cast<size_t>(image)); }
  bool operator==(const LabelIndex&) const = default;

 private:
  std::vector<std::bitset<256>> present_;
  std::vector<uint8_t> bad_;
};

// Scans every label map (decoded, validated and mapped as the loader reads them) on `threads`
// threads (0 = all). A sample that fails to read throws (the lowest failing index, whatever the
// thread count), or with the dataset's skip_bad is logged and marked bad.
LabelIndex build_label_index(const Dataset& dataset, int threads = 0);

// The cached index, rebuilt and rewritten when the cache is missing or does not match the data.
// `rebuilt` (optional) tells whether a scan happened.
LabelIndex load_label_index(const Dataset& dataset, int threads = 0, bool* rebuilt = nullptr);
std::string label_index_cache_path(const Dataset& dataset);

}  // namespace strata::data
