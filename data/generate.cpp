// The generated VOC-layout dataset: scene rendering and the writer. The design (classes, clutter,
// occlusion, co-occurrence, void band) is described in generate.h.
#include "data/generate.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <set>
#include <vector>

#include "data/coco.h"
#include "data/parallel.h"
#include "data/transforms.h"
#include "engine/atomic_file.h"
#include "engine/error.h"
#include "engine/json.h"
#include "kernels/common/philox.h"

namespace strata::data {

namespace fs = std::filesystem;

namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr int kTextures = 6;
constexpr int kShapes = 7;
const char* const kTextureNames[kTextures] = {"plain", "striped", "checkered", "dotted", "ringed", "gridded"};
const char* const kShapeNames[kShapes] = {"circle", "square", "triangle", "diamond", "cross", "annulus", "ellipse"};

// The draws of one scene: Philox blocks [index * 2^28, + 2^27) of the split's stream, read word by
// word in order, and per-pixel noise from the next 2^27 blocks (four pixels per block).
class SceneRandom {
 public:
  SceneRandom(uint64_t seed, uint64_t stream, uint64_t index) : seed_(seed), stream_(stream), base_(index << 28) {}
  double uniform() {
    uint32_t hi = next_word(), lo = next_word();
    return philox::to_unit_double(hi, lo);
  }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  int below(int n) { return static_cast<int>(uniform_below(next_word(), n)); }
  // Per-pixel noise: block b holds the words of pixels 4b..4b+3, addressed by pixel so that the
  // noise does not shift the other draws.
  std::array<uint32_t, 4> pixel_block(uint64_t b) const {
    philox::Block words = philox::draw(seed_, (base_ | (uint64_t{1} << 27)) + b, stream_);
    return {words.v[0], words.v[1], words.v[2], words.v[3]};
  }

 private:
  uint32_t next_word() {
    uint64_t k = counter_++;
    return philox::draw(seed_, base_ + k / 4, stream_).v[k % 4];
  }
  uint64_t seed_, stream_, base_;
  uint64_t counter_ = 0;
};

struct Hsv {
  double h, s, v;
};

Rgb hsv_to_rgb(Hsv c) {
  double h = c.h - std::floor(c.h);
  double s = std::clamp(c.s, 0.0, 1.0), v = std::clamp(c.v, 0.0, 1.0);
  double f = h * 6.0;
  int i = static_cast<int>(f) % 6;
  double frac = f - std::floor(f);
  double p = v * (1 - s), q = v * (1 - s * frac), t = v * (1 - s * (1 - frac));
  double r = 0, g = 0, b = 0;
  switch (i) {
    case 0: r = v, g = t, b = p; break;
    case 1: r = q, g = v, b = p; break;
    case 2: r = p, g = v, b = t; break;
    case 3: r = p, g = q, b = v; break;
    case 4: r = t, g = p, b = v; break;
    default: r = v, g = p, b = q; break;
  }
  auto u8 = [](double x) { return static_cast<uint8_t>(std::lround(std::clamp(x, 0.0, 1.0) * 255.0)); };
  return {u8(r), u8(g), u8(b)};
}

const char* hue_name(double h) {
  static const char* const names[12] = {"red",  "orange", "yellow", "lime",   "green",   "spring",
                                        "cyan", "azure",  "blue",   "violet", "magenta", "rose"};
  int i = static_cast<int>(std::floor((h - std::floor(h)) * 12.0 + 0.5)) % 12;
  return names[i];
}

struct ClassStyle {
  Hsv hsv;
  int texture, shape;
};

ClassStyle class_style(int c) {
  int k = c - 1;
  double hue = std::fmod(k * 0.6180339887498949, 1.0);
  double value = (k % 2) ? 0.62 : 0.92;
  double saturation = (k / 2) % 2 ? 0.65 : 0.9;
  return {{hue, saturation, value}, k % kTextures, k % kShapes};
}

int group_count(int classes) { return std::max(1, (classes + 2) / 3); }

// Texture intensity in [0, 1] at object-local coordinates (u, v) in units of the radius.
double texture_value(int texture, double u, double v, double period, double phase) {
  auto frac = [](double x) { return x - std::floor(x); };
  double a = u / period + phase, b = v / period + phase;
  switch (texture) {
    case 1: return frac(a) < 0.5 ? 1.0 : 0.0;
    case 2: return (static_cast<int64_t>(std::floor(a)) + static_cast<int64_t>(std::floor(b))) % 2 == 0 ? 1.0 : 0.0;
    case 3: {
      double du = frac(a) - 0.5, dv = frac(b) - 0.5;
      return du * du + dv * dv < 0.09 ? 0.0 : 1.0;
    }
    case 4: return frac(std::sqrt(u * u + v * v) / period + phase) < 0.5 ? 1.0 : 0.0;
    case 5: return frac(a) < 0.22 || frac(b) < 0.22 ? 0.0 : 1.0;
    default: return 1.0;
  }
}

bool inside_shape(int shape, double u, double v) {
  double au = std::fabs(u), av = std::fabs(v);
  switch (shape) {
    case 0: return u * u + v * v <= 1.0;
    case 1: return au <= 0.8 && av <= 0.8;
    case 2: return v >= -0.85 && v <= 0.75 && au <= (v + 0.85) * 0.62;
    case 3: return au + av <= 1.0;
    case 4: return (au <= 0.32 && av <= 1.0) || (av <= 0.32 && au <= 1.0);
    case 5: {
      double r2 = u * u + v * v;
      return r2 <= 1.0 && r2 >= 0.3;
    }
    default: return u * u + (v / 0.55) * (v / 0.55) <= 1.0;
  }
}

struct Canvas {
  Image image;
  Image label;
};

// Draws one rotated, stretched, textured shape with colours `fg` (texture 1) and `bg` (texture
// 0), writing `label_value` where it covers the canvas.
void draw_shape(Canvas& canvas, int shape, int texture, double cx, double cy, double radius, double stretch,
                double angle, double period, double phase, Rgb fg, Rgb bg, uint8_t label_value) {
  double reach = radius * std::max(stretch, 1.0 / stretch) * 1.5;
  int x0 = std::max(0, static_cast<int>(std::floor(cx - reach))), x1 = std::min(canvas.image.width - 1, static_cast<int>(std::ceil(cx + reach)));
  int y0 = std::max(0, static_cast<int>(std::floor(cy - reach))), y1 = std::min(canvas.image.height - 1, static_cast<int>(std::ceil(cy + reach)));
  double ca = std::cos(angle), sa = std::sin(angle);
  double sx = radius * stretch, sy = radius / stretch;
  for (int y = y0; y <= y1; ++y) {
    for (int x = x0; x <= x1; ++x) {
      double dx = x + 0.5 - cx, dy = y + 0.5 - cy;
      double u = (ca * dx + sa * dy) / sx, v = (-sa * dx + ca * dy) / sy;
      if (!inside_shape(shape, u, v)) continue;
      double t = texture_value(texture, u, v, period, phase);
      uint8_t* p = &canvas.image.at(y, x, 0);
      for (int ch = 0; ch < 3; ++ch) p[ch] = static_cast<uint8_t>(bg[ch] + t * (fg[ch] - bg[ch]) + 0.5);
      canvas.label.at(y, x) = label_value;
    }
  }
}

void check_options(const GenerateOptions& o) {
  check(o.classes >= 1 && o.classes <= 254, "make-dataset: --classes must be in 1..254, got ", o.classes);
  check(o.train >= 0 && o.val >= 0 && o.train + o.val > 0, "make-dataset: --train and --val must be >= 0, not both 0");
  check((o.width > 0) == (o.height > 0), "make-dataset: give both width and height, or neither");
  check(o.width > 0 || (o.size >= 16 && o.size <= 4096), "make-dataset: --size must be in 16..4096, got ", o.size);
  check(o.width <= 0 || (o.width >= 16 && o.height >= 16 && o.width <= 8192 && o.height <= 8192),
        "make-dataset: width and height must be in 16..8192");
  check(o.max_objects >= 1 && o.max_objects <= 16, "make-dataset: max_objects must be in 1..16, got ", o.max_objects);
  check(o.band >= 0 && o.band <= 8, "make-dataset: band must be in 0..8, got ", o.band);
  check(o.jpeg_quality >= 1 && o.jpeg_quality <= 100, "make-dataset: JPEG quality must be in 1..100");
}

std::string image_id(bool train, int64_t index) {
  std::string number = std::to_string(index);
  return std::string(train ? "train_" : "val_") + std::string(number.size() < 5 ? 5 - number.size() : 0, '0') + number;
}

// The scene's size and background (gradient, wave texture, clutter): the first draws of every scene.
Canvas scene_background(const GenerateOptions& options, SceneRandom& rng) {
  int width = options.width, height = options.height;
  if (width <= 0) {
    double shorter = options.size * rng.uniform(0.75, 1.25);
    double aspect = std::exp(rng.uniform(std::log(0.75), std::log(4.0 / 3.0)));
    width = static_cast<int>(std::lround(aspect >= 1 ? shorter * aspect : shorter));
    height = static_cast<int>(std::lround(aspect >= 1 ? shorter : shorter / aspect));
  }
  Canvas canvas{Image(height, width, 3), Image(height, width, 1)};

  // Background: a vertical gradient between two desaturated colours with a faint texture.
  Hsv top{rng.uniform(), rng.uniform(0.0, 0.2), rng.uniform(0.35, 0.85)};
  Hsv bottom{rng.uniform(), rng.uniform(0.0, 0.2), rng.uniform(0.25, 0.75)};
  double bg_period = rng.uniform(6.0, 14.0), bg_angle = rng.uniform(0.0, kPi);
  double bca = std::cos(bg_angle), bsa = std::sin(bg_angle);
  Rgb ct = hsv_to_rgb(top), cb = hsv_to_rgb(bottom);
  // sin(a x + b y) = sin(a x) cos(b y) + cos(a x) sin(b y): tabulated per column and row.
  const double ka = bca / bg_period * 2 * kPi, kb = bsa / bg_period * 2 * kPi;
  std::vector<double> sin_x(static_cast<size_t>(width)), cos_x(static_cast<size_t>(width));
  for (int x = 0; x < width; ++x) {
    sin_x[static_cast<size_t>(x)] = std::sin(ka * x);
    cos_x[static_cast<size_t>(x)] = std::cos(ka * x);
  }
  for (int y = 0; y < height; ++y) {
    double t = height > 1 ? static_cast<double>(y) / (height - 1) : 0.0;
    double sin_y = std::sin(kb * y), cos_y = std::cos(kb * y);
    double row[3];
    for (int ch = 0; ch < 3; ++ch) row[ch] = ct[ch] + t * (cb[ch] - ct[ch]);
    for (int x = 0; x < width; ++x) {
      double wave = 0.06 * (sin_x[static_cast<size_t>(x)] * cos_y + cos_x[static_cast<size_t>(x)] * sin_y);
      uint8_t* p = &canvas.image.at(y, x, 0);
      for (int ch = 0; ch < 3; ++ch) p[ch] = static_cast<uint8_t>(std::clamp(row[ch] * (1.0 + wave) + 0.5, 0.0, 255.0));
    }
  }
  // Clutter: desaturated textured shapes that belong to the background.
  int clutter = 2 + rng.below(5);
  for (int i = 0; i < clutter; ++i) {
    Hsv hsv{rng.uniform(), rng.uniform(0.0, 0.22), rng.uniform(0.2, 0.9)};
    Rgb fg = hsv_to_rgb(hsv);
    Rgb bg = hsv_to_rgb({hsv.h, hsv.s, hsv.v * 0.7});
    double radius = std::min(width, height) * rng.uniform(0.06, 0.3);
    draw_shape(canvas, rng.below(kShapes), rng.below(kTextures), rng.uniform(0, width), rng.uniform(0, height), radius,
               rng.uniform(0.4, 2.5), rng.uniform(0, 2 * kPi), rng.uniform(0.25, 0.7), rng.uniform(), fg, bg, 0);
  }
  return canvas;
}

// The class of object i of a scene: after the first, from the first one's group with probability 0.6.
int choose_class(SceneRandom& rng, int classes, int i, int first) {
  const int groups = group_count(classes);
  if (i > 0 && rng.uniform() < 0.6) {
    int group = (first - 1) % groups;
    int members = (classes - 1 - group) / groups + 1;  // classes group+1, group+1+groups, ...
    return group + 1 + groups * rng.below(members);
  }
  return 1 + rng.below(classes);
}

}  // namespace

std::vector<GeneratedClass> generated_classes(int classes) {
  check(classes >= 1 && classes <= 254, "generated_classes: classes must be in 1..254, got ", classes);
  std::vector<GeneratedClass> out;
  out.push_back({"background", {0, 0, 0}, 0, 0, -1});
  std::set<std::string> used;
  for (int c = 1; c <= classes; ++c) {
    ClassStyle s = class_style(c);
    std::string name =
        cat(s.hsv.v < 0.8 ? "dark " : "", hue_name(s.hsv.h), " ", kTextureNames[s.texture], " ", kShapeNames[s.shape]);
    if (!used.insert(name).second) name += cat(" ", c);
    out.push_back({name, hsv_to_rgb(s.hsv), s.texture, s.shape, (c - 1) % group_count(classes)});
  }
  return out;
}

Dataset::Item render_scene(const GenerateOptions& options, bool train, int64_t index) {
  check_options(options);
  SceneRandom rng(options.seed, random_stream(RandomPurpose::generate, train ? 0 : 1), static_cast<uint64_t>(index));
  Canvas canvas = scene_background(options, rng);
  const int width = canvas.image.width, height = canvas.image.height;
  // Objects, with co-occurrence and occlusion.
  int objects = 1 + rng.below(options.max_objects);
  int first = 0;
  for (int i = 0; i < objects; ++i) {
    const int c = choose_class(rng, options.classes, i, first);
    if (i == 0) first = c;
    ClassStyle s = class_style(c);
    Hsv hsv{s.hsv.h + rng.uniform(-0.025, 0.025), s.hsv.s + rng.uniform(-0.1, 0.08), s.hsv.v * rng.uniform(0.88, 1.08)};
    Rgb fg = hsv_to_rgb(hsv);
    Rgb bg = hsv_to_rgb({hsv.h, hsv.s, hsv.v * 0.45});
    double radius = std::min(width, height) * rng.uniform(0.14, 0.32);
    draw_shape(canvas, s.shape, s.texture, rng.uniform(0.1, 0.9) * width, rng.uniform(0.1, 0.9) * height, radius,
               rng.uniform(0.8, 1.25), rng.uniform(0, 2 * kPi), rng.uniform(0.36, 0.54), rng.uniform(), fg, bg,
               static_cast<uint8_t>(c));
  }

  // Void band: every pixel within `band` of a pixel with another label.
  if (options.band > 0) {
    Image band(height, width, 1);
    const int r = options.band;
    for (int y = 0; y < height; ++y) {
      for (int x = 0; x < width; ++x) {
        uint8_t v = canvas.label.at(y, x);
        bool edge = false;
        for (int dy = -r; dy <= r && !edge; ++dy) {
          int yy = y + dy;
          if (yy < 0 || yy >= height) continue;
          for (int dx = -r; dx <= r; ++dx) {
            int xx = x + dx;
            if (xx >= 0 && xx < width && canvas.label.at(yy, xx) != v) {
              edge = true;
              break;
            }
          }
        }
        band.at(y, x) = edge ? 255 : v;
      }
    }
    canvas.label = std::move(band);
  }

  // Sensor noise: +-6 per channel, one Philox word per pixel (a block serves four pixels).
  const int64_t pixel_count = static_cast<int64_t>(width) * height;
  for (int64_t p0 = 0; p0 < pixel_count; p0 += 4) {
    std::array<uint32_t, 4> words = rng.pixel_block(static_cast<uint64_t>(p0 / 4));
    for (int64_t p = p0; p < std::min(p0 + 4, pixel_count); ++p) {
      uint32_t w = words[static_cast<size_t>(p - p0)];
      uint8_t* px = canvas.image.pixels.data() + p * 3;
      for (int ch = 0; ch < 3; ++ch) {
        int n = static_cast<int>((w >> (8 * ch)) & 0xFF) % 13 - 6;
        px[ch] = static_cast<uint8_t>(std::clamp(px[ch] + n, 0, 255));
      }
    }
  }
  return {std::move(canvas.image), std::move(canvas.label)};
}

// ---- the COCO layout ---------------------------------------------------------------------------

namespace {

using Outline = std::vector<std::pair<double, double>>;  // (u, v) in units of the radius

Outline regular_polygon(int sides, double ry) {
  Outline out;
  for (int k = 0; k < sides; ++k) {
    const double a = 2 * kPi * k / sides;
    out.emplace_back(std::cos(a), ry * std::sin(a));
  }
  return out;
}

// Polygons tracing inside_shape's shapes: convex ones, the cross as one concave polygon and the
// annulus as two concave half rings (a multi-part segmentation keeping its hole).
std::vector<Outline> shape_polygons(int shape) {
  switch (shape) {
    case 0: return {regular_polygon(20, 1.0)};
    case 1: return {{{-0.8, -0.8}, {0.8, -0.8}, {0.8, 0.8}, {-0.8, 0.8}}};
    case 2: return {{{0.0, -0.85}, {0.992, 0.75}, {-0.992, 0.75}}};
    case 3: return {{{1.0, 0.0}, {0.0, 1.0}, {-1.0, 0.0}, {0.0, -1.0}}};
    case 4:
      return {{{-0.32, -1.0},
               {0.32, -1.0},
               {0.32, -0.32},
               {1.0, -0.32},
               {1.0, 0.32},
               {0.32, 0.32},
               {0.32, 1.0},
               {-0.32, 1.0},
               {-0.32, 0.32},
               {-1.0, 0.32},
               {-1.0, -0.32},
               {-0.32, -0.32}}};
    case 5: {
      std::vector<Outline> halves;
      const double inner = std::sqrt(0.3);
      for (double side : {1.0, -1.0}) {
        Outline half;
        for (int k = 0; k <= 10; ++k) {
          const double a = kPi * (k / 10.0 - 0.5);
          half.emplace_back(side * std::cos(a), std::sin(a));
        }
        for (int k = 10; k >= 0; --k) {
          const double a = kPi * (k / 10.0 - 0.5);
          half.emplace_back(side * inner * std::cos(a), inner * std::sin(a));
        }
        halves.push_back(std::move(half));
      }
      return halves;
    }
    default: return {regular_polygon(20, 0.55)};
  }
}

enum class Encoding { polygons, rle_string, rle_counts };

struct Placement {
  double cx, cy, sx, sy, ca, sa;  // centre, scales along the object's axes, rotation
};

struct GeneratedInstance {
  int category = 0;  // 1..classes
  bool crowd = false;
  Encoding encoding = Encoding::polygons;
  std::vector<std::vector<double>> polygons;  // x0,y0,x1,y1,... in pixels, two decimals
  std::vector<uint8_t> mask;                  // row-major 0/1: what pycocotools' annToMask gives
  int64_t area = 0;
  // how the object is painted
  Placement at{};
  int texture = 0;
  double period = 0, phase = 0;
  Rgb fg{}, bg{};
};

struct CocoScene {
  Image image;
  std::vector<GeneratedInstance> instances;
};

double two_decimals(double v) { return std::round(v * 100.0) / 100.0; }

// The object's mask: its polygons rasterised as pycocotools does, or inside_shape at pixel centres.
void make_mask(GeneratedInstance& g, int shape, int height, int width) {
  const Placement& p = g.at;
  g.mask.assign(static_cast<size_t>(height) * width, 0);
  if (g.encoding == Encoding::polygons) {
    for (const Outline& outline : shape_polygons(shape)) {
      std::vector<double> xy;
      for (auto [u, v] : outline) {
        xy.push_back(two_decimals(p.cx + p.ca * u * p.sx - p.sa * v * p.sy));
        xy.push_back(two_decimals(p.cy + p.sa * u * p.sx + p.ca * v * p.sy));
      }
      std::vector<uint8_t> part = rle_decode(rle_from_polygon(xy, height, width), height, width, "generated polygon");
      for (size_t i = 0; i < part.size(); ++i) g.mask[i] |= part[i];
      g.polygons.push_back(std::move(xy));
    }
  } else {
    for (int y = 0; y < height; ++y) {
      for (int x = 0; x < width; ++x) {
        const double dx = x + 0.5 - p.cx, dy = y + 0.5 - p.cy;
        const double u = (p.ca * dx + p.sa * dy) / p.sx, v = (-p.sa * dx + p.ca * dy) / p.sy;
        g.mask[static_cast<size_t>(y) * width + x] = inside_shape(shape, u, v) ? 1 : 0;
      }
    }
  }
  g.area = std::count(g.mask.begin(), g.mask.end(), uint8_t{1});
}

void paint_instance(Image& image, const GeneratedInstance& g) {
  const Placement& p = g.at;
  for (int y = 0; y < image.height; ++y) {
    for (int x = 0; x < image.width; ++x) {
      if (!g.mask[static_cast<size_t>(y) * image.width + x]) continue;
      const double dx = x + 0.5 - p.cx, dy = y + 0.5 - p.cy;
      const double u = (p.ca * dx + p.sa * dy) / p.sx, v = (-p.sa * dx + p.ca * dy) / p.sy;
      const double t = texture_value(g.texture, u, v, g.period, g.phase);
      uint8_t* px = &image.at(y, x, 0);
      for (int ch = 0; ch < 3; ++ch) px[ch] = static_cast<uint8_t>(g.bg[ch] + t * (g.fg[ch] - g.bg[ch]) + 0.5);
    }
  }
}

// A scene of the COCO layout: the VOC scene's background and objects, each object also an instance
// annotation (polygons, a compressed or an uncompressed RLE; one in ten a crowd region), painted in
// the order the reader draws labels (crowd first, then larger before smaller: data/coco.h) so the
// image shows what the label map says.
CocoScene render_coco_scene(const GenerateOptions& options, bool train, int64_t index) {
  SceneRandom rng(options.seed, random_stream(RandomPurpose::generate, train ? 2 : 3), static_cast<uint64_t>(index));
  Canvas canvas = scene_background(options, rng);
  const int width = canvas.image.width, height = canvas.image.height;
  CocoScene scene;
  const int objects = 1 + rng.below(options.max_objects);
  int first = 0;
  for (int i = 0; i < objects; ++i) {
    GeneratedInstance g;
    g.category = choose_class(rng, options.classes, i, first);
    if (i == 0) first = g.category;
    const ClassStyle s = class_style(g.category);
    Hsv hsv{s.hsv.h + rng.uniform(-0.025, 0.025), s.hsv.s + rng.uniform(-0.1, 0.08), s.hsv.v * rng.uniform(0.88, 1.08)};
    g.fg = hsv_to_rgb(hsv);
    g.bg = hsv_to_rgb({hsv.h, hsv.s, hsv.v * 0.45});
    const double radius = std::min(width, height) * rng.uniform(0.14, 0.32);
    const double cx = rng.uniform(0.1, 0.9) * width, cy = rng.uniform(0.1, 0.9) * height;
    const double stretch = rng.uniform(0.8, 1.25), angle = rng.uniform(0, 2 * kPi);
    g.at = {cx, cy, radius * stretch, radius / stretch, std::cos(angle), std::sin(angle)};
    g.texture = s.texture;
    g.period = rng.uniform(0.36, 0.54);
    g.phase = rng.uniform();
    const double kind = rng.uniform();
    g.crowd = kind < 0.1;
    g.encoding = g.crowd || (kind >= 0.25 && kind < 0.35) ? Encoding::rle_counts
                 : kind < 0.25                            ? Encoding::rle_string
                                                          : Encoding::polygons;
    make_mask(g, s.shape, height, width);
    if (g.area > 0) scene.instances.push_back(std::move(g));
  }
  std::vector<const GeneratedInstance*> order;
  for (const GeneratedInstance& g : scene.instances) order.push_back(&g);
  std::stable_sort(order.begin(), order.end(), [](const GeneratedInstance* a, const GeneratedInstance* b) {
    if (a->crowd != b->crowd) return a->crowd;
    return a->area > b->area;  // equal areas keep their annotation (id) order
  });
  for (const GeneratedInstance* g : order) paint_instance(canvas.image, *g);
  scene.image = std::move(canvas.image);
  return scene;
}

json::Value segmentation_json(const GeneratedInstance& g, int height, int width) {
  if (g.encoding == Encoding::polygons) {
    json::Array polygons;
    for (const std::vector<double>& xy : g.polygons) {
      json::Array numbers;
      for (double v : xy) numbers.emplace_back(v);
      polygons.emplace_back(std::move(numbers));
    }
    return json::Value(std::move(polygons));
  }
  const RleCounts counts = rle_encode(g.mask, height, width);
  json::Value value;
  if (g.encoding == Encoding::rle_string) {
    value = json::Value(rle_to_string(counts));
  } else {
    json::Array list;
    for (uint32_t c : counts) list.emplace_back(static_cast<int64_t>(c));
    value = json::Value(std::move(list));
  }
  return json::Value(json::Object{{"counts", std::move(value)}, {"size", json::Array{height, width}}});
}

json::Array bbox_json(const GeneratedInstance& g, int height, int width) {
  int x0 = width, y0 = height, x1 = -1, y1 = -1;
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      if (!g.mask[static_cast<size_t>(y) * width + x]) continue;
      x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, y), y1 = std::max(y1, y);
    }
  }
  return json::Array{x0, y0, x1 - x0 + 1, y1 - y0 + 1};
}

// COCO's category ids for generated class c: its c-th id (gaps included), past 80 from 91 on.
int generated_category_id(int c) { return c <= 80 ? coco_category_ids()[static_cast<size_t>(c - 1)] : 10 + c; }

std::string coco_file_name(int64_t id) {
  std::string digits = std::to_string(id);
  return std::string(digits.size() < 12 ? 12 - digits.size() : 0, '0') + digits + ".jpg";
}

void generate_coco_dataset(const fs::path& root, const GenerateOptions& options) {
  for (const char* sub : {"train2017", "val2017", "annotations"}) {
    std::error_code ec;
    fs::create_directories(root / sub, ec);
    check(!ec, "make-dataset: cannot create '", (root / sub).string(), "': ", ec.message());
  }
  const std::vector<GeneratedClass> classes = generated_classes(options.classes);
  json::Array categories;
  for (int c = 1; c <= options.classes; ++c) {
    categories.emplace_back(json::Object{{"id", generated_category_id(c)},
                                         {"name", classes[static_cast<size_t>(c)].name},
                                         {"supercategory", "generated"}});
  }
  for (bool train : {true, false}) {
    const int64_t count = train ? options.train : options.val;
    const char* split = train ? "train2017" : "val2017";
    // Image ids as COCO's: not starting at 0, and unrelated to the position in the file.
    auto image_id = [&](int64_t i) { return (train ? 9 : 1000009) + 7 * i; };
    std::vector<CocoScene> scenes(static_cast<size_t>(count));
    run_parallel(count, options.threads, [&](int64_t i) {
      CocoScene scene = render_coco_scene(options, train, i);
      write_file_atomically((root / split / coco_file_name(image_id(i))).string(),
                            encode_jpeg(scene.image, options.jpeg_quality));
      scenes[static_cast<size_t>(i)] = std::move(scene);
    });
    json::Array images, annotations;
    int64_t annotation_id = train ? 100 : 500000;
    for (int64_t i = 0; i < count; ++i) {
      const CocoScene& scene = scenes[static_cast<size_t>(i)];
      const int h = scene.image.height, w = scene.image.width;
      images.emplace_back(
          json::Object{{"id", image_id(i)}, {"file_name", coco_file_name(image_id(i))}, {"height", h}, {"width", w}});
      for (const GeneratedInstance& g : scene.instances) {
        annotations.emplace_back(json::Object{{"id", annotation_id++},
                                              {"image_id", image_id(i)},
                                              {"category_id", generated_category_id(g.category)},
                                              {"iscrowd", g.crowd ? 1 : 0},
                                              {"segmentation", segmentation_json(g, h, w)},
                                              {"area", g.area},
                                              {"bbox", bbox_json(g, h, w)}});
      }
      scenes[static_cast<size_t>(i)] = CocoScene{};
    }
    // COCO's key order: the categories come last, after the annotations that use them.
    json::Object document = {{"info", json::Object{{"description", "strata make-dataset --layout coco"}}},
                             {"licenses", json::Array{}},
                             {"images", std::move(images)},
                             {"annotations", std::move(annotations)},
                             {"categories", categories}};
    write_file_atomically((root / "annotations" / cat("instances_", split, ".json")).string(),
                          json::dump(json::Value(std::move(document))));
  }
  const std::string readme = cat(
      "Generated by `strata make-dataset --layout coco` (strata data layer, data/generate.cpp).\n\n",
      "COCO 2017 layout: train2017/<id>.jpg, val2017/<id>.jpg (JPEG quality ", options.jpeg_quality,
      "), annotations/instances_{train,val}2017.json.\n", "seed ", options.seed, ", ", options.classes,
      " categories (COCO's ids, generated names), ", options.train, " train and ", options.val, " val images.\n",
      "Scenes as the VOC layout's (see its README), without the void band. Each object is an instance annotation:\n",
      "polygons (convex shapes, a concave cross, a ring as two concave halves), a compressed RLE string or an\n",
      "uncompressed RLE count list; one in ten is a crowd region (iscrowd 1, uncompressed RLE). Masks overlap;\n",
      "images are painted crowd first, then larger before smaller, the order strata's reader labels them in.\n");
  write_file_atomically((root / "README.txt").string(), readme);
}

}  // namespace

void generate_dataset(const std::string& out_dir, const GenerateOptions& options) {
  check_options(options);
  fs::path root(out_dir);
  if (options.layout == GeneratedLayout::coco) {
    generate_coco_dataset(root, options);
    return;
  }
  for (const char* sub : {"JPEGImages", "SegmentationClassAug", "splits", "ImageSets/Segmentation"}) {
    std::error_code ec;
    fs::create_directories(root / sub, ec);
    check(!ec, "make-dataset: cannot create '", (root / sub).string(), "': ", ec.message());
  }
  const int64_t total = static_cast<int64_t>(options.train) + options.val;
  run_parallel(total, options.threads, [&](int64_t i) {
    bool train = i < options.train;
    int64_t index = train ? i : i - options.train;
    Dataset::Item item = render_scene(options, train, index);
    std::string id = image_id(train, index);
    write_file_atomically((root / "JPEGImages" / (id + ".jpg")).string(), encode_jpeg(item.image, options.jpeg_quality));
    write_file_atomically((root / "SegmentationClassAug" / (id + ".png")).string(), encode_png(item.label));
  });
  for (bool train : {true, false}) {
    std::string deeplab, plain;
    for (int64_t i = 0; i < (train ? options.train : options.val); ++i) {
      std::string id = image_id(train, i);
      deeplab += cat("/JPEGImages/", id, ".jpg /SegmentationClassAug/", id, ".png\n");
      plain += id + "\n";
    }
    const char* name = train ? "train_aug.txt" : "val.txt";
    write_file_atomically((root / "splits" / name).string(), deeplab);
    write_file_atomically((root / "ImageSets" / "Segmentation" / name).string(), plain);
  }
  std::vector<GeneratedClass> classes = generated_classes(options.classes);
  std::string names;
  for (const GeneratedClass& c : classes) names += c.name + "\n";
  write_file_atomically((root / "class_names.txt").string(), names);

  std::string groups;
  for (int g = 0; g < group_count(options.classes); ++g) {
    groups += "  {";
    for (int c = g + 1; c <= options.classes; c += group_count(options.classes)) groups += cat(c == g + 1 ? "" : ", ", c);
    groups += "}\n";
  }
  std::string size = options.width > 0 ? cat(options.width, "x", options.height, " (width x height)")
                                       : cat("shorter side ", options.size, " x U(0.75, 1.25), aspect U(3/4, 4/3)");
  std::string readme = cat(
      "Generated by `strata make-dataset` (strata data layer, data/generate.cpp).\n\n",
      "Pascal VOC layout: JPEGImages/<id>.jpg (JPEG quality ", options.jpeg_quality,
      "), SegmentationClassAug/<id>.png (8-bit labels), splits/{train_aug,val}.txt (DeepLab lists),\n",
      "ImageSets/Segmentation/{train_aug,val}.txt (plain ids), class_names.txt (background first).\n\n",
      "seed ", options.seed, ", ", options.classes, " classes, ", options.train, " train and ", options.val,
      " val images, ", size, ".\n\n",
      "Scenes: a desaturated background gradient with a faint wave texture and 2-6 desaturated clutter shapes\n",
      "(label 0), then 1-", options.max_objects,
      " objects drawn in order (later ones occlude earlier ones; objects may leave the frame).\n",
      "Class c has a fixed hue (golden-ratio spacing), shade, texture and shape (class_names.txt spells them out);\n",
      "instances vary in size (0.14-0.32 of the shorter side), stretch, rotation, colour and texture period.\n",
      "Co-occurrence: after the first object, each further object comes from the first one's group with\n",
      "probability 0.6. Groups:\n", groups,
      "Labels: 0 background, 1..", options.classes, " classes, 255 void: a band of ", options.band,
      " pixel(s) on each side of every boundary.\n",
      "Pixel noise +-6 per channel. Deterministic: the same options give the same bytes.\n");
  write_file_atomically((root / "README.txt").string(), readme);
}

}  // namespace strata::data
