// Bilinear upsampling/downsampling on CUDA (T = float or double), NHWC, with the semantics, names and
// arguments of kernels/cpu/upsample.h, the backend last (the backward's row pass takes its scratch);
// the per-axis math is
// kernels/common/upsample.h (PyTorch's F.interpolate mode="bilinear", both align_corners values).
//   N batch, H x W input size, OH x OW output size, C channels; H, W, OH, OW >= 1.
#pragma once

#include <cstdint>

#include "kernels/cuda/backend.h"

namespace strata::kernels::cuda {

// y[n, oh, ow, c] = sum over the two taps per axis of lambda_h * lambda_w * x[n, ih, iw, c]
//   x: (N, H, W, C) -> y: (N, OH, OW, C)
template <class T>
void upsample_bilinear(T* y, const T* x, int64_t batch, int64_t in_h, int64_t in_w, int64_t channels, int64_t out_h,
                       int64_t out_w, bool align_corners, const Backend& backend);

// The adjoint as a gather: dx[n, ih, iw, c] = sum over the output pixels whose taps touch (ih, iw)
// of their weight times dy; each input element has one writer (no atomics).
//   dy: (N, OH, OW, C) -> dx: (N, H, W, C)
template <class T>
void upsample_bilinear_backward(T* dx, const T* dy, int64_t batch, int64_t in_h, int64_t in_w, int64_t channels,
                                int64_t out_h, int64_t out_w, bool align_corners, const Backend& backend);

// Nearest-neighbour resampling and its adjoint, as kernels/cpu/upsample.h's.
template <class T>
void upsample_nearest(T* y, const T* x, int64_t batch, int64_t in_h, int64_t in_w, int64_t channels, int64_t out_h,
                      int64_t out_w, const Backend& backend);
template <class T>
void upsample_nearest_backward(T* dx, const T* dy, int64_t batch, int64_t in_h, int64_t in_w, int64_t channels,
                               int64_t out_h, int64_t out_w, const Backend& backend);

}  // namespace strata::kernels::cuda
