// Bilinear resizing of NHWC activations, differentiable, f32/f64 on CPU and CUDA:
// torch.nn.functional.interpolate(x, size=(out_h, out_w), mode="bilinear", align_corners=...).
//
//   x: (N,H,W,C) -> y: (N,out_h,out_w,C), any scale up or down; H = 1 or W = 1 gives a constant
//   map along that axis. Source coordinates per axis (kernels/common/upsample.h):
//     align_corners = false: src = max(0, (dst + 0.5) * in / out - 0.5)
//     align_corners = true : src = dst * (in - 1) / (out - 1), 0 when out == 1
//
// The backward is a gather (each input pixel sums the weighted gradients of the output pixels whose
// bilinear footprint touches it), so it needs no saved tensors and no atomics.
//
// Bad input throws strata::Error naming the op: x not rank 4, not f32/f64, with an
// empty spatial dimension; out_h or out_w < 1.
#pragma once

#include <cstdint>

#include "engine/tensor.h"

namespace strata {

Tensor upsample_bilinear(const Tensor& x, int64_t out_h, int64_t out_w, bool align_corners);

// Nearest-neighbour resizing, torch.nn.functional.interpolate(x, size=(out_h, out_w), mode="nearest")
// (BiSeNet's context path): y[n, i, j, c] = x[n, src_h(i), src_w(j), c] with PyTorch's source index
// (kernels/common/upsample.h: the identity at the same size, i / 2 at twice the size, else
// min(floor(i * in / out), in - 1) in float). The backward gathers, per input pixel, the gradients of
// the outputs that copy it. Bad input throws as upsample_bilinear does.
Tensor upsample_nearest(const Tensor& x, int64_t out_h, int64_t out_w);

}  // namespace strata
