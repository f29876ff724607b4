// PLOP's entropy pseudo-labelling of background (SPEC-continual.md §3.7 (a)): the per-pixel math,
// written once for the CPU and CUDA kernels.
//
// The teacher's logits z° (N,h,w,C_old) are read at the labels' resolution H x W through bilinear
// interpolation (kernels/common/upsample.h, the taps of upsample_bilinear): PLOP upsamples the old
// model's logits to the crop before its softmax, so every value here is that of a full-resolution
// pixel, and no full-resolution plane of C_old values is stored. Per pixel, with p = softmax(z°):
//   ĉ = argmax_c p_c (the first maximum)
//   e = the normalised entropy, by the variant:
//     reference  PLOP's code (train.py `entropy`, then `/ max_value`):
//                e = −(1/log(C_old + 1e-8)) · (1/C_old) Σ_c p_c log(p_c + 1e-8) / log(C_tot),
//                a mean over channels divided by log C_old, then again by log C_tot
//                (the double normalisation: e <= 1/(C_old log C_tot), SPEC §3.7 quirks)
//     fixed      e = H(p)/log C_old = (lse − Σ_c p_c z°_c)/log C_old, the entropy in [0, 1]
//   bin(e) = min(trunc(e · 100), 99), PLOP's `clamp((values * nb_bins).long(), max=nb_bins - 1)`.
// The threshold pass counts the pixels labelled 0 into the histogram row ĉ at bin(e); the training
// op keeps ĉ as the label of a pixel with label < C_old when e < τ_ĉ (a NaN τ never), else 255.
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/common/host_device.h"
#include "kernels/common/upsample.h"

namespace strata::kernels::common {

enum class PseudoMedian : int32_t { reference, fixed };

inline constexpr int64_t kEntropyBins = 100;  // PLOP's nb_bins in entropy mode

struct PseudoLabelProblem {
  int64_t batch = 0;
  int64_t height = 0, width = 0;          // the labels' resolution
  int64_t low_height = 0, low_width = 0;  // the teacher logits' resolution
  int64_t old_channels = 0;               // C_old: the teacher's channels (>= 2)
  int64_t total_channels = 0;             // C_tot: the step's classes (the reference's log C_tot)
  bool align_corners = false;
  PseudoMedian median = PseudoMedian::reference;
  int64_t ignore_index = 255;  // written where a background pixel's pseudo-label is rejected

  STRATA_HOST_DEVICE int64_t pixels() const { return batch * height * width; }
};

// Channel c of one image's low-resolution map (h, w, channels) at a full-resolution pixel's taps, in
// PyTorch's order (each row's two columns blended, then the two rows), the same bits on both backends.
template <class T>
STRATA_HOST_DEVICE inline T interpolate_channel(const T* image, int64_t low_width, int64_t channels,
                                                const BilinearTaps<T>& v, const BilinearTaps<T>& h, int64_t c) {
  const T* r0 = image + v.i0 * low_width * channels;
  const T* r1 = image + v.i1 * low_width * channels;
  const T top = h.lambda0 * r0[h.i0 * channels + c] + h.lambda1 * r0[h.i1 * channels + c];
  const T bottom = h.lambda0 * r1[h.i0 * channels + c] + h.lambda1 * r1[h.i1 * channels + c];
  return v.lambda0 * top + v.lambda1 * bottom;
}

template <class T>
struct TeacherVerdict {
  int64_t cls;  // ĉ
  T entropy;    // e, normalised as the variant says
};

// ĉ and e of one pixel; channel(c) returns the pixel's teacher logit of channel c (interpolated),
// and is called twice per channel (an online max and sum, then the probabilities' sums).
template <class T, class Channel>
STRATA_HOST_DEVICE inline TeacherVerdict<T> teacher_verdict(const PseudoLabelProblem& problem, Channel channel) {
  const int64_t old = problem.old_channels;
  T max = channel(0), sum = 1;
  int64_t cls = 0;
  for (int64_t c = 1; c < old; ++c) {
    const T z = channel(c);
    if (z > max) {
      sum = sum * std::exp(max - z) + T(1);
      max = z;
      cls = c;
    } else {
      sum += std::exp(z - max);
    }
  }
  T acc = 0;
  if (problem.median == PseudoMedian::reference) {
    for (int64_t c = 0; c < old; ++c) {
      const T p = std::exp(channel(c) - max) / sum;
      acc += p * std::log(p + T(1e-8));
    }
    const T factor = static_cast<T>(1.0 / std::log(static_cast<double>(old) + 1e-8));
    const T mean = acc / static_cast<T>(old);
    return {cls, (-factor * mean) / std::log(static_cast<T>(problem.total_channels))};
  }
  // H = log(sum) − Σ_c p_c (z_c − max): exact at p_c = 0 where p log p needs a limit.
  for (int64_t c = 0; c < old; ++c) {
    const T shifted = channel(c) - max;
    acc += std::exp(shifted) / sum * shifted;
  }
  return {cls, (std::log(sum) - acc) / std::log(static_cast<T>(old))};
}

// ĉ and e of full-resolution pixel (n, y, x) from the teacher's low-resolution logits (N,h,w,C_old).
template <class T>
STRATA_HOST_DEVICE inline TeacherVerdict<T> teacher_pixel_verdict(const PseudoLabelProblem& problem, const T* teacher,
                                                                  int64_t n, const BilinearTaps<T>& v,
                                                                  const BilinearTaps<T>& h) {
  const T* image = teacher + n * problem.low_height * problem.low_width * problem.old_channels;
  return teacher_verdict<T>(
      problem, [&](int64_t c) { return interpolate_channel(image, problem.low_width, problem.old_channels, v, h, c); });
}

// The histogram bin of a normalised entropy (a NaN entropy lands in the last bin).
template <class T>
STRATA_HOST_DEVICE inline int64_t entropy_bin(T entropy) {
  const T scaled = entropy * static_cast<T>(kEntropyBins);
  if (!(scaled < static_cast<T>(kEntropyBins - 1))) return kEntropyBins - 1;
  return scaled > T(0) ? static_cast<int64_t>(scaled) : 0;
}

}  // namespace strata::kernels::common
