// 2-D max and average pooling on CUDA (T = float or double), NHWC, with the semantics, names and
// arguments of kernels/cpu/pooling.h, the backend last (average pooling's separable partial sums take
// its scratch). The geometry (kernels/common/pooling.h) is validated by the caller.
//   N batch, H x W input, OH x OW output, C channels.
#pragma once

#include <cstdint>

#include "kernels/common/pooling.h"
#include "kernels/cuda/backend.h"

namespace strata::kernels::cuda {

using common::Pool2dGeometry;

// y = max over the window's taps inside the input (padding is -inf), NaN propagating; argmax (may be
// null) = ih * W + iw of the first maximum in row-major window order (the last NaN), -1 for a
// window with no tap inside the input.       x: (N, H, W, C) -> y, argmax: (N, OH, OW, C)
template <class T>
void max_pool2d(T* y, int32_t* argmax, const T* x, const Pool2dGeometry& g, const Backend& backend);
// dx[n, ih, iw, c] = sum of dy over the outputs whose argmax is (ih, iw), gathered over the outputs
// whose windows tap (ih, iw).                 dy, argmax: (N, OH, OW, C) -> dx: (N, H, W, C)
template <class T>
void max_pool2d_backward(T* dx, const T* dy, const int32_t* argmax, const Pool2dGeometry& g, const Backend& backend);

// y = (sum over the window's taps inside the input) / divisor (count_include_pad: the window clipped
// to the padded input, else the taps inside the input; 0 for an empty window). Dilation 1.
//   x: (N, H, W, C) -> y: (N, OH, OW, C)
template <class T>
void avg_pool2d(T* y, const T* x, const Pool2dGeometry& g, bool count_include_pad, const Backend& backend);
// dx[n, ih, iw, c] = sum of dy[n, oh, ow, c] / divisor(oh, ow) over the windows containing (ih, iw).
//   dy: (N, OH, OW, C) -> dx: (N, H, W, C)
template <class T>
void avg_pool2d_backward(T* dx, const T* dy, const Pool2dGeometry& g, bool count_include_pad, const Backend& backend);

}  // namespace strata::kernels::cuda
