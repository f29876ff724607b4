// The per-pixel math of the fused segmentation losses, written once for the CPU and CUDA kernels.
//
// A fused loss reads the low-resolution logits z_lo (N,h,w,C) of the model being trained and, for
// the distillation terms, the teacher's z°_lo (N,h,w,C_old), and evaluates the losses the reference
// methods compute on logits bilinearly upsampled to the labels' H x W (SPEC-continual.md §3.0):
// at every full-resolution pixel p the channel values z_c(p) and z°_c(p) are interpolated from the
// four low-resolution taps of p (kernels/common/upsample.h, the same taps as upsample_bilinear), so
// no full-resolution plane of C values is ever stored. Per pixel, with p_c = softmax(z)_c,
// q = softmax(α z°) over C_old channels, y the label and 1/C_old the KD normalisation:
//
//   term                  loss l(p)                                   dl/dz_c
//   cross_entropy         lse − z_y                                   p_c − [c = y]
//   unbiased_ce, y<C_old  lse − lse_old                               p_c − [c < C_old] e^{z_c − lse_old}
//   unbiased_ce, y>=C_old lse − z_y                                   p_c − [c = y]
//   kd                    −(Σ_{c<C_old} q_c z_c − lse_old) / C_old    −(q_c − e^{z_c − lse_old}) / C_old, c < C_old
//   unbiased_kd           −(q_0 lse_bg + Σ_{0<c<C_old} q_c z_c − lse) / C_old
//                                                                     −(q_0 [c ∈ bg] e^{z_c − lse_bg}
//                                                                       + [0 < c < C_old] q_c − p_c) / C_old
//   icarl_bce             Σ_c bce(z_c, [c = y])                       σ(z_c) − [c = y]
//   icarl_distillation    Σ_{c<C_old} bce(z_c, σ(z°_c))                σ(z_c) − σ(z°_c), c < C_old
//
// with lse = logsumexp over all C channels, lse_old over [0, C_old), lse_bg over the background and
// the new channels {0} ∪ [C_old, C) (MiB's p̂_0), and Σ_c q_c = 1 used to simplify (the unfused
// composition of incremental/losses.h computes the same values; tests hold the two together).
// Labelled terms are 0 at pixels whose label is ignore_index (or invalid, which the label statistics
// report). icarl_distillation uses the raw teacher logits (no α), as LwF-MC does.
//
// The forward visits each pixel's channels once (online softmax: a running maximum and rescaled
// sums), so the CUDA kernel can interpolate every channel on the fly without a second pass over
// global memory, and stores four numbers per pixel (PixelStats) for the backward. The backward's
// gradient at a full-resolution pixel is the sum over the terms of W_k · dl_k/dz_c, W_k being the
// term's upstream gradient times its weight and reduction factor; the kernels then apply the
// upsampling's adjoint (each pixel's gradient spread back to its four taps) without storing it.
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/common/host_device.h"
#include "kernels/common/losses.h"
#include "kernels/common/sigmoid.h"
#include "kernels/common/upsample.h"

namespace strata::kernels::common {

enum class PixelLoss : int32_t {
  cross_entropy,
  unbiased_cross_entropy,
  knowledge_distillation,
  unbiased_knowledge_distillation,
  icarl_bce,
  icarl_distillation,
};

STRATA_HOST_DEVICE inline bool pixel_loss_is_labelled(PixelLoss kind) {
  return kind == PixelLoss::cross_entropy || kind == PixelLoss::unbiased_cross_entropy || kind == PixelLoss::icarl_bce;
}

STRATA_HOST_DEVICE inline bool pixel_loss_reads_teacher(PixelLoss kind) {
  return kind == PixelLoss::knowledge_distillation || kind == PixelLoss::unbiased_knowledge_distillation ||
         kind == PixelLoss::icarl_distillation;
}

inline constexpr int kMaxFusedTerms = 6;

// One fused call: the sizes, the terms and their reductions. Plain data, passed to kernels by value.
struct FusedLossProblem {
  int64_t batch = 0;
  int64_t height = 0, width = 0;          // the labels' (full) resolution
  int64_t low_height = 0, low_width = 0;  // the logits' resolution
  int64_t channels = 0;                   // C = C_tot of the logits
  int64_t old_channels = 0;               // C_old: the teacher's channels and the unbiased terms' split
  bool align_corners = false;
  double alpha = 1.0;  // multiplies the teacher logits before their softmax (MiB's --alpha)
  int64_t ignore_index = 255;
  int terms = 0;
  PixelLoss kinds[kMaxFusedTerms] = {};
  // Term k's reduced value is weight_k · scale_k · Σ_p l_k(p), scale_k from its reduction
  // (1/valid labels when per_valid).
  double weights[kMaxFusedTerms] = {};
  LossReduction reductions[kMaxFusedTerms] = {};

  STRATA_HOST_DEVICE int64_t pixels() const { return batch * height * width; }
  STRATA_HOST_DEVICE bool reads_teacher() const {
    for (int k = 0; k < terms; ++k) {
      if (pixel_loss_reads_teacher(kinds[k])) return true;
    }
    return false;
  }
};

// What the backward needs of each full-resolution pixel besides its logits: the four logsumexps and
// the teacher's background probability q_0 (those no term uses are left at 0).
template <class T>
struct PixelStats {
  T lse, lse_old, lse_bg, lse_teacher, teacher_background;
};
inline constexpr int kPixelStats = 5;  // values of PixelStats, stored contiguously per pixel

// A running logsumexp: the maximum seen and the sum of exp(v − max), rescaled when the maximum grows.
template <class Acc>
struct OnlineLogSumExp {
  Acc max = -INFINITY;
  Acc sum = 0;
  STRATA_HOST_DEVICE void add(Acc v) {
    if (v > max) {
      sum = sum * std::exp(max - v) + Acc(1);
      max = v;
    } else {
      sum += std::exp(v - max);
    }
  }
  STRATA_HOST_DEVICE Acc value() const { return max + std::log(sum); }
};

// One pixel's forward: feed every channel once with add(c, z_c, teacher_c) in order c = 0, 1, ...
// (teacher_c, the raw teacher logit, is read for c < C_old when a term reads the teacher), then read
// stats() and loss(k). Sums a term does not need are not accumulated.
template <class Acc>
class PixelLossAccumulator {
 public:
  // label: the pixel's class, or −1 when it is ignored or invalid (labelled terms give 0).
  STRATA_HOST_DEVICE PixelLossAccumulator(const FusedLossProblem& problem, int64_t label)
      : problem_(problem), label_(label) {
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
    for (int k = 0; k < kMaxFusedTerms; ++k) {
      if (k >= problem.terms) break;
      const PixelLoss kind = problem.kinds[k];
      teacher_softmax_ |=
          kind == PixelLoss::knowledge_distillation || kind == PixelLoss::unbiased_knowledge_distillation;
      bce_one_hot_needed_ |= kind == PixelLoss::icarl_bce && label >= 0;
      bce_distillation_needed_ |= kind == PixelLoss::icarl_distillation;
    }
  }

  STRATA_HOST_DEVICE void add(int64_t c, Acc z, Acc teacher) {
    const int64_t old = problem_.old_channels;
    all_.add(z);
    if (c < old) old_.add(z);
    if (c == 0 || c >= old) background_.add(z);
    if (c == label_) z_label_ = z;
    if (c < old && teacher_softmax_) add_teacher(c, static_cast<Acc>(problem_.alpha) * teacher, z);
    if (c < old && bce_distillation_needed_) bce_distillation_ += bce_with_logits_value(z, sigmoid(teacher));
    if (bce_one_hot_needed_) bce_one_hot_ += bce_with_logits_value(z, c == label_ ? Acc(1) : Acc(0));
  }

  STRATA_HOST_DEVICE PixelStats<Acc> stats() const {
    PixelStats<Acc> s{all_.value(), Acc(0), Acc(0), Acc(0), Acc(0)};
    if (problem_.old_channels > 0) s.lse_old = old_.value();
    if (problem_.old_channels > 0 && problem_.old_channels < problem_.channels) s.lse_bg = background_.value();
    if (teacher_softmax_) {
      s.lse_teacher = teacher_.value();
      s.teacher_background = std::exp(teacher_first_ - s.lse_teacher);
    }
    return s;
  }

  // Term k's loss at this pixel.
  STRATA_HOST_DEVICE Acc loss(int k, const PixelStats<Acc>& s) const {
    const Acc inv_old = Acc(1) / static_cast<Acc>(problem_.old_channels);
    const bool labelled = label_ >= 0;
    switch (problem_.kinds[k]) {
      case PixelLoss::cross_entropy: return labelled ? s.lse - z_label_ : Acc(0);
      case PixelLoss::unbiased_cross_entropy:
        if (!labelled) return Acc(0);
        return label_ < problem_.old_channels ? s.lse - s.lse_old : s.lse - z_label_;
      case PixelLoss::knowledge_distillation: return -(dot_ / teacher_.sum - s.lse_old) * inv_old;
      case PixelLoss::unbiased_knowledge_distillation:
        return -(s.teacher_background * s.lse_bg + dot_without_first_ / teacher_.sum - s.lse) * inv_old;
      case PixelLoss::icarl_bce: return labelled ? bce_one_hot_ : Acc(0);
      case PixelLoss::icarl_distillation: return bce_distillation_;
    }
    return Acc(0);
  }

 private:
  // The teacher's online softmax over t_c = α z°_c, with the softmax-weighted sums of the student's
  // z_c over c < C_old (KD) and over 0 < c < C_old (unbiased KD), rescaled with the running maximum.
  STRATA_HOST_DEVICE void add_teacher(int64_t c, Acc t, Acc z) {
    Acc e = 1;
    if (t > teacher_.max) {
      const Acc rescale = std::exp(teacher_.max - t);
      teacher_.sum *= rescale;
      dot_ *= rescale;
      dot_without_first_ *= rescale;
      teacher_.max = t;
    } else {
      e = std::exp(t - teacher_.max);
    }
    teacher_.sum += e;
    dot_ += e * z;
    if (c > 0) dot_without_first_ += e * z;
    if (c == 0) teacher_first_ = t;
  }

  const FusedLossProblem& problem_;
  int64_t label_;
  bool teacher_softmax_ = false, bce_one_hot_needed_ = false, bce_distillation_needed_ = false;
  OnlineLogSumExp<Acc> all_, old_, background_, teacher_;
  Acc dot_ = 0, dot_without_first_ = 0;  // Σ exp(t_c − teacher_.max) z_c over c < C_old, resp. 0 < c < C_old
  Acc teacher_first_ = 0;                // α z°_0
  Acc z_label_ = 0;
  Acc bce_one_hot_ = 0, bce_distillation_ = 0;
};

// dl/dz_c at one full-resolution pixel, summed over the terms with factors[k] = W_k (see the file
// comment); label −1 for an ignored or invalid pixel; teacher is z°_c (read for c < C_old).
template <class Acc>
STRATA_HOST_DEVICE inline Acc fused_loss_gradient(const FusedLossProblem& problem, const Acc* factors,
                                                  const PixelStats<Acc>& s, int64_t label, int64_t c, Acc z,
                                                  Acc teacher) {
  const int64_t old = problem.old_channels;
  const bool labelled = label >= 0;
  const Acc p = std::exp(z - s.lse);
  Acc g = 0;
  // Unrolled to the fixed bound on CUDA, so factors[k] and kinds[k] are registers and constants,
  // never local memory.
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
  for (int k = 0; k < kMaxFusedTerms; ++k) {
    if (k >= problem.terms) break;
    const Acc w = factors[k];
    switch (problem.kinds[k]) {
      case PixelLoss::cross_entropy:
        if (labelled) g += w * (c == label ? p - Acc(1) : p);
        break;
      case PixelLoss::unbiased_cross_entropy:
        if (!labelled) break;
        if (label < old) {
          g += w * (c < old ? p - std::exp(z - s.lse_old) : p);
        } else {
          g += w * (c == label ? p - Acc(1) : p);
        }
        break;
      case PixelLoss::knowledge_distillation:
        if (c < old) {
          const Acc q = std::exp(static_cast<Acc>(problem.alpha) * teacher - s.lse_teacher);
          g -= w * (q - std::exp(z - s.lse_old)) / static_cast<Acc>(old);
        }
        break;
      case PixelLoss::unbiased_knowledge_distillation: {
        Acc d = -p;
        if (c == 0 || c >= old) d += s.teacher_background * std::exp(z - s.lse_bg);
        if (c > 0 && c < old) d += std::exp(static_cast<Acc>(problem.alpha) * teacher - s.lse_teacher);
        g -= w * d / static_cast<Acc>(old);
        break;
      }
      case PixelLoss::icarl_bce:
        if (labelled) g += w * (sigmoid(z) - (c == label ? Acc(1) : Acc(0)));
        break;
      case PixelLoss::icarl_distillation:
        if (c < old) g += w * (sigmoid(z) - sigmoid(teacher));
        break;
    }
  }
  return g;
}

}  // namespace strata::kernels::common
