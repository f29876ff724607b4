#include "data/text.h"

#include <stb_easy_font.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/error.h"

namespace strata::data {

namespace {

// stb_easy_font draws ASCII 32..126; anything else becomes '?'.
std::string printable(const std::string& text) {
  std::string out = text;
  for (char& c : out) {
    if (c < 32 || c > 126) c = '?';
  }
  return out;
}

}  // namespace

int text_width(const std::string& text) {
  std::string copy = printable(text);
  return stb_easy_font_width(copy.data());
}

void fill_rect(Image& image, int x0, int y0, int x1, int y1, Rgb colour) {
  check(image.channels == 3, "fill_rect: expected an RGB image, got ", image.channels, " channels");
  x0 = std::max(x0, 0);
  y0 = std::max(y0, 0);
  x1 = std::min(x1, image.width);
  y1 = std::min(y1, image.height);
  for (int y = y0; y < y1; ++y) {
    uint8_t* row = image.pixels.data() + static_cast<size_t>(y) * static_cast<size_t>(image.width) * 3;
    for (int x = x0; x < x1; ++x) std::copy(colour.begin(), colour.end(), row + 3 * x);
  }
}

void draw_text(Image& image, int x, int y, const std::string& text, int scale, Rgb colour) {
  check(scale >= 1, "draw_text: scale must be >= 1, got ", scale);
  std::string copy = printable(text);
  // stb_easy_font.h: about 270 bytes of vertices per character; each quad is four 16-byte vertices
  // (x, y, z as floats, then a colour) of an axis-aligned rectangle.
  std::vector<char> vertices(copy.size() * 300 + 64);
  const int quads = stb_easy_font_print(0, 0, copy.data(), nullptr, vertices.data(), static_cast<int>(vertices.size()));
  const auto scaled = [scale](float v) { return static_cast<int>(std::lround(v * static_cast<float>(scale))); };
  for (int q = 0; q < quads; ++q) {
    float x_min = 1e30f, y_min = 1e30f, x_max = -1e30f, y_max = -1e30f;
    for (int v = 0; v < 4; ++v) {
      float xy[2];
      std::copy_n(vertices.data() + (static_cast<size_t>(q) * 4 + static_cast<size_t>(v)) * 16, sizeof xy,
                  reinterpret_cast<char*>(xy));
      x_min = std::min(x_min, xy[0]);
      x_max = std::max(x_max, xy[0]);
      y_min = std::min(y_min, xy[1]);
      y_max = std::max(y_max, xy[1]);
    }
    fill_rect(image, x + scaled(x_min), y + scaled(y_min), x + scaled(x_max), y + scaled(y_max), colour);
  }
}

}  // namespace strata::data
