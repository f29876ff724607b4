// The fused segmentation losses on the CPU: kernels/cpu/fused_losses.h says what they compute,
// kernels/common/fused_losses.h holds the per-pixel math.
//
// Work is split by full-resolution rows (n, Y). A row first blends the two low-resolution rows its
// vertical taps read (w x C values, and w x C_old of the teacher), so each of its pixels then
// interpolates its C values from two blended columns into a buffer: 2 reads and 2 multiply-adds per
// channel instead of 4 and 3. On the buffered pixel every pass over the channels is a plain loop
// the compiler vectorises (OpenMP simd reductions for the sums, vector_exp for the exponentials), a
// few passes where the CUDA kernel makes one online pass: the same sums (PixelSums), the same
// per-term formulas (pixel_term_loss, term_gradient).
#include "kernels/cpu/fused_losses.h"

#include <algorithm>
#include <cstddef>
#include <vector>

#include "kernels/common/labels.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/upsample.h"
#include "kernels/cpu/vector_math.h"

namespace strata::kernels::cpu {

namespace cm = strata::kernels::common;

namespace {

// Values per chunk of rows: chunks of about this many channel evaluations.
constexpr int64_t kChannelGrain = int64_t{1} << 15;

// One full-resolution row's view of a low-resolution map (N, h, w, channels): the blend of the two
// rows its vertical taps read, then per pixel the blend of two columns.
template <class T>
class RowInterpolator {
 public:
  // The pixel buffer holds `padded` >= channels values, the ones past `channels` zero (a teacher's
  // pixel padded to C, so loops over all C channels may read it; all zero without a map).
  RowInterpolator(const T* map, const cm::FusedLossProblem& problem, int64_t channels, int64_t padded)
      : map_(map),
        problem_(problem),
        channels_(channels),
        blended_(static_cast<size_t>(problem.low_width * channels)),
        pixel_(static_cast<size_t>(padded), T(0)) {}

  void start_row(int64_t n, const cm::BilinearTaps<T>& v) {
    if (!map_) return;
    const int64_t row = problem_.low_width * channels_;
    const T* r0 = map_ + (n * problem_.low_height + v.i0) * row;
    const T* r1 = map_ + (n * problem_.low_height + v.i1) * row;
    for (int64_t i = 0; i < row; ++i) blended_[static_cast<size_t>(i)] = v.lambda0 * r0[i] + v.lambda1 * r1[i];
  }

  // The pixel's channel values, interpolated between the blended columns of its horizontal taps.
  const T* pixel(const cm::BilinearTaps<T>& h) {
    if (!map_) return pixel_.data();
    const T* a = blended_.data() + h.i0 * channels_;
    const T* b = blended_.data() + h.i1 * channels_;
    for (int64_t c = 0; c < channels_; ++c) pixel_[static_cast<size_t>(c)] = h.lambda0 * a[c] + h.lambda1 * b[c];
    return pixel_.data();
  }

 private:
  const T* map_;
  const cm::FusedLossProblem& problem_;
  int64_t channels_;
  std::vector<T> blended_, pixel_;
};

// A chunk's part of the forward: each term's sum of per-pixel losses and the tally of its labels.
struct FusedPartial {
  double sums[cm::kMaxFusedTerms] = {};
  cm::LabelTally labels;
};

int64_t rows_per_chunk(const cm::FusedLossProblem& problem) {
  return std::max<int64_t>(1, kChannelGrain / std::max<int64_t>(1, problem.width * problem.channels));
}

// logsumexp of x over [begin, end), and of the extra value `also` with it when use_also.
template <class T>
T range_logsumexp(const T* x, int64_t begin, int64_t end, T also = T(0), bool use_also = false) {
  T m = use_also ? also : x[begin];
#pragma omp simd reduction(max : m)
  for (int64_t c = begin; c < end; ++c) m = x[c] > m ? x[c] : m;
  T sum = use_also ? vector_exp(also - m) : T(0);
#pragma omp simd reduction(+ : sum)
  for (int64_t c = begin; c < end; ++c) sum += vector_exp(x[c] - m);
  return m + std::log(sum);
}

// A buffered pixel's sums (kernels/common/fused_losses.h): z (C values), t (the raw teacher logits,
// zero past C_old), label −1 when ignored or invalid.
template <class T>
cm::PixelSums<T> pixel_sums(const cm::FusedLossProblem& problem, const cm::PixelSumsNeeded& needed, const T* z,
                            const T* t, int64_t label) {
  const int64_t channels = problem.channels, old = problem.old_channels;
  cm::PixelSums<T> out;
  out.stats.lse = range_logsumexp(z, 0, channels);
  if (old > 0) out.stats.lse_old = range_logsumexp(z, 0, old);
  if (old > 0 && old < channels) out.stats.lse_bg = range_logsumexp(z, old, channels, z[0], true);
  if (label >= 0) out.z_label = z[label];
  if (needed.teacher_softmax) {
    const T alpha = static_cast<T>(problem.alpha);
    T m = alpha * t[0];
#pragma omp simd reduction(max : m)
    for (int64_t c = 0; c < old; ++c) m = alpha * t[c] > m ? alpha * t[c] : m;
    const T e0 = vector_exp(alpha * t[0] - m);
    T sum = e0, dot_old = 0;
#pragma omp simd reduction(+ : sum, dot_old)
    for (int64_t c = 1; c < old; ++c) {
      const T e = vector_exp(alpha * t[c] - m);
      sum += e;
      dot_old += e * z[c];
    }
    out.stats.lse_teacher = m + std::log(sum);
    out.stats.distillation = e0 / sum;
    out.teacher_dot = (e0 * z[0] + dot_old) / sum;
    out.teacher_dot_old = dot_old / sum;
  }
  if (needed.l2_distance) {
    // L2 KD: the old channels' softmax p° against the teacher's q, and D = Σ p° (p° − q).
    const T alpha = static_cast<T>(problem.alpha), lse_old = out.stats.lse_old, lse_teacher = out.stats.lse_teacher;
    T distance = 0, centre = 0;
#pragma omp simd reduction(+ : distance, centre)
    for (int64_t c = 0; c < old; ++c) {
      const T d = vector_exp(z[c] - lse_old) - vector_exp(alpha * t[c] - lse_teacher);
      distance += d * d;
      centre += vector_exp(z[c] - lse_old) * d;
    }
    out.l2_distance = distance;
    out.stats.distillation = centre;
  }
  if (needed.bce_one_hot && label >= 0) {
    for (int64_t c = 0; c < channels; ++c) out.bce_one_hot += cm::bce_with_logits_value(z[c], c == label ? T(1) : T(0));
  }
  if (needed.bce_distillation) {
    for (int64_t c = 0; c < old; ++c) out.bce_distillation += cm::bce_with_logits_value(z[c], cm::sigmoid(t[c]));
  }
  if (needed.bce_disjoint || needed.bce_disjoint_bkg) {
    // The old channels' targets are the teacher's sigmoids, the new ones the one-hot label (all zero
    // at an ignored pixel); the _bkg variant takes channel 0's target from the label too.
    T old_channels = 0, new_channels = 0;
    for (int64_t c = 1; c < old; ++c) old_channels += cm::bce_with_logits_value(z[c], cm::sigmoid(t[c]));
    for (int64_t c = old; c < channels; ++c) new_channels += cm::bce_with_logits_value(z[c], c == label ? T(1) : T(0));
    if (needed.bce_disjoint) {
      out.bce_disjoint = cm::bce_with_logits_value(z[0], cm::sigmoid(t[0])) + old_channels + new_channels;
    }
    if (needed.bce_disjoint_bkg) {
      out.bce_disjoint_bkg = cm::bce_with_logits_value(z[0], label == 0 ? T(1) : T(0)) + old_channels + new_channels;
    }
  }
  return out;
}

// g (C values) = Σ_k factors[k] · term k's dl/dz_c at a buffered pixel, one vectorised loop per term.
template <class T>
void pixel_gradient(T* g, T* p, const cm::FusedLossProblem& problem, const T* factors, const cm::PixelStats<T>& s,
                    int64_t label, const T* z, const T* t) {
  const int64_t channels = problem.channels;
#pragma omp simd
  for (int64_t c = 0; c < channels; ++c) {
    p[c] = vector_exp(z[c] - s.lse);
    g[c] = T(0);
  }
  const VectorExp exp;
  for (int k = 0; k < problem.terms; ++k) {
    const T w = factors[k];
    // One vectorised loop per term, its kind a compile-time constant inside.
    cm::visit_pixel_loss(problem.kinds[k], [&](auto kind) {
#pragma omp simd
      for (int64_t c = 0; c < channels; ++c) {
        g[c] += w * cm::term_gradient<decltype(kind)::value>(problem, s, label, c, z[c], t[c], p[c], exp);
      }
    });
  }
}

// Factor W_k of each term's per-pixel gradient (kernels/common/fused_losses.h).
template <class T>
void term_factors(T* factors, const T* dvalues, const int64_t* label_stats, const cm::FusedLossProblem& problem) {
  for (int k = 0; k < problem.terms; ++k) {
    const double scale = cm::reduction_factor(problem.reductions[k], label_stats[cm::kValidLabels]);
    factors[k] = static_cast<T>(static_cast<double>(dvalues[k]) * problem.weights[k] * scale);
  }
}

}  // namespace

template <class T, class L>
void fused_losses(T* values, T* pixel_stats, int64_t* label_stats, const T* logits, const T* teacher,
                  const T* image_weights, const L* labels, const cm::FusedLossProblem& problem, const Backend&) {
  const int64_t rows = problem.batch * problem.height, grain = rows_per_chunk(problem);
  const auto vertical = bilinear_axis_taps<T>(problem.low_height, problem.height, problem.align_corners);
  const auto horizontal = bilinear_axis_taps<T>(problem.low_width, problem.width, problem.align_corners);
  const T* teacher_map = problem.reads_teacher() ? teacher : nullptr;
  std::vector<FusedPartial> partials(static_cast<size_t>((rows + grain - 1) / grain));
  parallel_for(0, rows, grain, [&](int64_t lo, int64_t hi) {
    FusedPartial& part = partials[static_cast<size_t>(lo / grain)];
    RowInterpolator<T> student(logits, problem, problem.channels, problem.channels);
    RowInterpolator<T> old_model(teacher_map, problem, problem.old_channels, problem.channels);
    const cm::PixelSumsNeeded needed(problem);
    for (int64_t row = lo; row < hi; ++row) {
      const int64_t n = row / problem.height, y = row % problem.height;
      student.start_row(n, vertical[static_cast<size_t>(y)]);
      old_model.start_row(n, vertical[static_cast<size_t>(y)]);
      const double image_weight = image_weights ? static_cast<double>(image_weights[n]) : 1.0;
      for (int64_t x = 0; x < problem.width; ++x) {
        const int64_t p = row * problem.width + x;
        const int64_t label = static_cast<int64_t>(labels[p]);
        const int64_t cls = part.labels.count(p, label, problem.channels, problem.ignore_index) ? label : -1;
        const T* z = student.pixel(horizontal[static_cast<size_t>(x)]);
        const T* t = old_model.pixel(horizontal[static_cast<size_t>(x)]);
        const cm::PixelSums<T> sums = pixel_sums(problem, needed, z, t, cls);
        const cm::PixelStats<T>& s = sums.stats;
        for (int k = 0; k < problem.terms; ++k) {
          part.sums[k] += image_weight * static_cast<double>(cm::pixel_term_loss(problem, k, sums, cls));
        }
        if (pixel_stats) {
          T* out = pixel_stats + p * cm::kPixelStats;
          out[0] = s.lse, out[1] = s.lse_old, out[2] = s.lse_bg, out[3] = s.lse_teacher, out[4] = s.distillation;
        }
      }
    }
  });
  FusedPartial total;
  for (const FusedPartial& part : partials) {
    for (int k = 0; k < problem.terms; ++k) total.sums[k] += part.sums[k];
    total.labels.merge(part.labels);
  }
  cm::write_label_stats(label_stats, total.labels, labels);
  for (int k = 0; k < problem.terms; ++k) {
    const double scale = cm::reduction_factor(problem.reductions[k], total.labels.valid);
    values[k] = static_cast<T>(total.sums[k] * problem.weights[k] * scale);
  }
}

template <class T, class L>
void fused_losses_backward(T* dlogits, const T* dvalues, const int64_t* label_stats, const T* pixel_stats,
                           const T* logits, const T* teacher, const T* image_weights, const L* labels,
                           const cm::FusedLossProblem& problem, const Backend& backend) {
  T term_weights[cm::kMaxFusedTerms] = {};
  term_factors(term_weights, dvalues, label_stats, problem);
  const int64_t channels = problem.channels, low_w = problem.low_width;
  const int64_t rows = problem.batch * problem.height;
  const auto vertical = bilinear_axis_taps<T>(problem.low_height, problem.height, problem.align_corners);
  const auto horizontal = bilinear_axis_taps<T>(problem.low_width, problem.width, problem.align_corners);
  const T* teacher_map = problem.reads_teacher() ? teacher : nullptr;
  // Pass 1: each full-resolution row's gradient, contracted over its columns: (N, H, w, C).
  T* row_gradients = backend.scratch->array<T>(rows * low_w * channels);
  parallel_for(0, rows, rows_per_chunk(problem), [&](int64_t lo, int64_t hi) {
    RowInterpolator<T> student(logits, problem, channels, channels);
    RowInterpolator<T> old_model(teacher_map, problem, problem.old_channels, channels);
    std::vector<T> gradient(static_cast<size_t>(channels)), probabilities(static_cast<size_t>(channels));
    for (int64_t row = lo; row < hi; ++row) {
      const int64_t n = row / problem.height, y = row % problem.height;
      student.start_row(n, vertical[static_cast<size_t>(y)]);
      old_model.start_row(n, vertical[static_cast<size_t>(y)]);
      // The image's weight folded into the terms' factors W_k.
      T factors[cm::kMaxFusedTerms] = {};
      for (int k = 0; k < problem.terms; ++k)
        factors[k] = image_weights ? term_weights[k] * image_weights[n] : term_weights[k];
      T* out = row_gradients + row * low_w * channels;
      std::fill(out, out + low_w * channels, T(0));
      for (int64_t x = 0; x < problem.width; ++x) {
        const int64_t p = row * problem.width + x;
        const int64_t label = static_cast<int64_t>(labels[p]);
        const int64_t cls = cm::label_is_class(label, channels, problem.ignore_index) ? label : -1;
        const cm::BilinearTaps<T>& h = horizontal[static_cast<size_t>(x)];
        const T* z = student.pixel(h);
        const T* t = old_model.pixel(h);
        const T* st = pixel_stats + p * cm::kPixelStats;
        const cm::PixelStats<T> s{st[0], st[1], st[2], st[3], st[4]};
        T* g = gradient.data();
        pixel_gradient(g, probabilities.data(), problem, factors, s, cls, z, t);
        // The adjoint of the horizontal taps; one column when both taps read it (the last one).
        T* a = out + h.i0 * channels;
        T* b = out + h.i1 * channels;
        if (h.i0 == h.i1) {
          const T both = h.lambda0 + h.lambda1;
#pragma omp simd
          for (int64_t c = 0; c < channels; ++c) a[c] += both * g[c];
        } else {
#pragma omp simd
          for (int64_t c = 0; c < channels; ++c) {
            a[c] += h.lambda0 * g[c];
            b[c] += h.lambda1 * g[c];
          }
        }
      }
    }
  });
  // Pass 2: each low-resolution row gathers the full-resolution rows whose vertical taps read it.
  const T scale = cm::bilinear_scale<T>(problem.low_height, problem.height, problem.align_corners);
  const int64_t low_rows = problem.batch * problem.low_height, row_values = low_w * channels;
  parallel_for(0, low_rows, std::max<int64_t>(1, kChannelGrain / row_values), [&](int64_t lo, int64_t hi) {
    for (int64_t low_row = lo; low_row < hi; ++low_row) {
      const int64_t n = low_row / problem.low_height, i = low_row % problem.low_height;
      T* out = dlogits + low_row * row_values;
      std::fill(out, out + row_values, T(0));
      const cm::BilinearRange range =
          cm::bilinear_footprint<T>(scale, i, problem.low_height, problem.height, problem.align_corners);
      for (int64_t y = range.first; y < range.last; ++y) {
        const T w = cm::bilinear_weight(vertical[static_cast<size_t>(y)], i);
        const T* in = row_gradients + (n * problem.height + y) * row_values;
        for (int64_t v = 0; v < row_values; ++v) out[v] += w * in[v];
      }
    }
  });
}

#define STRATA_INSTANTIATE(T, L)                                                                                  \
  template void fused_losses<T, L>(T*, T*, int64_t*, const T*, const T*, const T*, const L*,                      \
                                   const cm::FusedLossProblem&, const Backend&);                                  \
  template void fused_losses_backward<T, L>(T*, const T*, const int64_t*, const T*, const T*, const T*, const T*, \
                                            const L*, const cm::FusedLossProblem&, const Backend&);
STRATA_INSTANTIATE(float, uint8_t)
STRATA_INSTANTIATE(float, int32_t)
STRATA_INSTANTIATE(float, int64_t)
STRATA_INSTANTIATE(double, uint8_t)
STRATA_INSTANTIATE(double, int32_t)
STRATA_INSTANTIATE(double, int64_t)
#undef STRATA_INSTANTIATE

}  // namespace strata::kernels::cpu
