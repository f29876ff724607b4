// Dataset readers for VOC, ADE20K and Cityscapes. Layouts and label conventions are in dataset.h;
// the Cityscapes id table is cityscapesscripts' labels.py (trainId of each labelId, 255 for the
// classes not used in evaluation).
#include "data/dataset.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "engine/error.h"

namespace strata::data {

namespace fs = std::filesystem;

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r\n"), e = s.find_last_not_of(" \t\r\n");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

std::string relative_to(const fs::path& path, const fs::path& root) {
  std::error_code ec;
  fs::path rel = fs::relative(path, root, ec);
  return ec || rel.empty() ? path.string() : rel.generic_string();
}

std::string read_text(const fs::path& file, const std::string& what) {
  std::ifstream in(file);
  check(in.good(), "cannot open ", what, "'", file.string(), "'");
  std::ostringstream text;
  text << in.rdbuf();
  check(!in.bad(), "error reading ", what, "'", file.string(), "'");
  return text.str();
}

void require_dir(const fs::path& dir, const std::string& what) {
  check(fs::is_directory(dir), what, ": folder '", dir.string(), "' does not exist");
}

}  // namespace

std::vector<std::string> parse_class_names(const std::string& text, const std::string& name) {
  std::istringstream in(text);
  std::vector<std::string> names;
  std::string line;
  while (std::getline(in, line)) {
    line = trim(line);
    if (!line.empty()) names.push_back(line);
  }
  check(names.size() >= 2 && names.size() <= 255, "'", name,
        "': expected 2..255 class names (background first, one per line), found ", names.size());
  return names;
}

std::vector<Sample> parse_voc_list(const std::string& text, const std::string& root, const std::string& label_dir,
                                   const std::string& list_name) {
  const fs::path base(root);
  std::istringstream in(text);
  std::vector<Sample> samples;
  std::string line;
  for (int line_no = 1; std::getline(in, line); ++line_no) {
    std::istringstream fields(line);
    std::vector<std::string> cols;
    for (std::string f; fields >> f;) cols.push_back(f);
    if (cols.empty()) continue;
    std::string origin = cat(list_name, ":", line_no);
    Sample s;
    s.origin = origin;
    if (cols.size() == 2) {
      // DeepLab form: paths relative to the root, written with a leading '/'.
      auto resolve = [&](const std::string& p) { return (base / fs::path(p).relative_path()).string(); };
      s.image = resolve(cols[0]);
      s.label = resolve(cols[1]);
    } else if (cols.size() == 1) {
      s.image = (base / "JPEGImages" / (cols[0] + ".jpg")).string();
      s.label = (base / label_dir / (cols[0] + ".png")).string();
    } else {
      throw Error(cat(origin, ": expected '<image> <label>' (DeepLab list) or '<id>' (ImageSets), got ", cols.size(),
                      " fields: '", trim(line), "'"));
    }
    s.stem = fs::path(s.image).stem().string();
    samples.push_back(std::move(s));
  }
  return samples;
}

const char* dataset_kind_name(DatasetKind kind) {
  switch (kind) {
    case DatasetKind::voc: return "voc";
    case DatasetKind::ade20k: return "ade20k";
    case DatasetKind::cityscapes: return "cityscapes";
  }
  return "?";
}

const std::vector<std::string>& voc_class_names() {
  static const std::vector<std::string> names = {
      "background", "aeroplane", "bicycle", "bird",  "boat",        "bottle", "bus",
      "car",        "cat",       "chair",   "cow",   "diningtable", "dog",    "horse",
      "motorbike",  "person",    "pottedplant", "sheep", "sofa",    "train",  "tvmonitor"};
  return names;
}

const std::vector<std::string>& ade20k_class_names() {
  // objectInfo150 order (SceneParsing development kit), short names; 0 is the unlabelled "other".
  static const std::vector<std::string> names = {
      "other", "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed", "windowpane", "grass",
      "cabinet", "sidewalk", "person", "earth", "door", "table", "mountain", "plant", "curtain", "chair", "car",
      "water", "painting", "sofa", "shelf", "house", "sea", "mirror", "rug", "field", "armchair", "seat", "fence",
      "desk", "rock", "wardrobe", "lamp", "bathtub", "railing", "cushion", "base", "box", "column", "signboard",
      "chest of drawers", "counter", "sand", "sink", "skyscraper", "fireplace", "refrigerator", "grandstand",
      "path", "stairs", "runway", "case", "pool table", "pillow", "screen door", "stairway", "river", "bridge",
      "bookcase", "blind", "coffee table", "toilet", "flower", "book", "hill", "bench", "countertop", "stove",
      "palm", "kitchen island", "computer", "swivel chair", "boat", "bar", "arcade machine", "hovel", "bus",
      "towel", "light", "truck", "tower", "chandelier", "awning", "streetlight", "booth", "television receiver",
      "airplane", "dirt track", "apparel", "pole", "land", "bannister", "escalator", "ottoman", "bottle",
      "buffet", "poster", "stage", "van", "ship", "fountain", "conveyer belt", "canopy", "washer", "plaything",
      "swimming pool", "stool", "barrel", "basket", "waterfall", "tent", "bag", "minibike", "cradle", "oven",
      "ball", "food", "step", "tank", "trade name", "microwave", "pot", "animal", "bicycle", "lake",
      "dishwasher", "screen", "blanket", "sculpture", "hood", "sconce", "vase", "traffic light", "tray",
      "ashcan", "fan", "pier", "crt screen", "plate", "monitor", "bulletin board", "shower", "radiator",
      "glass", "clock", "flag"};
  return names;
}

const std::vector<std::string>& cityscapes_class_names() {
  static const std::vector<std::string> names = {
      "road",       "sidewalk", "building", "wall",  "fence", "pole",  "traffic light",
      "traffic sign", "vegetation", "terrain", "sky", "person", "rider", "car",
      "truck",      "bus",      "train",    "motorcycle", "bicycle"};
  return names;
}

const std::array<uint8_t, 256>& cityscapes_label_to_train_id() {
  static const std::array<uint8_t, 256> table = [] {
    std::array<uint8_t, 256> t;
    t.fill(255);
    // labelId -> trainId: road 7, sidewalk 8, building 11, wall 12, fence 13, pole 17,
    // traffic light 19, traffic sign 20, vegetation 21, terrain 22, sky 23, person 24, rider 25,
    // car 26, truck 27, bus 28, train 31, motorcycle 32, bicycle 33.
    const int ids[19] = {7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33};
    for (int train_id = 0; train_id < 19; ++train_id) t[static_cast<size_t>(ids[train_id])] = static_cast<uint8_t>(train_id);
    return t;
  }();
  return table;
}

void Dataset::set_labels(DatasetKind kind, int num_classes) {
  kind_ = kind;
  valid_raw_.fill(false);
  for (int v = 0; v < 256; ++v) label_map_[static_cast<size_t>(v)] = static_cast<uint8_t>(v);
  switch (kind) {
    case DatasetKind::voc:
      for (int v = 0; v < num_classes; ++v) valid_raw_[static_cast<size_t>(v)] = true;
      valid_raw_[255] = true;
      label_range_ = cat("0..", num_classes - 1, " and 255");
      break;
    case DatasetKind::ade20k:
      for (int v = 0; v < num_classes; ++v) valid_raw_[static_cast<size_t>(v)] = true;
      label_range_ = cat("0..", num_classes - 1);
      break;
    case DatasetKind::cityscapes:
      for (int v = 0; v <= 33; ++v) valid_raw_[static_cast<size_t>(v)] = true;
      label_map_ = cityscapes_label_to_train_id();
      label_range_ = "label ids 0..33";
      break;
  }
}

void Dataset::check_files() {
  check(!samples_.empty(), dataset_kind_name(kind_), " '", root_, "' split '", split_, "': no samples in ", source_);
  for (const Sample& s : samples_) {
    for (const std::string* path : {&s.image, &s.label}) {
      if (fs::is_regular_file(*path)) continue;
      std::string message = cat(s.origin, ": '", *path, "' does not exist");
      if (!skip_bad_) throw Error(message);
      std::cerr << "strata: warning: " << message << " (skip_bad: the sample will be skipped)\n";
    }
  }
}

Dataset Dataset::voc(const std::string& root, const std::string& split, const DatasetOptions& options) {
  Dataset d;
  d.root_ = root;
  d.split_ = split;
  d.skip_bad_ = options.skip_bad;
  fs::path base(root);
  require_dir(base, "VOC");
  fs::path names_file = base / "class_names.txt";
  d.class_names_ =
      fs::exists(names_file) ? parse_class_names(read_text(names_file, ""), names_file.string()) : voc_class_names();
  d.set_labels(DatasetKind::voc, d.num_classes());

  fs::path list;
  if (!options.list_file.empty()) {
    list = fs::path(options.list_file).is_absolute() ? fs::path(options.list_file) : base / options.list_file;
    check(fs::is_regular_file(list), "VOC list file '", list.string(), "' does not exist");
  } else {
    std::vector<fs::path> candidates = {base / "splits" / (split + ".txt"), base / "list" / (split + ".txt"),
                                        base / "ImageSets" / "Segmentation" / (split + ".txt")};
    for (const fs::path& c : candidates) {
      if (fs::is_regular_file(c)) {
        list = c;
        break;
      }
    }
    if (list.empty()) {
      std::string tried;
      for (const fs::path& c : candidates) tried += "\n  " + c.string();
      throw Error(cat("VOC split '", split, "': no list file under '", root, "'; tried:", tried));
    }
  }
  d.source_ = relative_to(list, base);

  std::string label_dir = options.label_dir;
  if (label_dir.empty()) label_dir = fs::is_directory(base / "SegmentationClassAug") ? "SegmentationClassAug" : "SegmentationClass";

  d.samples_ = parse_voc_list(read_text(list, "VOC list file "), root, label_dir, list.string());
  d.check_files();
  return d;
}

Dataset Dataset::ade20k(const std::string& root, const std::string& split, const DatasetOptions& options) {
  Dataset d;
  d.root_ = root;
  d.skip_bad_ = options.skip_bad;
  std::string folder = split;
  if (folder == "train") folder = "training";
  if (folder == "val") folder = "validation";
  check(folder == "training" || folder == "validation", "ADE20K split must be 'training' or 'validation', got '",
        split, "'");
  d.split_ = folder;
  fs::path base(root);
  require_dir(base, "ADE20K");
  if (fs::is_directory(base / "ADEChallengeData2016")) base /= "ADEChallengeData2016";
  fs::path images = base / "images" / folder, annotations = base / "annotations" / folder;
  require_dir(images, "ADE20K");
  require_dir(annotations, "ADE20K");
  d.class_names_ = ade20k_class_names();
  d.set_labels(DatasetKind::ade20k, d.num_classes());
  d.source_ = relative_to(images, fs::path(root));

  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(images)) {
    if (entry.is_regular_file() && entry.path().extension() == ".jpg") names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());  // the references' sorted(os.listdir(...)) order
  for (const std::string& name : names) {
    Sample s;
    s.stem = fs::path(name).stem().string();
    s.image = (images / name).string();
    s.label = (annotations / (s.stem + ".png")).string();
    s.origin = cat("ADE20K ", images.string());
    d.samples_.push_back(std::move(s));
  }
  d.check_files();
  return d;
}

Dataset Dataset::cityscapes(const std::string& root, const std::string& split, const DatasetOptions& options) {
  Dataset d;
  d.root_ = root;
  d.split_ = split;
  d.skip_bad_ = options.skip_bad;
  fs::path base(root);
  fs::path images = base / "leftImg8bit" / split, labels = base / "gtFine" / split;
  require_dir(images, "Cityscapes");
  require_dir(labels, "Cityscapes");
  d.class_names_ = cityscapes_class_names();
  d.set_labels(DatasetKind::cityscapes, d.num_classes());
  d.source_ = relative_to(images, base);

  const std::string suffix = "_leftImg8bit.png";
  std::vector<std::pair<std::string, std::string>> found;  // (city, file)
  for (const auto& city : fs::directory_iterator(images)) {
    if (!city.is_directory()) continue;
    for (const auto& entry : fs::directory_iterator(city.path())) {
      std::string name = entry.path().filename().string();
      if (entry.is_regular_file() && ends_with(name, suffix)) found.emplace_back(city.path().filename().string(), name);
    }
  }
  std::sort(found.begin(), found.end());
  for (const auto& [city, name] : found) {
    Sample s;
    std::string prefix = name.substr(0, name.size() - suffix.size());
    s.stem = prefix;
    s.image = (images / city / name).string();
    s.label = (labels / city / (prefix + "_gtFine_labelIds.png")).string();
    s.origin = cat("Cityscapes ", (images / city).string());
    d.samples_.push_back(std::move(s));
  }
  d.check_files();
  return d;
}

Dataset Dataset::open(const std::string& kind, const std::string& root, const std::string& split,
                      const DatasetOptions& options) {
  if (kind == "voc") return voc(root, split, options);
  if (kind == "ade20k" || kind == "ade") return ade20k(root, split, options);
  if (kind == "cityscapes") return cityscapes(root, split, options);
  throw Error(cat("unknown dataset '", kind, "': expected voc, ade20k or cityscapes"));
}

const Sample& Dataset::sample(int64_t index) const {
  check(index >= 0 && index < size(), "dataset '", root_, "' (", split_, "): sample index ", index,
        " out of range [0, ", size(), ")");
  return samples_[static_cast<size_t>(index)];
}

Image Dataset::map_label(Image raw, const Sample& s) const {
  for (int y = 0; y < raw.height; ++y) {
    uint8_t* row = raw.row(y);
    for (int x = 0; x < raw.width; ++x) {
      uint8_t v = row[x];
      if (!valid_raw_[v]) {
        throw Error(cat("label map '", s.label, "' (", s.origin, "): value ", int{v}, " at pixel (x=", x, ", y=", y,
                        ") is outside the ", dataset_kind_name(kind_), " range ", label_range_));
      }
      row[x] = label_map_[v];
    }
  }
  return raw;
}

Image Dataset::read_label(int64_t index) const {
  const Sample& s = sample(index);
  return map_label(data::read_label(s.label), s);
}

Dataset::Item Dataset::read(int64_t index) const {
  const Sample& s = sample(index);
  Item item;
  item.image = read_image(s.image);
  item.label = read_label(index);
  check(item.image.height == item.label.height && item.image.width == item.label.width, "label map '", s.label,
        "' is ", item.label.width, "x", item.label.height, " but image '", s.image, "' is ", item.image.width, "x",
        item.image.height, " (width x height); labels must have the image's size");
  return item;
}

}  // namespace strata::data
