// Dataset readers for VOC, ADE20K and Cityscapes. Layouts and label conventions are in dataset.h;
// the Cityscapes id table is cityscapesscripts' labels.py (trainId of each labelId, 255 for the
// classes not used in evaluation).
#include "data/dataset.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "data/coco.h"
#include "data/parallel.h"
#include "engine/atomic_file.h"
#include "engine/error.h"
#include "engine/json.h"

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
    case DatasetKind::coco: return "coco";
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

const std::vector<std::string>& coco_class_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out = {"background"};
    out.insert(out.end(), coco_category_names().begin(), coco_category_names().end());
    return out;
  }();
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
    case DatasetKind::coco:
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

namespace {

constexpr const char* kCocoLabelsFormat = "strata-coco-labels 1";

bool newer_than(const fs::path& file, fs::file_time_type time) {
  std::error_code ec;
  const fs::file_time_type t = fs::last_write_time(file, ec);
  return !ec && t > time;
}

struct CocoListing {
  std::vector<std::string> class_names;  // background first
  std::vector<std::string> file_names;   // sorted
};

// The listing written with the label maps, when it and every label map are newer than `annotations`.
bool read_coco_listing(const fs::path& listing, const fs::path& label_dir, fs::file_time_type annotations,
                       CocoListing& out) {
  if (!newer_than(listing, annotations)) return false;
  try {
    json::Value v = json::parse(read_file_bytes(listing.string()));
    if (v.at("format").as_string() != kCocoLabelsFormat) return false;
    CocoListing read;
    for (const json::Value& name : v.at("classes").as_array()) read.class_names.push_back(name.as_string());
    for (const json::Value& name : v.at("images").as_array()) {
      read.file_names.push_back(name.as_string());
      if (!newer_than(label_dir / (fs::path(name.as_string()).stem().string() + ".png"), annotations)) return false;
    }
    if (read.class_names.size() < 2 || read.file_names.empty()) return false;
    out = std::move(read);
    return true;
  } catch (const Error&) {
    return false;  // a damaged listing: rebuild it
  }
}

// Reads the annotations, writes every missing or stale label map and the listing.
CocoListing write_coco_labels(const fs::path& annotations_file, const fs::path& label_dir, const fs::path& listing,
                              fs::file_time_type annotations, int threads) {
  CocoAnnotations coco = read_coco_annotations(annotations_file.string());
  std::vector<size_t> order(coco.images.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return coco.images[a].file_name < coco.images[b].file_name; });
  std::error_code ec;
  fs::create_directories(label_dir, ec);
  check(!ec, "COCO: cannot create the label folder '", label_dir.string(), "': ", ec.message());
  run_parallel(static_cast<int64_t>(order.size()), threads, [&](int64_t k) {
    const size_t i = order[static_cast<size_t>(k)];
    const fs::path label = label_dir / (fs::path(coco.images[i].file_name).stem().string() + ".png");
    if (!newer_than(label, annotations)) {
      write_file_atomically(label.string(), encode_png(coco_label_map(coco, static_cast<int64_t>(i))));
    }
  });
  CocoListing out;
  out.class_names.push_back("background");
  for (const CocoCategory& c : coco.categories) out.class_names.push_back(c.name);
  json::Array classes, images;
  for (const std::string& name : out.class_names) classes.emplace_back(name);
  for (size_t i : order) {
    out.file_names.push_back(coco.images[i].file_name);
    images.emplace_back(coco.images[i].file_name);
  }
  json::Object root = {{"format", kCocoLabelsFormat},
                       {"annotations", annotations_file.string()},
                       {"classes", std::move(classes)},
                       {"images", std::move(images)}};
  write_file_atomically(listing.string(), json::dump(json::Value(std::move(root))) + "\n");
  return out;
}

}  // namespace

Dataset Dataset::coco(const std::string& root, const std::string& split, const DatasetOptions& options, int threads) {
  Dataset d;
  d.root_ = root;
  d.skip_bad_ = options.skip_bad;
  std::string folder = split;
  if (folder == "train" || folder == "val") folder += "2017";
  d.split_ = folder;
  fs::path base(root);
  require_dir(base, "COCO");
  const fs::path images = base / folder;
  require_dir(images, "COCO");
  const fs::path annotations_file = base / "annotations" / ("instances_" + folder + ".json");
  check(fs::is_regular_file(annotations_file), "COCO split '", folder, "': annotation file '",
        annotations_file.string(), "' does not exist");
  d.source_ = relative_to(annotations_file, base);
  const fs::file_time_type annotations = fs::last_write_time(annotations_file);
  const fs::path label_dir = base / "strata_labels" / folder;
  const fs::path listing = base / "strata_labels" / (folder + ".json");

  CocoListing found;
  if (!read_coco_listing(listing, label_dir, annotations, found)) {
    found = write_coco_labels(annotations_file, label_dir, listing, annotations, threads);
  }
  d.class_names_ = std::move(found.class_names);
  check(d.num_classes() <= 255, "COCO '", annotations_file.string(), "': ", d.num_classes() - 1,
        " categories, at most 254 fit the 8-bit label maps");
  d.set_labels(DatasetKind::coco, d.num_classes());
  for (const std::string& name : found.file_names) {
    Sample s;
    s.stem = fs::path(name).stem().string();
    s.image = (images / name).string();
    s.label = (label_dir / (s.stem + ".png")).string();
    s.origin = cat(d.source_, " (", name, ")");
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
  if (kind == "coco") return coco(root, split, options);
  throw Error(cat("unknown dataset '", kind, "': expected voc, ade20k, cityscapes or coco"));
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
