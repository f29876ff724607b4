// Bilinear resampling along one axis, shared by the CPU and CUDA kernels.
//
// PyTorch's documented semantics for F.interpolate(mode="bilinear", size=...) (ATen UpSample.h,
// area_pixel_compute_scale / area_pixel_compute_source_index / compute_source_index_and_lambda):
//   align_corners = false: src = max(0, (dst + 0.5) * in / out - 0.5)
//   align_corners = true : src = dst * (in - 1) / (out - 1)      (0 when out == 1)
//   i0 = floor(src), i1 = i0 + 1 clamped to in - 1, lambda1 = clamp(src - i0, 0, 1), lambda0 = 1 - lambda1
// and the two axes combine as a tensor product: y = sum over taps of lambda_h * lambda_w * x.
// T is the compute type (float for f32 data, as in PyTorch, double for f64).
#pragma once

#include <cstdint>

#include "kernels/common/host_device.h"

namespace strata::kernels::common {

// One output index's two source taps along an axis. When i0 == i1 (the last input, or an input of
// size 1) both weights read the same element and sum to one.
template <class T>
struct BilinearTaps {
  int64_t i0;
  int64_t i1;
  T lambda0;
  T lambda1;
};

template <class T>
STRATA_HOST_DEVICE inline T bilinear_scale(int64_t in_size, int64_t out_size, bool align_corners) {
  if (align_corners) return out_size > 1 ? static_cast<T>(in_size - 1) / static_cast<T>(out_size - 1) : T(0);
  return static_cast<T>(in_size) / static_cast<T>(out_size);
}

template <class T>
STRATA_HOST_DEVICE inline T bilinear_source_index(T scale, int64_t dst, bool align_corners) {
  if (align_corners) return scale * static_cast<T>(dst);
  T src = scale * (static_cast<T>(dst) + T(0.5)) - T(0.5);
  return src < T(0) ? T(0) : src;
}

template <class T>
STRATA_HOST_DEVICE inline BilinearTaps<T> bilinear_taps(T scale, int64_t dst, int64_t in_size, bool align_corners) {
  T src = bilinear_source_index(scale, dst, align_corners);
  int64_t i0 = static_cast<int64_t>(src);  // src >= 0, so truncation is floor
  // Rounding of scale * dst can land a hair past the last input; the tap must stay inside.
  if (i0 > in_size - 1) i0 = in_size - 1;
  int64_t i1 = i0 < in_size - 1 ? i0 + 1 : i0;
  T lambda1 = src - static_cast<T>(i0);
  lambda1 = lambda1 < T(0) ? T(0) : (lambda1 > T(1) ? T(1) : lambda1);
  return {i0, i1, T(1) - lambda1, lambda1};
}

}  // namespace strata::kernels::common
