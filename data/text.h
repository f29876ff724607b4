// Drawing on RGB images: filled rectangles and text in stb_easy_font's bitmap font (ASCII; other
// characters draw as '?'), for the pictures strata writes (incremental/prediction_images.h). One
// font pixel becomes a scale x scale square; lines are kTextLineHeight font pixels apart. Everything
// is clipped to the image.
#pragma once

#include <string>

#include "data/image.h"

namespace strata::data {

inline constexpr int kTextLineHeight = 12;

// Width of `text` in font pixels (its longest line).
int text_width(const std::string& text);
// Fills [x0, x1) x [y0, y1) of an RGB image.
void fill_rect(Image& image, int x0, int y0, int x1, int y1, Rgb colour);
// Draws `text` with its top-left corner at (x, y).
void draw_text(Image& image, int x, int y, const std::string& text, int scale, Rgb colour);

}  // namespace strata::data
