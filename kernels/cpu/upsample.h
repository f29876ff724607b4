// Bilinear upsampling/downsampling CPU kernels (T = float or double), NHWC; each takes the backend
// last, as its CUDA twin in kernels/cuda/upsample.h.
//   N batch, H x W input size, OH x OW output size, C channels; H, W, OH, OW >= 1.
// The per-axis source-index math is kernels/common/upsample.h (PyTorch's F.interpolate
// mode="bilinear" semantics, both align_corners values).
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/common/upsample.h"
#include "kernels/cpu/backend.h"

namespace strata::kernels::cpu {

// The two source taps of every output index along one axis (kernels/common/upsample.h), computed
// once per call: the upsampling kernels and the fused losses (kernels/cpu/fused_losses.cpp) read them.
template <class T>
std::vector<common::BilinearTaps<T>> bilinear_axis_taps(int64_t in_size, int64_t out_size, bool align_corners) {
  const T scale = common::bilinear_scale<T>(in_size, out_size, align_corners);
  std::vector<common::BilinearTaps<T>> taps(static_cast<size_t>(out_size));
  for (int64_t o = 0; o < out_size; ++o) {
    taps[static_cast<size_t>(o)] = common::bilinear_taps<T>(scale, o, in_size, align_corners);
  }
  return taps;
}

// y[n, oh, ow, c] = sum over the two taps per axis of lambda_h * lambda_w * x[n, ih, iw, c]
//   x: (N, H, W, C) -> y: (N, OH, OW, C)
template <class T>
void upsample_bilinear(T* y, const T* x, int64_t batch, int64_t in_h, int64_t in_w, int64_t channels, int64_t out_h,
                       int64_t out_w, bool align_corners, const Backend& backend);

// The adjoint, written as a gather: dx[n, ih, iw, c] = sum over the output pixels whose taps touch
// (ih, iw) of their weight times dy. Each input pixel is written by exactly one thread, so no
// atomics and results independent of the thread count.
//   dy: (N, OH, OW, C) -> dx: (N, H, W, C)
template <class T>
void upsample_bilinear_backward(T* dx, const T* dy, int64_t batch, int64_t in_h, int64_t in_w, int64_t channels,
                                int64_t out_h, int64_t out_w, bool align_corners, const Backend& backend);

// Nearest-neighbour resampling (kernels/common/upsample.h, PyTorch's mode="nearest"):
//   y[n, oh, ow, c] = x[n, src_h(oh), src_w(ow), c]
template <class T>
void upsample_nearest(T* y, const T* x, int64_t batch, int64_t in_h, int64_t in_w, int64_t channels, int64_t out_h,
                      int64_t out_w, const Backend& backend);

// Its adjoint as a gather: dx[n, ih, iw, c] = the sum of dy over the outputs whose source is (ih, iw)
// (0 for an input no output reads).
template <class T>
void upsample_nearest_backward(T* dx, const T* dy, int64_t batch, int64_t in_h, int64_t in_w, int64_t channels,
                               int64_t out_h, int64_t out_w, const Backend& backend);

}  // namespace strata::kernels::cpu
