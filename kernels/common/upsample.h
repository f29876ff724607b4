// Bilinear resampling along one axis, shared by the CPU and CUDA kernels.
//
// PyTorch's documented semantics for F.interpolate(mode="bilinear", size=...) (ATen UpSample.h,
// area_pixel_compute_scale / area_pixel_compute_source_index / compute_source_index_and_lambda):
//   align_corners = false: src = max(0, (dst + 0.5) * in / out - 0.5)
//   align_corners = true : src = dst * (in - 1) / (out - 1)      (0 when out == 1)
//   i0 = floor(src), i1 = i0 + 1 clamped to in - 1, lambda1 = clamp(src - i0, 0, 1), lambda0 = 1 - lambda1
// and the two axes combine as a tensor product: y = sum over taps of lambda_h * lambda_w * x.
// The backward is the adjoint, dx = A_h^T dy A_w, computed as a gather: input i receives from the
// output range whose taps touch it (bilinear_footprint) with bilinear_weight each.
// T is the compute type (float for f32 data, as in PyTorch, double for f64).
#pragma once

#include <cmath>
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

// The weight with which output taps t read input i: lambda0 at i0, lambda1 at i1, their sum when
// both taps are the same element, 0 when neither is i.
template <class T>
STRATA_HOST_DEVICE inline T bilinear_weight(const BilinearTaps<T>& t, int64_t i) {
  if (t.i0 == t.i1) return t.i0 == i ? t.lambda0 + t.lambda1 : T(0);
  return i == t.i0 ? t.lambda0 : (i == t.i1 ? t.lambda1 : T(0));
}

// The outputs [first, last) whose taps touch input i: the o with i0(o) <= i <= i1(o). Both taps are
// non-decreasing in o (the source index is monotone and rounding is monotone), so this is one range:
// first = the first o with i1(o) >= i, last = the first o with i0(o) >= i + 1. Each bound is
// estimated by inverting the source-index formula, then moved to the exact boundary by evaluating
// the taps themselves, so it agrees with bilinear_taps bit for bit whatever the rounding.
struct BilinearRange {
  int64_t first;
  int64_t last;
};

namespace detail {

// The first o whose source index reaches v, by the real-valued formula (a guess to start from).
template <class T>
STRATA_HOST_DEVICE inline int64_t first_output_reaching(T scale, T v, int64_t out_size, bool align_corners) {
  if (!(scale > T(0))) return 0;
  T bound = align_corners ? v / scale : (v + T(0.5)) / scale - T(0.5);
  if (!(bound > T(0))) return 0;
  if (bound >= static_cast<T>(out_size)) return out_size;
  return static_cast<int64_t>(std::ceil(bound));
}

// Whether output o's taps satisfy the bound searched for: i1(o) >= target (upper tap) or
// i0(o) >= target (lower tap).
template <class T>
STRATA_HOST_DEVICE inline bool tap_reaches(T scale, int64_t o, int64_t in_size, bool align_corners, int64_t target,
                                           bool upper_tap) {
  BilinearTaps<T> t = bilinear_taps<T>(scale, o, in_size, align_corners);
  return (upper_tap ? t.i1 : t.i0) >= target;
}

template <class T>
STRATA_HOST_DEVICE inline int64_t first_output_with_tap(T scale, int64_t guess, int64_t in_size, int64_t out_size,
                                                        bool align_corners, int64_t target, bool upper_tap) {
  int64_t o = guess < 0 ? 0 : (guess > out_size ? out_size : guess);
  while (o > 0 && tap_reaches<T>(scale, o - 1, in_size, align_corners, target, upper_tap)) --o;
  while (o < out_size && !tap_reaches<T>(scale, o, in_size, align_corners, target, upper_tap)) ++o;
  return o;
}

}  // namespace detail

template <class T>
STRATA_HOST_DEVICE inline BilinearRange bilinear_footprint(T scale, int64_t i, int64_t in_size, int64_t out_size,
                                                           bool align_corners) {
  int64_t first_guess = detail::first_output_reaching<T>(scale, static_cast<T>(i - 1), out_size, align_corners);
  int64_t last_guess = detail::first_output_reaching<T>(scale, static_cast<T>(i + 1), out_size, align_corners);
  int64_t first = detail::first_output_with_tap<T>(scale, first_guess, in_size, out_size, align_corners, i, true);
  int64_t last = detail::first_output_with_tap<T>(scale, last_guess, in_size, out_size, align_corners, i + 1, false);
  return {first, last > first ? last : first};
}

// Nearest-neighbour resampling along one axis, PyTorch's F.interpolate(mode="nearest", size=...)
// (ATen UpSample.h, nearest_idx): the same size maps o to o, twice the size to o / 2, and otherwise
// src = min(floor(o * s), in - 1) with s = in / out computed in float whatever the data type.
STRATA_HOST_DEVICE inline int64_t nearest_source_index(int64_t dst, int64_t in_size, int64_t out_size) {
  if (out_size == in_size) return dst;
  if (out_size == 2 * in_size) return dst >> 1;
  const float scale = static_cast<float>(in_size) / static_cast<float>(out_size);
  const int64_t src = static_cast<int64_t>(floorf(static_cast<float>(dst) * scale));
  return src < in_size - 1 ? src : in_size - 1;
}

// The outputs [first, last) whose source index is i: one range, the source index being non-decreasing
// in the output index. Estimated from i * out / in, then moved to the exact boundaries by evaluating
// nearest_source_index itself, so it agrees with the forward whatever the float rounding.
STRATA_HOST_DEVICE inline BilinearRange nearest_footprint(int64_t i, int64_t in_size, int64_t out_size) {
  auto first_reaching = [&](int64_t target) {
    int64_t o = target * out_size / in_size;
    o = o < 0 ? 0 : (o > out_size ? out_size : o);
    while (o > 0 && nearest_source_index(o - 1, in_size, out_size) >= target) --o;
    while (o < out_size && nearest_source_index(o, in_size, out_size) < target) ++o;
    return o;
  };
  const int64_t first = first_reaching(i), last = first_reaching(i + 1);
  return {first, last > first ? last : first};
}

}  // namespace strata::kernels::common
