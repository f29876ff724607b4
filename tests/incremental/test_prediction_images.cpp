// Prediction pictures (incremental/prediction_images.h): the panels in the dataset's colours,
// ignored pixels marked, the overlay, the previous step's panel, the legend of the classes present
// (and only those), the errors; the datasets' palettes.
#include <algorithm>
#include <catch2/catch.hpp>
#include <set>
#include <string>
#include <vector>

#include "data/palette.h"
#include "incremental/prediction_images.h"

using namespace strata;
using namespace strata::incremental;

namespace {

constexpr int kH = 24, kW = 40;

data::Rgb pixel(const data::Image& image, int y, int x) {
  const uint8_t* p = image.pixels.data() + (static_cast<size_t>(y) * static_cast<size_t>(image.width) + x) * 3;
  return {p[0], p[1], p[2]};
}

// The colours of the rows from `top` down.
std::set<data::Rgb> colours_below(const data::Image& image, int top) {
  std::set<data::Rgb> out;
  for (int y = top; y < image.height; ++y) {
    for (int x = 0; x < image.width; ++x) out.insert(pixel(image, y, x));
  }
  return out;
}

// A 24x40 sample: a gradient image; ground truth channel 0 on the left half, 2 on the right, row 0
// ignored; prediction channel 1, row 5 channel 2.
EvalSample sample() {
  EvalSample s;
  s.index = 3;
  s.image = data::Image(kH, kW, 3);
  for (size_t i = 0; i < s.image.pixels.size(); ++i) s.image.pixels[i] = static_cast<uint8_t>(i * 7 % 251);
  s.labels = data::Image(kH, kW, 1);
  s.prediction = data::Image(kH, kW, 1);
  for (int y = 0; y < kH; ++y) {
    for (int x = 0; x < kW; ++x) {
      const size_t p = static_cast<size_t>(y * kW + x);
      s.labels.pixels[p] = y == 0 ? 255 : x < kW / 2 ? 0 : 2;
      s.prediction.pixels[p] = y == 5 ? 2 : 1;
    }
  }
  return s;
}

PredictionPicture voc_picture() {
  PredictionPicture picture;
  picture.palette = &data::dataset_palette(data::DatasetKind::voc);
  picture.raw = {0, 5, 9, 12};
  picture.names = {"background", "bus", "chair", "dog"};
  return picture;
}

}  // namespace

TEST_CASE("a prediction strip draws each panel in the dataset's colours with a legend of the classes present",
          "[cpu]") {
  const EvalSample s = sample();
  const PredictionPicture picture = voc_picture();
  const auto& voc = data::voc_colormap();
  const data::Image strip = prediction_strip(s, picture);
  CHECK(strip.width == 3 * kW);
  CHECK(strip.channels == 3);
  // The panels, then the titles' line and at least one legend row (12 font pixels each) and padding.
  CHECK(strip.height >= kH + 4 + 2 * 12 + 4);
  CHECK((strip.height - kH - 8) % 12 == 0);
  for (int y : {0, 5, 23}) {
    for (int x : {0, 19, 20, 39}) {
      INFO("pixel " << y << "," << x);
      CHECK(pixel(strip, y, x) == pixel(s.image, y, x));
      CHECK(pixel(strip, y, kW + x) == (y == 0 ? data::kIgnoredColour : x < kW / 2 ? voc[0] : voc[9]));
      CHECK(pixel(strip, y, 2 * kW + x) == (y == 5 ? voc[9] : voc[5]));
    }
  }
  // The legend: black text on white, a swatch of each class present (background, bus, chair) and of
  // the ignored pixels; none of the absent dog.
  const std::set<data::Rgb> legend = colours_below(strip, kH);
  for (const data::Rgb& c : {data::Rgb{0, 0, 0}, data::Rgb{255, 255, 255}, voc[5], voc[9], data::kIgnoredColour}) {
    CHECK(legend.count(c) == 1);
  }
  CHECK(legend.count(voc[12]) == 0);
  CHECK(legend.size() == 5);  // background's swatch is black: VOC's colour 0
  // Deterministic: the same sample draws the same pixels.
  CHECK(prediction_strip(s, picture).pixels == strip.pixels);
}

TEST_CASE("a prediction strip blends the predictions over the image with overlay, and shows the previous step's",
          "[cpu]") {
  EvalSample s = sample();
  s.teacher_prediction = data::Image(kH, kW, 1);
  std::fill(s.teacher_prediction.pixels.begin(), s.teacher_prediction.pixels.end(), uint8_t{3});
  PredictionPicture picture = voc_picture();
  picture.overlay = true;
  const auto& voc = data::voc_colormap();
  const data::Image strip = prediction_strip(s, picture);
  CHECK(strip.width == 4 * kW);
  auto blend = [](data::Rgb a, data::Rgb b) {
    return data::Rgb{static_cast<uint8_t>((a[0] + b[0] + 1) / 2), static_cast<uint8_t>((a[1] + b[1] + 1) / 2),
                     static_cast<uint8_t>((a[2] + b[2] + 1) / 2)};
  };
  for (int y : {1, 5, 23}) {
    for (int x : {0, 39}) {
      INFO("pixel " << y << "," << x);
      const data::Rgb image = pixel(s.image, y, x);
      CHECK(pixel(strip, y, kW + x) == (x < kW / 2 ? voc[0] : voc[9]));  // the ground truth stays flat
      CHECK(pixel(strip, y, 2 * kW + x) == blend(image, y == 5 ? voc[9] : voc[5]));
      CHECK(pixel(strip, y, 3 * kW + x) == blend(image, voc[12]));
    }
  }
  // The previous step's dog is in the legend now.
  CHECK(colours_below(strip, kH).count(voc[12]) == 1);
}

TEST_CASE("a prediction strip refuses a label the step does not have, and panels of another size", "[cpu]") {
  EvalSample s = sample();
  s.prediction.pixels[7] = 4;
  CHECK_THROWS_WITH(prediction_strip(s, voc_picture()),
                    Catch::Contains("test image 3") && Catch::Contains("label 4 but the step has 4 channels"));
  s = sample();
  s.teacher_prediction = data::Image(kH, kW - 1, 1);
  CHECK_THROWS_WITH(prediction_strip(s, voc_picture()),
                    Catch::Contains("previous step's prediction is 24x39x1, expected the image's 24x40x1"));
}

TEST_CASE("a long class name is shortened to fit the strip, and the legend wraps", "[cpu]") {
  EvalSample s = sample();
  std::fill(s.prediction.pixels.begin(), s.prediction.pixels.end(), uint8_t{3});
  PredictionPicture picture = voc_picture();
  picture.names[3] = std::string(200, 'x');
  const data::Image strip = prediction_strip(s, picture);
  CHECK(strip.width == 3 * kW);
  // background, chair, ignored and the shortened name cannot share one 120-pixel row.
  CHECK(strip.height >= kH + 4 + 3 * 12 + 4);
}

TEST_CASE("the datasets' palettes", "[cpu]") {
  const auto& ade = data::dataset_palette(data::DatasetKind::ade20k);
  CHECK(ade[0] == data::Rgb{0, 0, 0});
  CHECK(ade[1] == data::Rgb{120, 120, 120});  // wall
  CHECK(ade[150] == data::Rgb{92, 0, 255});
  CHECK(ade[151] == data::Rgb{0, 0, 0});
  const auto& cityscapes = data::dataset_palette(data::DatasetKind::cityscapes);
  CHECK(cityscapes[0] == data::Rgb{128, 64, 128});  // road
  CHECK(cityscapes[18] == data::Rgb{119, 11, 32});  // bicycle
  CHECK(&data::dataset_palette(data::DatasetKind::voc) == &data::voc_colormap());
  CHECK(data::voc_colormap()[255] == data::kIgnoredColour);
}
