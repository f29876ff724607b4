// The fused segmentation losses on the CPU: kernels/cpu/fused_losses.h says what they compute,
// kernels/common/fused_losses.h holds the per-pixel math.
//
// Work is split by full-resolution rows (n, Y). A row first blends the two low-resolution rows its
// vertical taps read (w x C values, and w x C_old of the teacher), so each of its pixels then
// interpolates its C values from two blended columns: 2 reads and 2 multiply-adds per channel
// instead of 4 and 3.
#include "kernels/cpu/fused_losses.h"

#include <algorithm>
#include <cstddef>
#include <vector>

#include "kernels/common/labels.h"
#include "kernels/cpu/parallel.h"

namespace strata::kernels::cpu {

namespace cm = strata::kernels::common;

namespace {

// Values per chunk of rows: chunks of about this many channel evaluations.
constexpr int64_t kChannelGrain = int64_t{1} << 15;

template <class T>
std::vector<cm::BilinearTaps<T>> axis_taps(int64_t in_size, int64_t out_size, bool align_corners) {
  const T scale = cm::bilinear_scale<T>(in_size, out_size, align_corners);
  std::vector<cm::BilinearTaps<T>> taps(static_cast<size_t>(out_size));
  for (int64_t o = 0; o < out_size; ++o)
    taps[static_cast<size_t>(o)] = cm::bilinear_taps<T>(scale, o, in_size, align_corners);
  return taps;
}

// One full-resolution row's view of a low-resolution map (N, h, w, channels): the blend of the two
// rows its vertical taps read, then per pixel the blend of two columns.
template <class T>
class RowInterpolator {
 public:
  RowInterpolator(const T* map, const cm::FusedLossProblem& problem, int64_t channels)
      : map_(map),
        problem_(problem),
        channels_(channels),
        blended_(static_cast<size_t>(problem.low_width * channels)),
        pixel_(static_cast<size_t>(channels)) {}

  void start_row(int64_t n, const cm::BilinearTaps<T>& v) {
    if (!map_) return;
    const int64_t row = problem_.low_width * channels_;
    const T* r0 = map_ + (n * problem_.low_height + v.i0) * row;
    const T* r1 = map_ + (n * problem_.low_height + v.i1) * row;
    for (int64_t i = 0; i < row; ++i) blended_[static_cast<size_t>(i)] = v.lambda0 * r0[i] + v.lambda1 * r1[i];
  }

  // The pixel's channel values, interpolated between the blended columns of its horizontal taps.
  const T* pixel(const cm::BilinearTaps<T>& h) {
    if (!map_) return nullptr;
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
void fused_losses(T* values, T* pixel_stats, int64_t* label_stats, const T* logits, const T* teacher, const L* labels,
                  const cm::FusedLossProblem& problem, const Backend&) {
  const int64_t rows = problem.batch * problem.height, grain = rows_per_chunk(problem);
  const auto vertical = axis_taps<T>(problem.low_height, problem.height, problem.align_corners);
  const auto horizontal = axis_taps<T>(problem.low_width, problem.width, problem.align_corners);
  const T* teacher_map = problem.reads_teacher() ? teacher : nullptr;
  std::vector<FusedPartial> partials(static_cast<size_t>((rows + grain - 1) / grain));
  parallel_for(0, rows, grain, [&](int64_t lo, int64_t hi) {
    FusedPartial& part = partials[static_cast<size_t>(lo / grain)];
    RowInterpolator<T> student(logits, problem, problem.channels);
    RowInterpolator<T> old_model(teacher_map, problem, problem.old_channels);
    for (int64_t row = lo; row < hi; ++row) {
      const int64_t n = row / problem.height, y = row % problem.height;
      student.start_row(n, vertical[static_cast<size_t>(y)]);
      old_model.start_row(n, vertical[static_cast<size_t>(y)]);
      for (int64_t x = 0; x < problem.width; ++x) {
        const int64_t p = row * problem.width + x;
        const int64_t label = static_cast<int64_t>(labels[p]);
        const bool is_class = part.labels.count(p, label, problem.channels, problem.ignore_index);
        const T* z = student.pixel(horizontal[static_cast<size_t>(x)]);
        const T* t = old_model.pixel(horizontal[static_cast<size_t>(x)]);
        cm::PixelLossAccumulator<T> pixel(problem, is_class ? label : -1);
        for (int64_t c = 0; c < problem.channels; ++c) pixel.add(c, z[c], t && c < problem.old_channels ? t[c] : T(0));
        const cm::PixelStats<T> s = pixel.stats();
        for (int k = 0; k < problem.terms; ++k) part.sums[k] += pixel.loss(k, s);
        if (pixel_stats) {
          T* out = pixel_stats + p * cm::kPixelStats;
          out[0] = s.lse, out[1] = s.lse_old, out[2] = s.lse_bg, out[3] = s.lse_teacher, out[4] = s.teacher_background;
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
                           const T* logits, const T* teacher, const L* labels, const cm::FusedLossProblem& problem,
                           const Backend& backend) {
  T factors[cm::kMaxFusedTerms] = {};
  term_factors(factors, dvalues, label_stats, problem);
  const int64_t channels = problem.channels, low_w = problem.low_width;
  const int64_t rows = problem.batch * problem.height;
  const auto vertical = axis_taps<T>(problem.low_height, problem.height, problem.align_corners);
  const auto horizontal = axis_taps<T>(problem.low_width, problem.width, problem.align_corners);
  const T* teacher_map = problem.reads_teacher() ? teacher : nullptr;
  // Pass 1: each full-resolution row's gradient, contracted over its columns: (N, H, w, C).
  T* row_gradients = backend.scratch->array<T>(rows * low_w * channels);
  parallel_for(0, rows, rows_per_chunk(problem), [&](int64_t lo, int64_t hi) {
    RowInterpolator<T> student(logits, problem, channels);
    RowInterpolator<T> old_model(teacher_map, problem, problem.old_channels);
    for (int64_t row = lo; row < hi; ++row) {
      const int64_t n = row / problem.height, y = row % problem.height;
      student.start_row(n, vertical[static_cast<size_t>(y)]);
      old_model.start_row(n, vertical[static_cast<size_t>(y)]);
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
        T* a = out + h.i0 * channels;
        T* b = out + h.i1 * channels;
        for (int64_t c = 0; c < channels; ++c) {
          const T g = cm::fused_loss_gradient<T>(problem, factors, s, cls, c, z[c],
                                                 t && c < problem.old_channels ? t[c] : T(0));
          a[c] += h.lambda0 * g;
          b[c] += h.lambda1 * g;
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
  template void fused_losses<T, L>(T*, T*, int64_t*, const T*, const T*, const L*, const cm::FusedLossProblem&,   \
                                   const Backend&);                                                               \
  template void fused_losses_backward<T, L>(T*, const T*, const int64_t*, const T*, const T*, const T*, const L*, \
                                            const cm::FusedLossProblem&, const Backend&);
STRATA_INSTANTIATE(float, uint8_t)
STRATA_INSTANTIATE(float, int32_t)
STRATA_INSTANTIATE(float, int64_t)
STRATA_INSTANTIATE(double, uint8_t)
STRATA_INSTANTIATE(double, int32_t)
STRATA_INSTANTIATE(double, int64_t)
#undef STRATA_INSTANTIATE

}  // namespace strata::kernels::cpu
