// Pictures of predictions: what `--save-predictions DIR` writes for every evaluated image and what
// the trainer's TensorBoard samples (--sample-num) show.
//
// One strip per image, panels side by side at the image's size:
//   image | ground truth | prediction [| the previous step's model's prediction]
// each label in its dataset's colours (data/palette.h: raw label ids, so a class keeps its colour
// across steps), ignored pixels (255) in data::kIgnoredColour; with `overlay`, the prediction panels
// blend their colours half over the image. Under the panels, on white: each panel's title, then a
// legend of a colour swatch and the name of every class that appears in any panel (in channel
// order), and "ignored" when the ground truth has ignored pixels. Text is stb_easy_font's bitmap
// font, drawn at twice its size when a panel is at least 160 pixels wide. Deterministic: the same
// sample gives the same pixels, so the PNG bytes are stable for a seed.
#pragma once

#include <array>
#include <string>
#include <vector>

#include "data/image.h"
#include "incremental/evaluate.h"

namespace strata::incremental {

struct PredictionPicture {
  const std::array<data::Rgb, 256>* palette = nullptr;  // by raw label id (data::dataset_palette)
  std::vector<int> raw;                                 // each channel's raw label id (Task::channel_order)
  std::vector<std::string> names;                       // each channel's class name
  bool overlay = false;
};

// The strip of `sample` (its teacher_prediction panel when that is not empty). Throws naming the
// sample when a panel's size differs from the image's or a label is a channel the picture does not
// name.
data::Image prediction_strip(const EvalSample& sample, const PredictionPicture& picture);

}  // namespace strata::incremental
