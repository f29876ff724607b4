// The colour each dataset draws its raw labels in (prediction images, TensorBoard samples): VOC's
// colour map (data/image.h), ADE20K's 150-class palette (0, "other", black), Cityscapes' 19
// train-id colours and COCO's 80 category colours (background black). Indices past a dataset's
// labels are black; the ignored label (255) is drawn in kIgnoredColour whatever the dataset, so
// "not evaluated" never looks like a class.
#pragma once

#include <array>

#include "data/dataset.h"
#include "data/image.h"

namespace strata::data {

const std::array<Rgb, 256>& dataset_palette(DatasetKind kind);

// VOC's void colour: the colour of ignored pixels (label 255) in every palette's pictures.
inline constexpr Rgb kIgnoredColour = {224, 224, 192};

}  // namespace strata::data
