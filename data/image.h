// Image I/O for the data layer: JPEG and PNG decoding with stb_image, PNG and JPEG encoding with
// stb_image_write, and the Pascal VOC colour map.
//
// Images are 8-bit, interleaved HWC, rows top to bottom. Photographs decode to RGB (3 channels;
// grey JPEGs are expanded, alpha is dropped). Label maps decode to one channel:
//   - 8-bit grey PNGs (VOC SegmentationClassAug, ADE20K annotations, Cityscapes labelIds) keep their
//     stored values;
//   - palette PNGs (VOC SegmentationClass) and RGB PNGs are colour-coded: stb_image expands the
//     palette to RGB, so each colour is mapped back to its index in the VOC colour map, and a colour
//     that is not in the map is an error naming the file, the pixel and the colour.
// Anything else (16-bit or 1/2/4-bit grey, grey+alpha, RGBA labels, truncated or corrupt files)
// throws strata::Error naming the file and what was expected. Nothing is resized or clipped.
// Images of more than kMaxImagePixels pixels are refused from their header, before decoding: a
// corrupt header of a few hundred bytes would otherwise make the decoder allocate and fill
// gigabytes (stb_image pads missing JPEG data with zeros).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace strata::data {

struct Image {
  int height = 0;
  int width = 0;
  int channels = 0;
  std::vector<uint8_t> pixels;  // height * width * channels bytes

  Image() = default;
  Image(int h, int w, int c) : height(h), width(w), channels(c), pixels(static_cast<size_t>(h) * w * c) {}
  uint8_t* row(int y) { return pixels.data() + static_cast<size_t>(y) * width * channels; }
  const uint8_t* row(int y) const { return pixels.data() + static_cast<size_t>(y) * width * channels; }
  uint8_t& at(int y, int x, int c = 0) { return row(y)[x * channels + c]; }
  uint8_t at(int y, int x, int c = 0) const { return row(y)[x * channels + c]; }
};

using Rgb = std::array<uint8_t, 3>;

// The largest image decoded, in pixels: 8192 x 8192, above every segmentation dataset strata reads.
inline constexpr int64_t kMaxImagePixels = int64_t{1} << 26;

// The whole file; throws naming the path when it cannot be opened or read.
std::string read_file_bytes(const std::string& path);

// A JPEG or PNG photograph as RGB. `name` is the file name used in error messages.
Image decode_image(const std::string& bytes, const std::string& name);
Image read_image(const std::string& path);

// A label map as one channel (see the file comment for the accepted PNG kinds).
Image decode_label(const std::string& bytes, const std::string& name);
Image read_label(const std::string& path);

// Width and height from a JPEG or PNG header without decoding the pixels; another format or an
// empty size throws naming the file.
struct ImageSize {
  int height = 0;
  int width = 0;
};
ImageSize probe_image(const std::string& bytes, const std::string& name);

// Encoders: PNG of 1 (grey) or 3 (RGB) channels; baseline JPEG of 3 channels, quality 1..100; an
// 8-bit palette PNG whose palette is the VOC colour map (the format of VOC's SegmentationClass).
std::string encode_png(const Image& image);
std::string encode_jpeg(const Image& image, int quality);
std::string encode_voc_palette_png(const Image& labels);

// The Pascal VOC colour map (VOCdevkit's labelcolormap / bitget construction): index 0 is black,
// 1 (aeroplane) is (128,0,0), 255 (void) is (224,224,192). All 256 colours are distinct.
const std::array<Rgb, 256>& voc_colormap();
// The index whose colour is `rgb`, or -1 when the colour is not in the map.
int voc_color_index(Rgb rgb);

}  // namespace strata::data
