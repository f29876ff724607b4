#include "incremental/prediction_images.h"

#include <algorithm>
#include <cmath>

#include "data/palette.h"
#include "data/text.h"
#include "engine/error.h"

namespace strata::incremental {

namespace {

constexpr data::Rgb kWhite = {255, 255, 255}, kBlack = {0, 0, 0};
constexpr int kSwatch = 8;  // legend swatch side, in font pixels

// `text` shortened (with "..") until its width at `scale` is at most `width` pixels.
std::string fitted(std::string text, int scale, int width) {
  if (data::text_width(text) * scale <= width) return text;
  while (!text.empty() && data::text_width(text + "..") * scale > width) text.pop_back();
  return text.empty() ? text : text + "..";
}

void check_panel(const EvalSample& sample, const data::Image& panel, const char* what) {
  check(panel.height == sample.image.height && panel.width == sample.image.width && panel.channels == 1,
        "prediction picture of test image ", sample.index, ": the ", what, " is ", panel.height, "x", panel.width, "x",
        panel.channels, ", expected the image's ", sample.image.height, "x", sample.image.width, "x1");
}

}  // namespace

data::Image prediction_strip(const EvalSample& sample, const PredictionPicture& picture) {
  check(picture.palette != nullptr, "prediction_strip: no palette");
  check(picture.raw.size() == picture.names.size(), "prediction_strip: ", picture.raw.size(), " raw ids for ",
        picture.names.size(), " class names");
  const int h = sample.image.height, w = sample.image.width;
  check(sample.image.channels == 3, "prediction picture of test image ", sample.index, ": expected an RGB image");
  check_panel(sample, sample.labels, "ground truth");
  check_panel(sample, sample.prediction, "prediction");
  const bool teacher = !sample.teacher_prediction.pixels.empty();
  if (teacher) check_panel(sample, sample.teacher_prediction, "previous step's prediction");

  std::vector<const data::Image*> maps = {&sample.labels, &sample.prediction};
  if (teacher) maps.push_back(&sample.teacher_prediction);
  const size_t channels = picture.raw.size();
  std::vector<bool> present(channels, false);
  bool ignored = false;
  const size_t pixels = static_cast<size_t>(h) * static_cast<size_t>(w);
  for (const data::Image* map : maps) {
    for (size_t p = 0; p < pixels; ++p) {
      const uint8_t c = map->pixels[p];
      if (c == 255) {
        ignored = true;
        continue;
      }
      check(c < channels, "prediction picture of test image ", sample.index, ": label ", static_cast<int>(c),
            " but the step has ", channels, " channels");
      present[c] = true;
    }
  }
  auto colour = [&](uint8_t c) {
    return c == 255 ? data::kIgnoredColour : (*picture.palette)[static_cast<size_t>(picture.raw[c]) % 256];
  };

  const int panels = teacher ? 4 : 3;
  const int strip_width = panels * w;
  const int scale = w >= 160 ? 2 : 1;
  const int line = data::kTextLineHeight * scale, pad = 4 * scale, swatch = kSwatch * scale, gap = 3 * scale;

  // The legend's entries and their rows, laid out left to right, wrapping at the strip's width.
  struct Entry {
    data::Rgb colour;
    std::string text;
    int x = 0, row = 0;
  };
  std::vector<Entry> entries;
  for (size_t c = 0; c < channels; ++c) {
    if (present[c]) entries.push_back({colour(static_cast<uint8_t>(c)), picture.names[c]});
  }
  if (ignored) entries.push_back({data::kIgnoredColour, "ignored"});
  int x = pad, row = 0;
  for (Entry& e : entries) {
    e.text = fitted(e.text, scale, strip_width - 2 * pad - swatch - gap);
    const int width = swatch + gap + data::text_width(e.text) * scale;
    if (x > pad && x + width > strip_width - pad) {
      x = pad;
      ++row;
    }
    e.x = x;
    e.row = row;
    x += width + 3 * gap;
  }
  const int rows = entries.empty() ? 0 : row + 1;

  data::Image strip(h + pad + line * (1 + rows) + pad, strip_width, 3);
  data::fill_rect(strip, 0, h, strip_width, strip.height, kWhite);
  for (int y = 0; y < h; ++y) {
    uint8_t* out = strip.pixels.data() + static_cast<size_t>(y) * static_cast<size_t>(strip_width) * 3;
    for (int i = 0; i < w; ++i) {
      const size_t p = static_cast<size_t>(y) * static_cast<size_t>(w) + static_cast<size_t>(i);
      const uint8_t* rgb = sample.image.pixels.data() + 3 * p;
      std::copy_n(rgb, 3, out + 3 * i);
      for (size_t m = 0; m < maps.size(); ++m) {
        const data::Rgb label = colour(maps[m]->pixels[p]);
        uint8_t* panel = out + 3 * (static_cast<size_t>(m + 1) * static_cast<size_t>(w) + static_cast<size_t>(i));
        const bool blend = picture.overlay && m > 0;  // the ground truth stays flat: it is the reference
        for (int k = 0; k < 3; ++k) {
          panel[k] = blend ? static_cast<uint8_t>((rgb[k] + label[static_cast<size_t>(k)] + 1) / 2)
                           : label[static_cast<size_t>(k)];
        }
      }
    }
  }
  const std::vector<std::string> titles = {"image", "ground truth", "prediction", "previous step"};
  for (int p = 0; p < panels; ++p) {
    data::draw_text(strip, p * w + pad, h + pad, fitted(titles[static_cast<size_t>(p)], scale, w - 2 * pad), scale,
                    kBlack);
  }
  for (const Entry& e : entries) {
    const int top = h + pad + line * (1 + e.row);
    // A black frame, so a colour close to the white background still shows.
    data::fill_rect(strip, e.x, top, e.x + swatch, top + swatch, kBlack);
    data::fill_rect(strip, e.x + 1, top + 1, e.x + swatch - 1, top + swatch - 1, e.colour);
    data::draw_text(strip, e.x + swatch + gap, top, e.text, scale, kBlack);
  }
  return strip;
}

}  // namespace strata::incremental
