// Index maps of the spatial shift ops (engine/ops/shift.h), shared by the CPU and CUDA kernels.
//
// roll_flip: torch.flip(torch.roll(x, shifts=(sh, sw), dims=(H, W)), dims=(W,)) without the flip
// when `flip` is false. Output pixel (h, w) reads input pixel
//   ((h - sh) mod H, ((flip ? W - 1 - w : w) - sw) mod W),
// a permutation, so the backward is the inverse gather: input pixel (h', w') receives the gradient of
// output pixel ((h' + sh) mod H, flip ? W - 1 - ((w' + sw) mod W) : (w' + sw) mod W).
//
// spatial_difference with offset (dy, dx): out[i, j] = x[i + oy, j + ox] - x[i + oy + dy, j + ox + dx]
// with oy = max(0, -dy), ox = max(0, -dx), over the (H - |dy|) x (W - |dx|) positions where both
// pixels exist. The backward is a gather: input pixel p receives +g at output p - (oy, ox) and
// -g at output p - (oy + dy, ox + dx), where those lie inside the output.
#pragma once

#include <cstdint>

#include "kernels/common/host_device.h"

namespace strata::kernels::common {

STRATA_HOST_DEVICE inline int64_t wrap(int64_t i, int64_t size) {
  int64_t r = i % size;
  return r < 0 ? r + size : r;
}

// The pixel a roll_flip output pixel reads (forward), or the output pixel an input pixel feeds
// (inverse = true), as a flat h * W + w index.
STRATA_HOST_DEVICE inline int64_t roll_flip_source(int64_t h, int64_t w, int64_t height, int64_t width, int64_t shift_h,
                                                   int64_t shift_w, bool flip, bool inverse) {
  if (!inverse) {
    const int64_t ww = flip ? width - 1 - w : w;
    return wrap(h - shift_h, height) * width + wrap(ww - shift_w, width);
  }
  const int64_t rw = wrap(w + shift_w, width);
  return wrap(h + shift_h, height) * width + (flip ? width - 1 - rw : rw);
}

struct DifferenceGeometry {
  int64_t dy, dx, oy, ox, out_h, out_w;
};

STRATA_HOST_DEVICE inline DifferenceGeometry difference_geometry(int64_t height, int64_t width, int64_t dy,
                                                                 int64_t dx) {
  const int64_t ady = dy < 0 ? -dy : dy, adx = dx < 0 ? -dx : dx;
  return {dy, dx, dy < 0 ? -dy : 0, dx < 0 ? -dx : 0, height - ady, width - adx};
}

}  // namespace strata::kernels::common
