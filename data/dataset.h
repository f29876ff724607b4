// Segmentation datasets on disk: Pascal VOC 2012 (+ SBD train_aug), ADE20K (SceneParsing) and
// Cityscapes (gtFine), read from a root folder in their published layouts (SPEC-continual.md
// §2.1). The generated dataset (data/generate.h) is written in the VOC layout and read by the VOC
// reader, so tests exercise the same code as real runs.
//
//   VOC         root/splits/<split>.txt (MiB's DeepLab lists; also root/list/<split>.txt) with lines
//               "/JPEGImages/<id>.jpg /SegmentationClassAug/<id>.png", or the plain form
//               root/ImageSets/Segmentation/<split>.txt with one <id> per line (images
//               JPEGImages/<id>.jpg, labels SegmentationClassAug/<id>.png when that folder exists,
//               else SegmentationClass/<id>.png, palette PNGs decoded through the VOC colour map).
//               Labels 0..20 and 255 (void); a root/class_names.txt (one name per line, background
//               first) replaces the 21 VOC names and sets the number of classes.
//   ADE20K      root (or root/ADEChallengeData2016)/images/<split>/*.jpg in sorted name order, labels
//               annotations/<split>/<stem>.png; split "training" or "validation" ("train"/"val"
//               accepted). Labels 0 (other) .. 150.
//   Cityscapes  root/leftImg8bit/<split>/<city>/<x>_leftImg8bit.png sorted by city and name, labels
//               root/gtFine/<split>/<city>/<x>_gtFine_labelIds.png; the 34 label ids are mapped to
//               the 19 train ids (others 255).
//   COCO        root/<split>/<file_name> (train2017, val2017; "train"/"val" accepted) with instances in
//               root/annotations/instances_<split>.json, images in sorted file name order. The
//               instance masks are rasterised once into semantic label maps (data/coco.h: the 80
//               categories -> 1..80, background 0, crowd 255) cached as 8-bit PNGs
//               root/strata_labels/<split>/<stem>.png with root/strata_labels/<split>.json (class
//               names and image list), written atomically and reused while newer than the
//               annotation file; a newer annotation file rewrites the stale ones.
//
// The sample order is the list order (VOC) or the sorted order (ADE20K, Cityscapes): the label
// index and any subset of indices refer to it. Opening checks that every listed file exists;
// reading a sample decodes and validates it (label size equal to the image size, every label value
// within the dataset's range) and throws strata::Error naming the file (and the list line) and what
// was expected. With `skip_bad`, opening logs missing files to stderr and keeps the entries; the
// loader and the label index then log and skip samples that fail to read (the label index's cache
// records what is wrong with a file, and each load decides by its dataset's skip_bad again:
// data/label_index.h).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "data/image.h"

namespace strata::data {

struct Sample {
  std::string image;   // full path
  std::string label;   // full path
  std::string stem;    // file name without extension (the VOC id)
  std::string origin;  // where it was listed, for messages: "splits/val.txt:12" or the folder
};

struct DatasetOptions {
  bool skip_bad = false;
  std::string list_file;  // VOC only: a list file (absolute, or relative to the root) instead of the split's
  std::string label_dir;  // VOC plain-id lists only: the label folder under the root
};

enum class DatasetKind { voc, ade20k, cityscapes, coco };
const char* dataset_kind_name(DatasetKind kind);  // "voc", "ade20k", "cityscapes", "coco"

class Dataset {
 public:
  static Dataset voc(const std::string& root, const std::string& split, const DatasetOptions& options = {});
  static Dataset ade20k(const std::string& root, const std::string& split, const DatasetOptions& options = {});
  static Dataset cityscapes(const std::string& root, const std::string& split, const DatasetOptions& options = {});
  // `threads` rasterise missing label maps (0: all hardware threads).
  static Dataset coco(const std::string& root, const std::string& split, const DatasetOptions& options = {},
                      int threads = 0);
  // kind: "voc", "ade20k" (or "ade"), "cityscapes", "coco".
  static Dataset open(const std::string& kind, const std::string& root, const std::string& split,
                      const DatasetOptions& options = {});

  DatasetKind kind() const { return kind_; }
  const std::string& root() const { return root_; }
  const std::string& split() const { return split_; }
  // Identifies the sample list (the list file relative to the root, or the folder scanned).
  const std::string& source() const { return source_; }
  bool skip_bad() const { return skip_bad_; }

  // class_names()[v] names label value v; 255 is void/ignore and has no name.
  const std::vector<std::string>& class_names() const { return class_names_; }
  int num_classes() const { return static_cast<int>(class_names_.size()); }

  int64_t size() const { return static_cast<int64_t>(samples_.size()); }
  const Sample& sample(int64_t index) const;

  struct Item {
    Image image;  // (H, W, 3) RGB
    Image label;  // (H, W, 1), dataset label values (Cityscapes: train ids)
  };
  Item read(int64_t index) const;
  Image read_label(int64_t index) const;  // the label alone, validated and mapped

  // A stored label value v maps to label_map()[v]; valid_raw_label()[v] says whether v may occur.
  const std::array<uint8_t, 256>& label_map() const { return label_map_; }
  const std::array<bool, 256>& valid_raw_label() const { return valid_raw_; }
  // A decoded label map of sample `s` checked against valid_raw_label() and mapped through
  // label_map(); a value outside the dataset's range throws naming the file, the pixel and the range.
  Image map_label(Image raw, const Sample& s) const;

 private:
  Dataset() = default;
  void set_labels(DatasetKind kind, int num_classes);
  void check_files();

  DatasetKind kind_ = DatasetKind::voc;
  std::string root_, split_, source_;
  bool skip_bad_ = false;
  std::vector<std::string> class_names_;
  std::vector<Sample> samples_;
  std::array<uint8_t, 256> label_map_{};
  std::array<bool, 256> valid_raw_{};
  std::string label_range_;
};

// The text of a VOC list file as samples, in line order: each non-blank line is "<image> <label>"
// (DeepLab form, paths relative to `root`, written with a leading '/') or "<id>" (ImageSets form:
// root/JPEGImages/<id>.jpg, root/<label_dir>/<id>.png). `list_name` names the file in each sample's
// origin ("<list_name>:<line>"); a line of any other shape throws naming it. Files are not checked.
std::vector<Sample> parse_voc_list(const std::string& text, const std::string& root, const std::string& label_dir,
                                   const std::string& list_name);
// The text of a class_names.txt: one name per line, background first, blank lines skipped; fewer
// than 2 or more than 255 names throw naming the file (`name`).
std::vector<std::string> parse_class_names(const std::string& text, const std::string& name);

// The published class names (index = label value).
const std::vector<std::string>& voc_class_names();         // 21: background, aeroplane, ..., tvmonitor
const std::vector<std::string>& ade20k_class_names();      // 151: other, wall, building, ..., flag
const std::vector<std::string>& cityscapes_class_names();  // 19 train ids: road, ..., bicycle
const std::vector<std::string>& coco_class_names();        // 81: background, person, ..., toothbrush
// Cityscapes label id (0..33) -> train id (0..18) or 255.
const std::array<uint8_t, 256>& cityscapes_label_to_train_id();

}  // namespace strata::data
