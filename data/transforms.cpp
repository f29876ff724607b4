// Transforms: torchvision's RandomResizedCrop sampling, Pillow's BILINEAR and NEAREST resampling
// on uint8, flips and the eval geometry. See transforms.h for the definitions and their sources.
//
// Pillow BILINEAR (libImaging/Resample.c, precompute_coeffs + ImagingResample{Horizontal,Vertical}_8bpc),
// for an input extent [in0, in1) of in_size pixels resized to out_size:
//   scale = (in1 - in0) / out_size;  filterscale = max(scale, 1);  support = 1 * filterscale
//   ksize = ceil(support) * 2 + 1
//   for each output x: center = in0 + (x + 0.5) * scale
//     xmin = max(int(center - support + 0.5), 0),  xmax = min(int(center + support + 0.5), in_size)
//     w_i = triangle((i + xmin - center + 0.5) / filterscale), normalised to sum 1
//     k_i = int(w_i * 2^22 + 0.5)   (weights are never negative for the triangle)
//   out = clip8((2^21 + sum_i k_i * in[xmin + i]) >> 22)
// A pass whose size does not change is skipped (it would be the identity).
#include "data/transforms.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/error.h"
#include "kernels/common/philox.h"

namespace strata::data {

namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;

struct Coefficients {
  int ksize = 0;
  std::vector<int> first;   // xmin per output coordinate
  std::vector<int> count;   // number of taps per output coordinate
  std::vector<int32_t> k;   // ksize weights per output coordinate
};

double triangle(double x) {
  if (x < 0.0) x = -x;
  return x < 1.0 ? 1.0 - x : 0.0;
}

Coefficients bilinear_coefficients(int in_size, int out_size) {
  // Pillow passes the box as float; crop-then-resize boxes are (0, in_size), exact in float.
  const double in0 = 0.0, in1 = static_cast<double>(static_cast<float>(in_size));
  double scale = (in1 - in0) / out_size;
  double filterscale = scale < 1.0 ? 1.0 : scale;
  double support = 1.0 * filterscale;
  Coefficients c;
  c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  c.first.resize(static_cast<size_t>(out_size));
  c.count.resize(static_cast<size_t>(out_size));
  c.k.assign(static_cast<size_t>(out_size) * c.ksize, 0);
  std::vector<double> w(static_cast<size_t>(c.ksize));
  for (int xx = 0; xx < out_size; ++xx) {
    double center = in0 + (xx + 0.5) * scale;
    double ss = 1.0 / filterscale;
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double total = 0.0;
    for (int x = 0; x < xmax; ++x) {
      w[static_cast<size_t>(x)] = triangle((x + xmin - center + 0.5) * ss);
      total += w[static_cast<size_t>(x)];
    }
    int32_t* k = c.k.data() + static_cast<size_t>(xx) * c.ksize;
    for (int x = 0; x < xmax; ++x) {
      double v = total != 0.0 ? w[static_cast<size_t>(x)] / total : w[static_cast<size_t>(x)];
      k[x] = static_cast<int32_t>(0.5 + v * (1 << kPrecisionBits));
    }
    c.first[static_cast<size_t>(xx)] = xmin;
    c.count[static_cast<size_t>(xx)] = xmax;
  }
  return c;
}

inline uint8_t clip8(int32_t v) {
  if (v >= (1 << kPrecisionBits << 8)) return 255;
  if (v <= 0) return 0;
  return static_cast<uint8_t>(v >> kPrecisionBits);
}

// Horizontal pass over rows [row_begin, row_end) of the box, output columns of `window`:
// tmp (rows, window.width, C).
template <int C>
void horizontal_pass(const Image& src, const CropBox& box, const Coefficients& c, const CropBox& window, int row_begin,
                     int row_end, uint8_t* tmp) {
  for (int y = row_begin; y < row_end; ++y) {
    const uint8_t* in = src.row(box.top + y) + static_cast<size_t>(box.left) * C;
    uint8_t* out = tmp + static_cast<size_t>(y - row_begin) * window.width * C;
    for (int xo = 0; xo < window.width; ++xo) {
      size_t xx = static_cast<size_t>(window.left + xo);
      const int32_t* k = c.k.data() + xx * c.ksize;
      const uint8_t* p = in + static_cast<size_t>(c.first[xx]) * C;
      int n = c.count[xx];
      int32_t acc[C];
      for (int ch = 0; ch < C; ++ch) acc[ch] = 1 << (kPrecisionBits - 1);
      for (int t = 0; t < n; ++t) {
        for (int ch = 0; ch < C; ++ch) acc[ch] += p[t * C + ch] * k[t];
      }
      for (int ch = 0; ch < C; ++ch) out[xo * C + ch] = clip8(acc[ch]);
    }
  }
}

// Vertical pass: rows of `in` (row stride `in_stride` bytes, first row = source row `row0`) to the
// window's output rows.
template <int C>
void vertical_pass(const uint8_t* in, size_t in_stride, int row0, const Coefficients& c, const CropBox& window,
                   uint8_t* dst) {
  const size_t row_bytes = static_cast<size_t>(window.width) * C;
  std::vector<int32_t> acc(row_bytes);
  for (int yo = 0; yo < window.height; ++yo) {
    size_t yy = static_cast<size_t>(window.top + yo);
    const int32_t* k = c.k.data() + yy * c.ksize;
    int first = c.first[yy] - row0;
    int n = c.count[yy];
    std::fill(acc.begin(), acc.end(), 1 << (kPrecisionBits - 1));
    for (int t = 0; t < n; ++t) {
      const uint8_t* r = in + static_cast<size_t>(first + t) * in_stride;
      int32_t kt = k[t];
      for (size_t i = 0; i < row_bytes; ++i) acc[i] += r[i] * kt;
    }
    uint8_t* out = dst + static_cast<size_t>(yo) * row_bytes;
    for (size_t i = 0; i < row_bytes; ++i) out[i] = clip8(acc[i]);
  }
}

template <int C>
void resize_bilinear_impl(const Image& src, const CropBox& box, int resized_h, int resized_w, const CropBox& window,
                          uint8_t* dst) {
  const bool need_horizontal = resized_w != box.width;
  const bool need_vertical = resized_h != box.height;
  Coefficients ch = need_horizontal ? bilinear_coefficients(box.width, resized_w) : Coefficients{};
  Coefficients cv = need_vertical ? bilinear_coefficients(box.height, resized_h) : Coefficients{};
  // Rows of the box the vertical pass reads for the window's output rows.
  int row_begin = window.top, row_end = window.top + window.height;
  if (need_vertical) {
    row_begin = cv.first[static_cast<size_t>(window.top)];
    size_t last = static_cast<size_t>(window.top + window.height - 1);
    row_end = cv.first[last] + cv.count[last];
  }
  const size_t row_bytes = static_cast<size_t>(window.width) * C;
  if (!need_horizontal) {
    // Identity horizontally: read the source rows in place (window.left is a box column).
    const uint8_t* base = src.row(box.top) + static_cast<size_t>(box.left + window.left) * C;
    size_t stride = static_cast<size_t>(src.width) * C;
    if (need_vertical) {
      vertical_pass<C>(base, stride, 0, cv, window, dst);
    } else {
      for (int y = 0; y < window.height; ++y) {
        std::copy_n(base + static_cast<size_t>(window.top + y) * stride, row_bytes, dst + y * row_bytes);
      }
    }
    return;
  }
  std::vector<uint8_t> tmp(static_cast<size_t>(row_end - row_begin) * row_bytes);
  horizontal_pass<C>(src, box, ch, window, row_begin, row_end, tmp.data());
  if (need_vertical) {
    vertical_pass<C>(tmp.data(), row_bytes, row_begin, cv, window, dst);
  } else {
    std::copy(tmp.begin(), tmp.end(), dst);
  }
}

// Pillow NEAREST along one axis: source index of each resized coordinate in [0, out).
std::vector<int> nearest_table(int in_size, int out_size) {
  std::vector<int> table(static_cast<size_t>(out_size));
  double a = static_cast<double>(static_cast<float>(in_size)) / out_size;
  double xo = a * 0.5;
  for (int x = 0; x < out_size; ++x) {
    int xin = xo < 0.0 ? -1 : static_cast<int>(xo);
    table[static_cast<size_t>(x)] = std::clamp(xin, 0, in_size - 1);
    xo += a;
  }
  return table;
}

void check_geometry(const char* op, const Image& src, const CropBox& box, int resized_h, int resized_w,
                    const CropBox& window) {
  check(box.height > 0 && box.width > 0 && box.top >= 0 && box.left >= 0 && box.top + box.height <= src.height &&
            box.left + box.width <= src.width,
        op, ": crop box (top ", box.top, ", left ", box.left, ", ", box.height, "x", box.width, ") outside the ",
        src.height, "x", src.width, " image");
  check(resized_h > 0 && resized_w > 0 && window.height > 0 && window.width > 0 && window.top >= 0 &&
            window.left >= 0 && window.top + window.height <= resized_h && window.left + window.width <= resized_w,
        op, ": output window (top ", window.top, ", left ", window.left, ", ", window.height, "x", window.width,
        ") outside the resized ", resized_h, "x", resized_w, " image");
}

double python_round(double v) { return std::nearbyint(v); }  // half to even in the default rounding mode

}  // namespace

uint64_t random_stream(RandomPurpose purpose, uint64_t epoch) {
  return (static_cast<uint64_t>(purpose) << 48) | (epoch & ((uint64_t{1} << 48) - 1));
}

std::array<uint32_t, 4> SampleRandom::block(uint64_t k) const {
  philox::Block b = philox::draw(seed_, index_ * kBlocks + k, stream_);
  return {b.v[0], b.v[1], b.v[2], b.v[3]};
}

double SampleRandom::unit(uint64_t k, int half) const {
  auto b = block(k);
  return philox::to_unit_double(b[static_cast<size_t>(2 * half)], b[static_cast<size_t>(2 * half + 1)]);
}

CropBox center_fallback_box(int height, int width, double ratio_min, double ratio_max) {
  double in_ratio = static_cast<double>(width) / static_cast<double>(height);
  int w = width, h = height;
  if (in_ratio < ratio_min) {
    h = static_cast<int>(python_round(w / ratio_min));
  } else if (in_ratio > ratio_max) {
    w = static_cast<int>(python_round(h * ratio_max));
  }
  return {(height - h) / 2, (width - w) / 2, h, w};
}

CropBox random_resized_crop_box(int height, int width, const ResizedCropOptions& options, const SampleRandom& random,
                                bool* fell_back) {
  check(height > 0 && width > 0, "random_resized_crop_box: empty ", height, "x", width, " image");
  check(options.attempts >= 0 && options.attempts * 2 < static_cast<int>(SampleRandom::kBlocks) - 1,
        "random_resized_crop_box: attempts must be in 0..15, got ", options.attempts);
  const double area = static_cast<double>(height) * width;
  const double log_min = std::log(options.ratio_min), log_max = std::log(options.ratio_max);
  for (int attempt = 0; attempt < options.attempts; ++attempt) {
    uint64_t k = 2 * static_cast<uint64_t>(attempt);
    double target_area = area * (options.scale_min + (options.scale_max - options.scale_min) * random.unit(k, 0));
    double aspect = std::exp(log_min + (log_max - log_min) * random.unit(k, 1));
    int w = static_cast<int>(python_round(std::sqrt(target_area * aspect)));
    int h = static_cast<int>(python_round(std::sqrt(target_area / aspect)));
    if (0 < w && w <= width && 0 < h && h <= height) {
      auto b = random.block(k + 1);
      int top = static_cast<int>(uniform_below(b[0], height - h + 1));
      int left = static_cast<int>(uniform_below(b[1], width - w + 1));
      if (fell_back) *fell_back = false;
      return {top, left, h, w};
    }
  }
  if (fell_back) *fell_back = true;
  return center_fallback_box(height, width, options.ratio_min, options.ratio_max);
}

bool random_flip(const SampleRandom& random, double probability) {
  return random.unit(SampleRandom::kBlocks - 1, 0) < probability;
}

void resize_bilinear(const Image& src, const CropBox& box, int resized_h, int resized_w, const CropBox& window,
                     uint8_t* dst) {
  check_geometry("resize_bilinear", src, box, resized_h, resized_w, window);
  switch (src.channels) {
    case 1: resize_bilinear_impl<1>(src, box, resized_h, resized_w, window, dst); break;
    case 3: resize_bilinear_impl<3>(src, box, resized_h, resized_w, window, dst); break;
    default: throw Error(cat("resize_bilinear: expected 1 or 3 channels, got ", src.channels));
  }
}

void resize_nearest(const Image& src, const CropBox& box, int resized_h, int resized_w, const CropBox& window,
                    uint8_t* dst) {
  check_geometry("resize_nearest", src, box, resized_h, resized_w, window);
  std::vector<int> rows = nearest_table(box.height, resized_h);
  std::vector<int> cols = nearest_table(box.width, resized_w);
  const int c = src.channels;
  for (int yo = 0; yo < window.height; ++yo) {
    const uint8_t* in = src.row(box.top + rows[static_cast<size_t>(window.top + yo)]) + static_cast<size_t>(box.left) * c;
    uint8_t* out = dst + static_cast<size_t>(yo) * window.width * c;
    if (c == 1) {
      for (int xo = 0; xo < window.width; ++xo) out[xo] = in[cols[static_cast<size_t>(window.left + xo)]];
    } else {
      for (int xo = 0; xo < window.width; ++xo) {
        const uint8_t* p = in + static_cast<size_t>(cols[static_cast<size_t>(window.left + xo)]) * c;
        std::copy_n(p, c, out + static_cast<size_t>(xo) * c);
      }
    }
  }
}

Image resize_bilinear(const Image& src, const CropBox& box, int out_h, int out_w) {
  Image out(out_h, out_w, src.channels);
  resize_bilinear(src, box, out_h, out_w, CropBox{0, 0, out_h, out_w}, out.pixels.data());
  return out;
}

Image resize_nearest(const Image& src, const CropBox& box, int out_h, int out_w) {
  Image out(out_h, out_w, src.channels);
  resize_nearest(src, box, out_h, out_w, CropBox{0, 0, out_h, out_w}, out.pixels.data());
  return out;
}

namespace {

template <int C>
void flip_rows(uint8_t* data, int height, int width) {
  for (int y = 0; y < height; ++y) {
    uint8_t* row = data + static_cast<size_t>(y) * width * C;
    for (int a = 0, b = width - 1; a < b; ++a, --b) {
      for (int c = 0; c < C; ++c) std::swap(row[a * C + c], row[b * C + c]);
    }
  }
}

}  // namespace

void flip_horizontal(uint8_t* data, int height, int width, int channels) {
  switch (channels) {
    case 1: flip_rows<1>(data, height, width); break;
    case 3: flip_rows<3>(data, height, width); break;
    default:
      for (int y = 0; y < height; ++y) {
        uint8_t* row = data + static_cast<size_t>(y) * width * channels;
        for (int a = 0, b = width - 1; a < b; ++a, --b) {
          std::swap_ranges(row + static_cast<size_t>(a) * channels, row + static_cast<size_t>(a + 1) * channels,
                           row + static_cast<size_t>(b) * channels);
        }
      }
  }
}

EvalGeometry eval_geometry(int height, int width, int crop) {
  check(height > 0 && width > 0 && crop > 0, "eval_geometry: image ", height, "x", width, ", crop ", crop);
  EvalGeometry g;
  int shorter = std::min(height, width), longer = std::max(height, width);
  int new_long = static_cast<int>(static_cast<double>(static_cast<int64_t>(crop) * longer) / shorter);
  g.resized_h = height <= width ? crop : new_long;
  g.resized_w = height <= width ? new_long : crop;
  g.window.height = crop;
  g.window.width = crop;
  g.window.top = static_cast<int>(python_round((g.resized_h - crop) / 2.0));
  g.window.left = static_cast<int>(python_round((g.resized_w - crop) / 2.0));
  return g;
}

namespace {

void check_pair(const char* op, const Image& image, const Image& label) {
  check(image.channels == 3 && label.channels == 1, op, ": expected an RGB image and a 1-channel label, got ",
        image.channels, " and ", label.channels, " channels");
  check(image.height == label.height && image.width == label.width, op, ": image is ", image.height, "x", image.width,
        " but label is ", label.height, "x", label.width);
}

}  // namespace

void train_transform(const Image& image, const Image& label, int crop, const ResizedCropOptions& options,
                     const SampleRandom& random, uint8_t* image_out, uint8_t* label_out) {
  check_pair("train_transform", image, label);
  CropBox box = random_resized_crop_box(image.height, image.width, options, random);
  CropBox window{0, 0, crop, crop};
  resize_bilinear(image, box, crop, crop, window, image_out);
  resize_nearest(label, box, crop, crop, window, label_out);
  if (random_flip(random, options.flip_probability)) {
    flip_horizontal(image_out, crop, crop, 3);
    flip_horizontal(label_out, crop, crop, 1);
  }
}

void eval_transform(const Image& image, const Image& label, int crop, uint8_t* image_out, uint8_t* label_out) {
  check_pair("eval_transform", image, label);
  EvalGeometry g = eval_geometry(image.height, image.width, crop);
  CropBox full{0, 0, image.height, image.width};
  resize_bilinear(image, full, g.resized_h, g.resized_w, g.window, image_out);
  resize_nearest(label, full, g.resized_h, g.resized_w, g.window, label_out);
}

}  // namespace strata::data
