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
//   kd_l2                 Σ_{c<C_old} (p°_c − q_c)² / C_old            2 p°_c (p°_c − q_c − D) / C_old, c < C_old
//                         p°_c = e^{z_c − lse_old}, D = Σ_{c<C_old} p°_c (p°_c − q_c)
//   unbiased_kd           −(q_0 lse_bg + Σ_{0<c<C_old} q_c z_c − lse) / C_old
//                                                                     −(q_0 [c ∈ bg] e^{z_c − lse_bg}
//                                                                       + [0 < c < C_old] q_c − p_c) / C_old
//   icarl_bce             Σ_c bce(z_c, [c = y])                       σ(z_c) − [c = y]
//   icarl_distillation    Σ_{c<C_old} bce(z_c, σ(z°_c))                σ(z_c) − σ(z°_c), c < C_old
//   icarl_disjoint        Σ_c bce(z_c, r_c)                           σ(z_c) − r_c
//                         r_c = σ(z°_c) for c < C_old, [c = y] for c >= C_old
//   icarl_disjoint_bkg    the same with r_0 = [0 = y] (the labels' background kept)
//
// with lse = logsumexp over all C channels, lse_old over [0, C_old), lse_bg over the background and
// the new channels {0} ∪ [C_old, C) (MiB's p̂_0), and Σ_c q_c = 1 used to simplify (the unfused
// composition of incremental/losses.h computes the same values; tests hold the two together).
// Labelled terms are 0 at pixels whose label is ignore_index (or invalid, which the label statistics
// report). The icarl_disjoint terms (MiB's IcarlLoss, LwF-MC's --icarl-disjoint) are not masked: an
// ignored pixel has an all-zero one-hot row and still counts with its replaced targets, as in the
// reference. The icarl terms use the raw teacher logits (no α), as LwF-MC does.
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
#include <type_traits>

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
  icarl_disjoint,
  icarl_disjoint_bkg,
  knowledge_distillation_l2,  // the LwF ablation log's L2 between the old channels' probabilities
};

STRATA_HOST_DEVICE inline bool pixel_loss_is_labelled(PixelLoss kind) {
  return kind == PixelLoss::cross_entropy || kind == PixelLoss::unbiased_cross_entropy || kind == PixelLoss::icarl_bce;
}

STRATA_HOST_DEVICE inline bool pixel_loss_reads_teacher(PixelLoss kind) {
  return kind == PixelLoss::knowledge_distillation || kind == PixelLoss::unbiased_knowledge_distillation ||
         kind == PixelLoss::icarl_distillation || kind == PixelLoss::icarl_disjoint ||
         kind == PixelLoss::icarl_disjoint_bkg || kind == PixelLoss::knowledge_distillation_l2;
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
// one distillation statistic, the teacher's background probability q_0 for the unbiased KD or
// L2 KD's D = Σ_{c<C_old} p°_c (p°_c − q_c); a call never has both terms, so they share the slot and
// a pixel keeps five values, not six (those no term uses are left at 0).
template <class T>
struct PixelStats {
  T lse, lse_old, lse_bg, lse_teacher, distillation;
};
inline constexpr int kPixelStats = 5;  // values of PixelStats, stored contiguously per pixel

// Everything a pixel's losses are made of: its stats and the sums over its channels. The CUDA
// kernel gathers them in one online pass (PixelLossAccumulator), the CPU kernel in vectorised
// passes over a buffered pixel; both read the losses from them with pixel_term_loss.
template <class Acc>
struct PixelSums {
  PixelStats<Acc> stats{};
  Acc teacher_dot = 0;       // Σ_{c<C_old} q_c z_c
  Acc teacher_dot_old = 0;   // Σ_{0<c<C_old} q_c z_c
  Acc z_label = 0;           // z_y (0 for an ignored pixel)
  Acc bce_one_hot = 0;       // Σ_c bce(z_c, [c = y])
  Acc bce_distillation = 0;  // Σ_{c<C_old} bce(z_c, σ(z°_c))
  Acc bce_disjoint = 0;      // Σ_c bce(z_c, r_c), r_c = σ(z°_c) for c < C_old, else [c = y]
  Acc bce_disjoint_bkg = 0;  // the same with r_0 = [0 = y]
  Acc l2_distance = 0;       // Σ_{c<C_old} (p°_c − q_c)²
};

// Which sums a problem's terms need, so a kernel skips the others.
struct PixelSumsNeeded {
  bool teacher_softmax = false, bce_one_hot = false, bce_distillation = false, bce_disjoint = false,
       bce_disjoint_bkg = false, l2_distance = false;
  STRATA_HOST_DEVICE explicit PixelSumsNeeded(const FusedLossProblem& problem) {
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
    for (int k = 0; k < kMaxFusedTerms; ++k) {
      if (k >= problem.terms) break;
      const PixelLoss kind = problem.kinds[k];
      teacher_softmax |= kind == PixelLoss::knowledge_distillation ||
                         kind == PixelLoss::unbiased_knowledge_distillation ||
                         kind == PixelLoss::knowledge_distillation_l2;
      l2_distance |= kind == PixelLoss::knowledge_distillation_l2;
      bce_one_hot |= kind == PixelLoss::icarl_bce;
      bce_distillation |= kind == PixelLoss::icarl_distillation;
      bce_disjoint |= kind == PixelLoss::icarl_disjoint;
      bce_disjoint_bkg |= kind == PixelLoss::icarl_disjoint_bkg;
    }
  }
};

// Term k's loss at a pixel of label `label` (−1: ignored or invalid).
template <class Acc>
STRATA_HOST_DEVICE inline Acc pixel_term_loss(const FusedLossProblem& problem, int k, const PixelSums<Acc>& sums,
                                              int64_t label) {
  const PixelStats<Acc>& s = sums.stats;
  const Acc inv_old = Acc(1) / static_cast<Acc>(problem.old_channels);
  const bool labelled = label >= 0;
  switch (problem.kinds[k]) {
    case PixelLoss::cross_entropy: return labelled ? s.lse - sums.z_label : Acc(0);
    case PixelLoss::unbiased_cross_entropy:
      if (!labelled) return Acc(0);
      return label < problem.old_channels ? s.lse - s.lse_old : s.lse - sums.z_label;
    case PixelLoss::knowledge_distillation: return -(sums.teacher_dot - s.lse_old) * inv_old;
    case PixelLoss::unbiased_knowledge_distillation:
      return -(s.distillation * s.lse_bg + sums.teacher_dot_old - s.lse) * inv_old;
    case PixelLoss::icarl_bce: return labelled ? sums.bce_one_hot : Acc(0);
    case PixelLoss::icarl_distillation: return sums.bce_distillation;
    case PixelLoss::icarl_disjoint: return sums.bce_disjoint;
    case PixelLoss::icarl_disjoint_bkg: return sums.bce_disjoint_bkg;
    case PixelLoss::knowledge_distillation_l2: return sums.l2_distance * inv_old;
  }
  return Acc(0);
}

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

// Two softmaxes p = softmax(a), q = softmax(b) over the same channels, seen one channel at a time:
// Σ_c p_c², Σ_c p_c q_c and Σ_c q_c² from running maxima and rescaled sums (L2 KD in one pass).
template <class Acc>
struct OnlineSoftmaxProducts {
  Acc max_a = -INFINITY, max_b = -INFINITY;
  Acc sum_a = 0, sum_b = 0, sum_aa = 0, sum_ab = 0, sum_bb = 0;  // of e^{a − max_a}, e^{b − max_b}
  STRATA_HOST_DEVICE void add(Acc a, Acc b) {
    if (a > max_a) {
      const Acc r = std::exp(max_a - a);
      sum_a *= r, sum_aa *= r * r, sum_ab *= r;
      max_a = a;
    }
    if (b > max_b) {
      const Acc r = std::exp(max_b - b);
      sum_b *= r, sum_bb *= r * r, sum_ab *= r;
      max_b = b;
    }
    const Acc ea = std::exp(a - max_a), eb = std::exp(b - max_b);
    sum_a += ea, sum_b += eb;
    sum_aa += ea * ea, sum_ab += ea * eb, sum_bb += eb * eb;
  }
  STRATA_HOST_DEVICE Acc pp() const { return sum_aa / (sum_a * sum_a); }
  STRATA_HOST_DEVICE Acc pq() const { return sum_ab / (sum_a * sum_b); }
  STRATA_HOST_DEVICE Acc qq() const { return sum_bb / (sum_b * sum_b); }
};

// One pixel's sums in a single visit of its channels: add(c, z_c, teacher_c) in order c = 0, 1, ...
// (teacher_c, the raw teacher logit, is read for c < C_old when a term reads the teacher), then
// sums(). Sums no term needs are not accumulated. The CUDA kernel's way: each channel is
// interpolated from global memory once.
template <class Acc>
class PixelLossAccumulator {
 public:
  // label: the pixel's class, or −1 when it is ignored or invalid (labelled terms give 0).
  STRATA_HOST_DEVICE PixelLossAccumulator(const FusedLossProblem& problem, int64_t label)
      : problem_(problem), needed_(problem), label_(label) {}

  STRATA_HOST_DEVICE void add(int64_t c, Acc z, Acc teacher) {
    const int64_t old = problem_.old_channels;
    all_.add(z);
    if (c < old) old_.add(z);
    if (c == 0 || c >= old) background_.add(z);
    if (c == label_) sums_.z_label = z;
    if (c < old && needed_.teacher_softmax) add_teacher(c, static_cast<Acc>(problem_.alpha) * teacher, z);
    if (c < old && needed_.l2_distance) products_.add(z, static_cast<Acc>(problem_.alpha) * teacher);
    if (c < old && needed_.bce_distillation) sums_.bce_distillation += bce_with_logits_value(z, sigmoid(teacher));
    if (label_ >= 0 && needed_.bce_one_hot)
      sums_.bce_one_hot += bce_with_logits_value(z, c == label_ ? Acc(1) : Acc(0));
    if (needed_.bce_disjoint || needed_.bce_disjoint_bkg) {
      const Acc one_hot = c == label_ ? Acc(1) : Acc(0);
      const Acc replaced = c < old ? sigmoid(teacher) : one_hot;
      if (needed_.bce_disjoint) sums_.bce_disjoint += bce_with_logits_value(z, replaced);
      if (needed_.bce_disjoint_bkg) sums_.bce_disjoint_bkg += bce_with_logits_value(z, c == 0 ? one_hot : replaced);
    }
  }

  STRATA_HOST_DEVICE PixelSums<Acc> sums() const {
    PixelSums<Acc> out = sums_;
    out.stats.lse = all_.value();
    if (problem_.old_channels > 0) out.stats.lse_old = old_.value();
    if (problem_.old_channels > 0 && problem_.old_channels < problem_.channels) out.stats.lse_bg = background_.value();
    if (needed_.teacher_softmax) {
      out.stats.lse_teacher = teacher_.value();
      out.stats.distillation = std::exp(teacher_first_ - out.stats.lse_teacher);
      out.teacher_dot = dot_ / teacher_.sum;
      out.teacher_dot_old = dot_old_ / teacher_.sum;
    }
    if (needed_.l2_distance) {
      out.l2_distance = products_.pp() - Acc(2) * products_.pq() + products_.qq();
      out.stats.distillation = products_.pp() - products_.pq();
    }
    return out;
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
      dot_old_ *= rescale;
      teacher_.max = t;
    } else {
      e = std::exp(t - teacher_.max);
    }
    teacher_.sum += e;
    dot_ += e * z;
    if (c > 0) dot_old_ += e * z;
    if (c == 0) teacher_first_ = t;
  }

  const FusedLossProblem& problem_;
  PixelSumsNeeded needed_;
  int64_t label_;
  OnlineLogSumExp<Acc> all_, old_, background_, teacher_;
  OnlineSoftmaxProducts<Acc> products_;  // of z_c and α z°_c over c < C_old (L2 KD)
  Acc dot_ = 0, dot_old_ = 0;  // Σ exp(t_c − teacher_.max) z_c over c < C_old, resp. 0 < c < C_old
  Acc teacher_first_ = 0;      // α z°_0
  PixelSums<Acc> sums_;
};

// Term `Kind`'s dl/dz_c at one full-resolution pixel (the table of the file comment), from the
// pixel's stats, its label (−1: ignored or invalid), z_c, the raw teacher logit t_c (read for
// c < C_old; any finite value past it) and p_c = exp(z_c − lse). Exp is the exponential to use:
// std::exp, or a vectorisable one on the CPU (kernels/cpu/vector_math.h). Each exponential is taken
// for every c and then selected, never under a branch and never multiplied by a 0/1 mask (an
// overflowing exponential of a channel a term does not read must not turn into inf · 0 = NaN): the
// CPU kernel's loops over c are then straight-line code the compiler vectorises.
template <PixelLoss Kind, class Acc, class Exp>
STRATA_HOST_DEVICE inline Acc term_gradient(const FusedLossProblem& problem, const PixelStats<Acc>& s, int64_t label,
                                            int64_t c, Acc z, Acc t, Acc p, Exp exp) {
  const int64_t old = problem.old_channels;
  const Acc minus_label = c == label ? p - Acc(1) : p;  // CE's p_c − [c = y]
  if constexpr (Kind == PixelLoss::cross_entropy) {
    return label >= 0 ? minus_label : Acc(0);
  } else if constexpr (Kind == PixelLoss::unbiased_cross_entropy) {
    // A label among the old classes (background after the step's remapping) is their folded
    // probability's: p_c − e^{z_c − lse_old} on the old channels; a new class is CE's.
    const Acc folded = p - exp(z - s.lse_old);
    const bool old_target = label < old;
    const Acc g = old_target && c < old ? folded : (!old_target && c == label ? p - Acc(1) : p);
    return label >= 0 ? g : Acc(0);
  } else if constexpr (Kind == PixelLoss::knowledge_distillation) {
    const Acc q = exp(static_cast<Acc>(problem.alpha) * t - s.lse_teacher);
    const Acc d = -(q - exp(z - s.lse_old)) / static_cast<Acc>(old);
    return c < old ? d : Acc(0);
  } else if constexpr (Kind == PixelLoss::unbiased_knowledge_distillation) {
    const Acc folded = s.distillation * exp(z - s.lse_bg);
    const Acc q = exp(static_cast<Acc>(problem.alpha) * t - s.lse_teacher);
    const Acc d = c == 0 || c >= old ? folded : q;
    return -(d - p) / static_cast<Acc>(old);
  } else if constexpr (Kind == PixelLoss::knowledge_distillation_l2) {
    const Acc p_old = exp(z - s.lse_old);
    const Acc q = exp(static_cast<Acc>(problem.alpha) * t - s.lse_teacher);
    const Acc d = Acc(2) * p_old * (p_old - q - s.distillation) / static_cast<Acc>(old);
    return c < old ? d : Acc(0);
  } else if constexpr (Kind == PixelLoss::icarl_bce) {
    return label >= 0 ? sigmoid(z) - (c == label ? Acc(1) : Acc(0)) : Acc(0);
  } else if constexpr (Kind == PixelLoss::icarl_distillation) {
    return c < old ? sigmoid(z) - sigmoid(t) : Acc(0);
  } else {
    // icarl_disjoint(_bkg): the replaced targets, at every pixel (an ignored one's one-hot is 0).
    const Acc one_hot = c == label ? Acc(1) : Acc(0);
    const bool from_teacher = c < old && (Kind == PixelLoss::icarl_disjoint || c > 0);
    return sigmoid(z) - (from_teacher ? sigmoid(t) : one_hot);
  }
}

// f(std::integral_constant<PixelLoss, K>{}) for the term kind K = `kind`: code written once per
// kind as a template (term_gradient) is chosen at run time without a switch at each call site.
template <class F>
STRATA_HOST_DEVICE inline void visit_pixel_loss(PixelLoss kind, F&& f) {
  switch (kind) {
    case PixelLoss::cross_entropy: f(std::integral_constant<PixelLoss, PixelLoss::cross_entropy>{}); break;
    case PixelLoss::unbiased_cross_entropy:
      f(std::integral_constant<PixelLoss, PixelLoss::unbiased_cross_entropy>{});
      break;
    case PixelLoss::knowledge_distillation:
      f(std::integral_constant<PixelLoss, PixelLoss::knowledge_distillation>{});
      break;
    case PixelLoss::unbiased_knowledge_distillation:
      f(std::integral_constant<PixelLoss, PixelLoss::unbiased_knowledge_distillation>{});
      break;
    case PixelLoss::icarl_bce: f(std::integral_constant<PixelLoss, PixelLoss::icarl_bce>{}); break;
    case PixelLoss::icarl_distillation: f(std::integral_constant<PixelLoss, PixelLoss::icarl_distillation>{}); break;
    case PixelLoss::icarl_disjoint: f(std::integral_constant<PixelLoss, PixelLoss::icarl_disjoint>{}); break;
    case PixelLoss::icarl_disjoint_bkg: f(std::integral_constant<PixelLoss, PixelLoss::icarl_disjoint_bkg>{}); break;
    case PixelLoss::knowledge_distillation_l2:
      f(std::integral_constant<PixelLoss, PixelLoss::knowledge_distillation_l2>{});
      break;
  }
}

struct StdExp {
  template <class Acc>
  STRATA_HOST_DEVICE Acc operator()(Acc x) const {
    return std::exp(x);
  }
};

// dl/dz_c at one full-resolution pixel, summed over the terms with factors[k] = W_k (see the file
// comment); label −1 for an ignored or invalid pixel; teacher is z°_c (read for c < C_old). The
// CUDA kernel's way, one channel at a time.
template <class Acc>
STRATA_HOST_DEVICE inline Acc fused_loss_gradient(const FusedLossProblem& problem, const Acc* factors,
                                                  const PixelStats<Acc>& s, int64_t label, int64_t c, Acc z,
                                                  Acc teacher) {
  const Acc p = std::exp(z - s.lse);
  const StdExp exp;
  Acc g = 0;
  // Unrolled to the fixed bound on CUDA, so factors[k] and kinds[k] are registers and constants,
  // never local memory.
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
  for (int k = 0; k < kMaxFusedTerms; ++k) {
    if (k >= problem.terms) break;
    Acc d = 0;
    visit_pixel_loss(problem.kinds[k], [&](auto kind) {
      d = term_gradient<decltype(kind)::value>(problem, s, label, c, z, teacher, p, exp);
    });
    g += factors[k] * d;
  }
  return g;
}

}  // namespace strata::kernels::common
