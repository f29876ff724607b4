// COCO annotations: pycocotools' RLE semantics (maskApi.c, read for its rules; see coco.h), the
// streaming reader and the label maps.
#include "data/coco.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "engine/error.h"

namespace strata::data {

namespace {

// rleFrPoly works on the vertices scaled by 5 and rounded by (int)(5 v + 0.5).
constexpr double kPolygonScale = 5.0;
// Coordinates are scaled into int; far outside any image they would overflow it.
constexpr double kMaxCoordinate = 1e8;

int32_t scale_coordinate(double v) { return static_cast<int32_t>(kPolygonScale * v + 0.5); }

// rleFrPoly on vertices already scaled: the boundary walked densely (one point per step of the
// longer axis), its crossings of pixel-column centres kept as (column, first row below the
// boundary), sorted in column-major order, and the differences between them made runs.
RleCounts rle_from_scaled_polygon(const int32_t* xy, size_t k, int height, int width) {
  std::vector<int64_t> x(k + 1), y(k + 1);
  for (size_t j = 0; j < k; ++j) {
    x[j] = xy[2 * j];
    y[j] = xy[2 * j + 1];
  }
  if (k > 0) {
    x[k] = x[0];
    y[k] = y[0];
  }
  std::vector<int64_t> u, v;
  for (size_t j = 0; j < k; ++j) {
    int64_t xs = x[j], xe = x[j + 1], ys = y[j], ye = y[j + 1];
    const int64_t dx = std::llabs(xe - xs), dy = std::llabs(ys - ye);
    const bool flip = (dx >= dy && xs > xe) || (dx < dy && ys > ye);
    if (flip) {
      std::swap(xs, xe);
      std::swap(ys, ye);
    }
    const double s = dx >= dy ? static_cast<double>(ye - ys) / static_cast<double>(dx)
                              : static_cast<double>(xe - xs) / static_cast<double>(dy);
    if (dx >= dy) {
      for (int64_t d = 0; d <= dx; ++d) {
        const int64_t t = flip ? dx - d : d;
        u.push_back(t + xs);
        v.push_back(static_cast<int64_t>(static_cast<double>(ys) + s * static_cast<double>(t) + .5));
      }
    } else {
      for (int64_t d = 0; d <= dy; ++d) {
        const int64_t t = flip ? dy - d : d;
        v.push_back(t + ys);
        u.push_back(static_cast<int64_t>(static_cast<double>(xs) + s * static_cast<double>(t) + .5));
      }
    }
  }
  std::vector<uint32_t> a;
  for (size_t j = 1; j < u.size(); ++j) {
    if (u[j] == u[j - 1]) continue;
    double xd = static_cast<double>(u[j] < u[j - 1] ? u[j] : u[j] - 1);
    xd = (xd + .5) / kPolygonScale - .5;
    if (std::floor(xd) != xd || xd < 0 || xd > width - 1) continue;
    double yd = static_cast<double>(v[j] < v[j - 1] ? v[j] : v[j - 1]);
    yd = (yd + .5) / kPolygonScale - .5;
    yd = std::ceil(std::clamp(yd, 0.0, static_cast<double>(height)));
    a.push_back(static_cast<uint32_t>(static_cast<int64_t>(xd) * height + static_cast<int64_t>(yd)));
  }
  a.push_back(static_cast<uint32_t>(int64_t{height} * width));
  std::sort(a.begin(), a.end());
  uint32_t previous = 0;
  for (uint32_t& value : a) {
    const uint32_t t = value;
    value -= previous;
    previous = t;
  }
  // Two crossings at one place cancel: the empty run between them joins its neighbours.
  RleCounts counts;
  size_t j = 0;
  counts.push_back(a[j++]);
  while (j < a.size()) {
    if (a[j] > 0) {
      counts.push_back(a[j++]);
    } else if (++j < a.size()) {
      counts.back() += a[j++];
    }
  }
  return counts;
}

// Sets mask[y * width + x] |= 1 over the runs of ones.
void paint_runs(const RleCounts& counts, int height, int width, std::vector<uint8_t>& mask, const std::string& what) {
  const int64_t total = int64_t{height} * width;
  int64_t position = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    const int64_t end = position + counts[i];
    check(end <= total, what, ": RLE counts sum past ", height, "x", width, " = ", total, " pixels");
    if (i % 2 == 1) {
      for (int64_t p = position; p < end; ++p) mask[static_cast<size_t>((p % height) * width + p / height)] = 1;
    }
    position = end;
  }
  check(position == total, what, ": RLE counts sum to ", position, " but the mask has ", height, "x", width, " = ",
        total, " pixels");
}

}  // namespace

RleCounts rle_from_polygon(std::span<const double> xy, int height, int width) {
  std::vector<int32_t> scaled;
  for (double value : xy) {
    check(std::isfinite(value) && std::fabs(value) < kMaxCoordinate, "polygon coordinate ", value,
          " is not a finite pixel coordinate");
    scaled.push_back(scale_coordinate(value));
  }
  return rle_from_scaled_polygon(scaled.data(), xy.size() / 2, height, width);
}

std::string rle_to_string(const RleCounts& counts) {
  std::string text;
  for (size_t i = 0; i < counts.size(); ++i) {
    int64_t x = counts[i];
    if (i > 2) x -= counts[i - 2];
    for (bool more = true; more;) {
      char c = static_cast<char>(x & 0x1f);
      x >>= 5;  // arithmetic: a negative difference ends in ...11111
      more = (c & 0x10) ? x != -1 : x != 0;
      if (more) c |= 0x20;
      text.push_back(static_cast<char>(c + 48));
    }
  }
  return text;
}

RleCounts rle_from_string(const std::string& text, const std::string& what) {
  RleCounts counts;
  size_t p = 0;
  while (p < text.size()) {
    int64_t x = 0;
    int k = 0;
    for (bool more = true; more; ++p, ++k) {
      check(p < text.size(), what, ": the RLE string ends inside a count");
      const int c = static_cast<unsigned char>(text[p]) - 48;
      check(c >= 0 && c < 64, what, ": character '", text[p], "' at ", p, " of the RLE string is outside '0'..'o'");
      check(k < 7, what, ": a count of the RLE string is longer than 7 characters");
      x |= static_cast<int64_t>(c & 0x1f) << (5 * k);
      more = (c & 0x20) != 0;
      if (!more && (c & 0x10)) x |= int64_t{-1} << (5 * (k + 1));
    }
    if (counts.size() > 2) x += counts[counts.size() - 2];
    check(x >= 0 && x <= std::numeric_limits<uint32_t>::max(), what, ": the RLE string decodes to count ", x);
    counts.push_back(static_cast<uint32_t>(x));
  }
  return counts;
}

RleCounts rle_encode(const std::vector<uint8_t>& mask, int height, int width) {
  check(mask.size() == static_cast<size_t>(height) * width, "rle_encode: mask of ", mask.size(), " bytes, expected ",
        height, "x", width);
  RleCounts counts;
  uint8_t previous = 0;
  uint32_t run = 0;
  for (int x = 0; x < width; ++x) {
    for (int y = 0; y < height; ++y) {
      const uint8_t value = mask[static_cast<size_t>(y) * width + x] ? 1 : 0;
      if (value != previous) {
        counts.push_back(run);
        run = 0;
        previous = value;
      }
      ++run;
    }
  }
  counts.push_back(run);
  return counts;
}

std::vector<uint8_t> rle_decode(const RleCounts& counts, int height, int width, const std::string& what) {
  std::vector<uint8_t> mask(static_cast<size_t>(height) * width, 0);
  paint_runs(counts, height, width, mask, what);
  return mask;
}

// ---- the streaming reader ------------------------------------------------------------------------

namespace {

// Where in the document an event happens; one frame per open container.
enum class Where : uint8_t {
  skip,
  root,
  images,
  image,
  annotations,
  annotation,
  polygons,
  polygon,
  rle,
  rle_counts,
  rle_size,
  categories,
  category
};
enum class Field : uint8_t {
  other,
  images,
  annotations,
  categories,
  id,
  image_id,
  category_id,
  iscrowd,
  segmentation,
  counts,
  size,
  file_name,
  height,
  width,
  name
};

Field field_of(const std::string& key) {
  static const std::unordered_map<std::string, Field> fields = {
      {"images", Field::images},         {"annotations", Field::annotations},
      {"categories", Field::categories}, {"id", Field::id},
      {"image_id", Field::image_id},     {"category_id", Field::category_id},
      {"iscrowd", Field::iscrowd},       {"segmentation", Field::segmentation},
      {"counts", Field::counts},         {"size", Field::size},
      {"file_name", Field::file_name},   {"height", Field::height},
      {"width", Field::width},           {"name", Field::name}};
  auto it = fields.find(key);
  return it == fields.end() ? Field::other : it->second;
}

class CocoSax {
 public:
  explicit CocoSax(CocoAnnotations& out) : out_(out) {}

  bool null() { return scalar_shape_error("null"); }
  bool boolean(bool b) {
    if (top() == Where::annotation && field() == Field::iscrowd) {
      annotation_.crowd = b;
      return true;
    }
    return scalar_shape_error("a boolean");
  }
  bool number_integer(int64_t v) { return number(static_cast<double>(v), true, v); }
  bool number_unsigned(uint64_t v) {
    const bool fits = v <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
    return number(static_cast<double>(v), fits, fits ? static_cast<int64_t>(v) : 0);
  }
  bool number_float(double v, const std::string&) { return number(v, false, 0); }
  bool string(std::string& s) {
    switch (top()) {
      case Where::image:
        if (field() == Field::file_name) image_.file_name = std::move(s);
        return true;
      case Where::category:
        if (field() == Field::name) category_.name = std::move(s);
        return true;
      case Where::rle:
        if (field() == Field::counts) {
          annotation_.kind = SegmentationKind::rle_string;
          annotation_.rle = std::move(s);
          has_counts_ = true;
          return true;
        }
        if (field() == Field::size) shape_error("its RLE size is a string");
        return true;
      default: return scalar_shape_error("a string");
    }
  }
  bool binary(nlohmann::json::binary_t&) { return false; }

  bool key(std::string& k) {
    frames_.back().field = frames_.size() <= 3 || frames_.back().where == Where::rle ? field_of(k) : Field::other;
    return true;
  }
  bool start_object(size_t) { return open(false); }
  bool start_array(size_t) { return open(true); }
  bool end_object() { return close(); }
  bool end_array() { return close(); }

  bool parse_error(size_t position, const std::string&, const nlohmann::json::exception& e) {
    std::string what = e.what();
    if (const size_t at = what.find("parse error"); at != std::string::npos) what = what.substr(at);
    throw Error(cat(out_.file, ": malformed JSON at byte ", position, ": ", what));
  }

  void finish() const {
    check(seen_images_ && seen_annotations_ && seen_categories_, out_.file,
          ": expected the arrays \"images\", \"annotations\" and \"categories\" of a COCO instances file; missing:",
          seen_images_ ? "" : " images", seen_annotations_ ? "" : " annotations",
          seen_categories_ ? "" : " categories");
  }

 private:
  struct Frame {
    Where where;
    Field field = Field::other;  // the current key, in an object
  };

  Where top() const { return frames_.empty() ? Where::skip : frames_.back().where; }
  Field field() const { return frames_.back().field; }

  std::string annotation_name() const {
    return annotation_.id >= 0 ? cat("annotation id ", annotation_.id)
                               : cat("annotation #", out_.annotations.size(), " (no id yet)");
  }
  // Recorded, and thrown when the annotation ends: its id may come after its segmentation.
  void shape_error(const std::string& what) {
    if (shape_error_.empty()) shape_error_ = what;
  }
  bool scalar_shape_error(const char* kind) {
    switch (top()) {
      case Where::annotation:
        if (field() == Field::segmentation) shape_error(cat("its segmentation is ", kind));
        return true;
      case Where::polygons: shape_error(cat("its polygon list holds ", kind, " instead of a polygon")); return true;
      case Where::polygon: shape_error(cat("a polygon holds ", kind, " instead of a coordinate")); return true;
      case Where::rle_counts: shape_error(cat("its RLE counts hold ", kind)); return true;
      case Where::rle_size: shape_error(cat("its RLE size holds ", kind)); return true;
      default: return true;
    }
  }

  bool number(double v, bool integral, int64_t i) {
    switch (top()) {
      case Where::polygon:
        if (!std::isfinite(v) || std::fabs(v) >= kMaxCoordinate) {
          shape_error(cat("a polygon holds the coordinate ", v));
        } else {
          scratch_.push_back(scale_coordinate(v));
        }
        return true;
      case Where::rle_counts:
        if (!integral || i < 0 || i > std::numeric_limits<int32_t>::max()) {
          shape_error(cat("its RLE counts hold ", v, ", not a count"));
        } else {
          scratch_.push_back(static_cast<int32_t>(i));
        }
        return true;
      case Where::rle_size:
        if (!integral || i < 0 || i > std::numeric_limits<int32_t>::max()) shape_error(cat("its RLE size holds ", v));
        rle_size_.push_back(integral ? i : -1);
        return true;
      case Where::image: return image_number(v, integral, i);
      case Where::category:
        if (field() == Field::id) category_.id = integer(v, integral, i, "category id");
        return true;
      case Where::annotation:
        switch (field()) {
          case Field::id: annotation_.id = integer(v, integral, i, "annotation id"); break;
          case Field::image_id:
            annotation_.image_id = integer(v, integral, i, cat(annotation_name(), ": image_id"));
            break;
          case Field::category_id:
            annotation_.category_id = integer(v, integral, i, cat(annotation_name(), ": category_id"));
            break;
          case Field::iscrowd: annotation_.crowd = v != 0; break;
          case Field::segmentation: shape_error("its segmentation is a number"); break;
          default: break;
        }
        return true;
      default: return scalar_shape_error("a number");
    }
  }

  bool image_number(double v, bool integral, int64_t i) {
    const std::string what = cat("image #", out_.images.size());
    switch (field()) {
      case Field::id: image_.id = integer(v, integral, i, cat(what, ": id")); break;
      case Field::height:
        image_.height =
            static_cast<int>(std::clamp<int64_t>(integer(v, integral, i, cat(what, ": height")), -1, 1 << 20));
        break;
      case Field::width:
        image_.width =
            static_cast<int>(std::clamp<int64_t>(integer(v, integral, i, cat(what, ": width")), -1, 1 << 20));
        break;
      default: break;
    }
    return true;
  }

  int64_t integer(double v, bool integral, int64_t i, const std::string& what) const {
    check(integral && i >= 0, out_.file, ": ", what, " must be a non-negative integer, got ", v);
    return i;
  }

  bool open(bool array) {
    const Where parent = top();
    const Field key = frames_.empty() ? Field::other : field();
    Where where = Where::skip;
    if (frames_.empty()) {
      where = array ? Where::skip : Where::root;
    } else if (parent == Where::root && array) {
      if (key == Field::images) where = Where::images, seen_images_ = true;
      if (key == Field::annotations) where = Where::annotations, seen_annotations_ = true;
      if (key == Field::categories) where = Where::categories, seen_categories_ = true;
    } else if (parent == Where::images && !array) {
      where = Where::image;
      image_ = CocoImage{};
    } else if (parent == Where::categories && !array) {
      where = Where::category;
      category_ = CocoCategory{};
    } else if (parent == Where::annotations && !array) {
      where = Where::annotation;
      start_annotation();
    } else if (parent == Where::annotation && key == Field::segmentation) {
      where = array ? Where::polygons : Where::rle;
      annotation_.kind = array ? SegmentationKind::polygons : SegmentationKind::rle_counts;
      has_segmentation_ = true;
    } else if (parent == Where::polygons) {
      if (array) {
        where = Where::polygon;
        polygon_start_ = scratch_.size();
      } else {
        shape_error("its polygon list holds an object instead of a polygon");
      }
    } else if (parent == Where::rle && key == Field::counts && array) {
      where = Where::rle_counts;
      annotation_.kind = SegmentationKind::rle_counts;
      has_counts_ = true;
    } else if (parent == Where::rle && key == Field::size && array) {
      where = Where::rle_size;
    } else if (parent == Where::polygon || parent == Where::rle_counts || parent == Where::rle_size ||
               (parent == Where::rle && (key == Field::counts || key == Field::size))) {
      shape_error("its segmentation nests deeper than a polygon list or an RLE");
    }
    frames_.push_back({where});
    return true;
  }

  bool close() {
    const Where where = frames_.back().where;
    frames_.pop_back();
    switch (where) {
      case Where::image: add_image(); break;
      case Where::category: add_category(); break;
      case Where::annotation: add_annotation(); break;
      case Where::polygon: {
        // pycocotools reads len/2 points: an odd last number is not part of the polygon.
        const size_t numbers = scratch_.size() - polygon_start_;
        if (polygon_sizes_.empty()) first_polygon_numbers_ = numbers;
        if (numbers % 2 == 1) scratch_.pop_back();
        polygon_sizes_.push_back(static_cast<int32_t>(numbers / 2));
        break;
      }
      default: break;
    }
    return true;
  }

  void add_image() {
    const std::string what = cat(out_.file, ": image #", out_.images.size());
    check(image_.id >= 0, what, " has no id");
    check(!image_.file_name.empty(), what, " (id ", image_.id, ") has no file_name");
    check(image_.height > 0 && image_.width > 0 && int64_t{image_.height} * image_.width <= kMaxImagePixels, what,
          " (id ", image_.id, ") needs a height and width of 1..", kMaxImagePixels, " pixels, got ", image_.width, "x",
          image_.height);
    out_.images.push_back(std::move(image_));
  }

  void add_category() {
    check(category_.id >= 0, out_.file, ": category #", out_.categories.size(), " has no id");
    out_.categories.push_back(std::move(category_));
  }

  void start_annotation() {
    annotation_ = CocoAnnotation{};
    scratch_.clear();
    polygon_sizes_.clear();
    rle_size_.clear();
    shape_error_.clear();
    has_segmentation_ = has_counts_ = false;
  }

  void add_annotation() {
    const std::string what = cat(out_.file, ": ", annotation_name());
    check(annotation_.id >= 0, what, " has no id");
    check(annotation_.image_id >= 0, what, " has no image_id");
    check(annotation_.category_id >= 0, what, " has no category_id");
    check(shape_error_.empty(), what, ": segmentation of unknown shape: ", shape_error_,
          " (expected a list of polygons [[x0,y0,x1,y1,...],...] or an RLE {\"counts\": ..., \"size\": [h,w]})");
    check(has_segmentation_, what, " has no segmentation");
    CocoAnnotation& a = annotation_;
    if (a.kind == SegmentationKind::polygons) {
      check(!polygon_sizes_.empty() && first_polygon_numbers_ > 4, what,
            ": segmentation of unknown shape: its first polygon needs more than 4 coordinates, got ",
            polygon_sizes_.empty() ? std::string("no polygon") : cat(first_polygon_numbers_),
            " (pycocotools reads 4 numbers as a box and refuses the list)");
      a.data.reserve(1 + polygon_sizes_.size() + scratch_.size());
      a.data.push_back(static_cast<int32_t>(polygon_sizes_.size()));
      a.data.insert(a.data.end(), polygon_sizes_.begin(), polygon_sizes_.end());
      a.data.insert(a.data.end(), scratch_.begin(), scratch_.end());
    } else {
      check(has_counts_ && rle_size_.size() == 2, what,
            ": segmentation of unknown shape: an RLE needs \"counts\" (a string or a list of counts) and \"size\" "
            "[height, width]");
      a.rle_height = static_cast<int>(rle_size_[0]);
      a.rle_width = static_cast<int>(rle_size_[1]);
      if (a.kind == SegmentationKind::rle_counts) a.data.assign(scratch_.begin(), scratch_.end());
    }
    out_.annotations.push_back(std::move(a));
  }

  CocoAnnotations& out_;
  std::vector<Frame> frames_;
  CocoImage image_;
  CocoCategory category_;
  CocoAnnotation annotation_;
  std::vector<int32_t> scratch_;        // the annotation's scaled coordinates or counts
  std::vector<int32_t> polygon_sizes_;  // points per polygon
  std::vector<int64_t> rle_size_;
  size_t polygon_start_ = 0;
  size_t first_polygon_numbers_ = 0;
  std::string shape_error_;
  bool has_segmentation_ = false, has_counts_ = false;
  bool seen_images_ = false, seen_annotations_ = false, seen_categories_ = false;
};

// Sorts categories, groups annotations by image and checks every reference.
void index_annotations(CocoAnnotations& coco) {
  std::sort(coco.categories.begin(), coco.categories.end(),
            [](const CocoCategory& a, const CocoCategory& b) { return a.id < b.id; });
  for (size_t i = 1; i < coco.categories.size(); ++i) {
    check(coco.categories[i].id != coco.categories[i - 1].id, coco.file, ": category id ", coco.categories[i].id,
          " is listed twice");
  }
  check(!coco.categories.empty() && coco.categories.size() <= 254, coco.file, ": expected 1..254 categories, found ",
        coco.categories.size());
  std::unordered_map<int64_t, size_t> image_index;
  for (size_t i = 0; i < coco.images.size(); ++i) {
    check(image_index.emplace(coco.images[i].id, i).second, coco.file, ": image id ", coco.images[i].id,
          " is listed twice");
  }
  coco.annotations_of_image.assign(coco.images.size(), {});
  for (size_t k = 0; k < coco.annotations.size(); ++k) {
    const CocoAnnotation& a = coco.annotations[k];
    const std::string what = cat(coco.file, ": annotation id ", a.id);
    check(coco.label_of(a.category_id) > 0, what, ": category_id ", a.category_id,
          " is not in the file's categories list");
    auto it = image_index.find(a.image_id);
    check(it != image_index.end(), what, ": image_id ", a.image_id, " is not in the file's images list");
    const CocoImage& image = coco.images[it->second];
    if (a.kind != SegmentationKind::polygons) {
      check(a.rle_height == image.height && a.rle_width == image.width, what, ": RLE size ", a.rle_height, "x",
            a.rle_width, " (height x width) differs from image id ", image.id, "'s ", image.height, "x", image.width);
    }
    coco.annotations_of_image[it->second].push_back(static_cast<int64_t>(k));
  }
}

}  // namespace

int CocoAnnotations::label_of(int64_t category_id) const {
  auto it = std::lower_bound(categories.begin(), categories.end(), category_id,
                             [](const CocoCategory& c, int64_t id) { return c.id < id; });
  return it != categories.end() && it->id == category_id ? static_cast<int>(it - categories.begin()) + 1 : 0;
}

CocoAnnotations read_coco_annotations(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  check(in.good(), "cannot open the COCO annotation file '", path, "'");
  std::vector<char> buffer(size_t{1} << 20);
  in.rdbuf()->pubsetbuf(buffer.data(), static_cast<std::streamsize>(buffer.size()));
  CocoAnnotations coco = parse_coco_annotations(in, path);
  check(!in.bad(), "error reading the COCO annotation file '", path, "'");
  return coco;
}

CocoAnnotations parse_coco_annotations(std::istream& in, const std::string& file) {
  CocoAnnotations coco;
  coco.file = file;
  CocoSax sax(coco);
  try {
    nlohmann::json::sax_parse(in, &sax, nlohmann::json::input_format_t::json, true, false);
  } catch (const nlohmann::json::exception& e) {
    throw Error(cat(file, ": ", e.what()));
  }
  sax.finish();
  index_annotations(coco);
  return coco;
}

std::vector<uint8_t> annotation_mask(const CocoAnnotations& coco, const CocoAnnotation& a, const CocoImage& image) {
  const int h = image.height, w = image.width;
  const std::string what = cat(coco.file, ": annotation id ", a.id);
  std::vector<uint8_t> mask(static_cast<size_t>(h) * w, 0);
  switch (a.kind) {
    case SegmentationKind::polygons: {
      const size_t polygons = static_cast<size_t>(a.data[0]);
      const int32_t* xy = a.data.data() + 1 + polygons;
      for (size_t p = 0; p < polygons; ++p) {
        const auto points = static_cast<size_t>(a.data[1 + p]);
        paint_runs(rle_from_scaled_polygon(xy, points, h, w), h, w, mask, what);
        xy += 2 * points;
      }
      break;
    }
    case SegmentationKind::rle_counts: paint_runs(RleCounts(a.data.begin(), a.data.end()), h, w, mask, what); break;
    case SegmentationKind::rle_string: paint_runs(rle_from_string(a.rle, what), h, w, mask, what); break;
  }
  return mask;
}

Image coco_label_map(const CocoAnnotations& coco, int64_t index) {
  const CocoImage& image = coco.images.at(static_cast<size_t>(index));
  Image label(image.height, image.width, 1);
  struct Instance {
    const CocoAnnotation* annotation;
    std::vector<uint8_t> mask;
    int64_t area;
  };
  std::vector<Instance> instances;
  for (int64_t k : coco.annotations_of_image.at(static_cast<size_t>(index))) {
    const CocoAnnotation& a = coco.annotations[static_cast<size_t>(k)];
    std::vector<uint8_t> mask = annotation_mask(coco, a, image);
    const auto area = static_cast<int64_t>(std::count(mask.begin(), mask.end(), uint8_t{1}));
    instances.push_back({&a, std::move(mask), area});
  }
  // Crowd first, then larger before smaller, ties by id: see coco.h.
  std::sort(instances.begin(), instances.end(), [](const Instance& x, const Instance& y) {
    if (x.annotation->crowd != y.annotation->crowd) return x.annotation->crowd;
    if (x.area != y.area) return x.area > y.area;
    return x.annotation->id < y.annotation->id;
  });
  for (const Instance& instance : instances) {
    const auto value =
        static_cast<uint8_t>(instance.annotation->crowd ? 255 : coco.label_of(instance.annotation->category_id));
    for (size_t p = 0; p < instance.mask.size(); ++p) {
      if (instance.mask[p]) label.pixels[p] = value;
    }
  }
  return label;
}

const std::vector<std::string>& coco_category_names() {
  static const std::vector<std::string> names = {
      "person",         "bicycle",    "car",           "motorcycle",    "airplane",     "bus",           "train",
      "truck",          "boat",       "traffic light", "fire hydrant",  "stop sign",    "parking meter", "bench",
      "bird",           "cat",        "dog",           "horse",         "sheep",        "cow",           "elephant",
      "bear",           "zebra",      "giraffe",       "backpack",      "umbrella",     "handbag",       "tie",
      "suitcase",       "frisbee",    "skis",          "snowboard",     "sports ball",  "kite",          "baseball bat",
      "baseball glove", "skateboard", "surfboard",     "tennis racket", "bottle",       "wine glass",    "cup",
      "fork",           "knife",      "spoon",         "bowl",          "banana",       "apple",         "sandwich",
      "orange",         "broccoli",   "carrot",        "hot dog",       "pizza",        "donut",         "cake",
      "chair",          "couch",      "potted plant",  "bed",           "dining table", "toilet",        "tv",
      "laptop",         "mouse",      "remote",        "keyboard",      "cell phone",   "microwave",     "oven",
      "toaster",        "sink",       "refrigerator",  "book",          "clock",        "vase",          "scissors",
      "teddy bear",     "hair drier", "toothbrush"};
  return names;
}

const std::vector<int>& coco_category_ids() {
  // 1..90 without the 10 ids the 2014 paper listed but never annotated.
  static const std::vector<int> ids = [] {
    std::vector<int> out;
    for (int id = 1; id <= 90; ++id) {
      if (id != 12 && id != 26 && id != 29 && id != 30 && id != 45 && id != 66 && id != 68 && id != 69 && id != 71 &&
          id != 83) {
        out.push_back(id);
      }
    }
    return out;
  }();
  return ids;
}

}  // namespace strata::data
