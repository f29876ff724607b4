// 2-D max and average pooling CPU kernels (T = float or double), NHWC; each takes the backend last,
// as its CUDA twin in kernels/cuda/pooling.h.
//   N batch, H x W input, OH x OW output, C channels; the window of output (oh, ow) taps rows
//   oh * stride_h - pad_h + kh * dilation_h, kh < kernel_h (and likewise for columns); taps outside
//   the input are padding. The caller validates the geometry (sizes >= 1, pad <= kernel / 2, output
//   sizes from PyTorch's formula) before calling. The per-axis window math is kernels/common/pooling.h.
#pragma once

#include <cstdint>

#include "kernels/common/pooling.h"
#include "kernels/cpu/backend.h"

namespace strata::kernels::cpu {

using common::Pool2dGeometry;

// y = max over the window's taps inside the input (padding is -inf); NaN propagates. argmax
// receives ih * W + iw of the chosen tap: the first maximum in row-major window order, the last NaN
// if any, -1 for a window with no tap inside the input. argmax may be null (no backward needed).
//   x: (N, H, W, C) -> y, argmax: (N, OH, OW, C)
template <class T>
void max_pool2d(T* y, int32_t* argmax, const T* x, const Pool2dGeometry& g, const Backend& backend);
// dx[n, ih, iw, c] = sum of dy[n, oh, ow, c] over the outputs whose argmax is (ih, iw); a gather
// over the outputs whose windows tap (ih, iw).     dy, argmax: (N, OH, OW, C) -> dx: (N, H, W, C)
template <class T>
void max_pool2d_backward(T* dx, const T* dy, const int32_t* argmax, const Pool2dGeometry& g, const Backend& backend);

// y = (sum over the window's taps inside the input) / divisor, where divisor is the window clipped
// to the padded input (count_include_pad) or the number of taps inside the input; 0 for a window
// with no tap inside the input. Dilation must be 1.    x: (N, H, W, C) -> y: (N, OH, OW, C)
template <class T>
void avg_pool2d(T* y, const T* x, const Pool2dGeometry& g, bool count_include_pad, const Backend& backend);
// dx[n, ih, iw, c] = sum of dy[n, oh, ow, c] / divisor(oh, ow) over the windows containing (ih, iw).
//   dy: (N, OH, OW, C) -> dx: (N, H, W, C)
template <class T>
void avg_pool2d_backward(T* dx, const T* dy, const Pool2dGeometry& g, bool count_include_pad, const Backend& backend);

}  // namespace strata::kernels::cpu
