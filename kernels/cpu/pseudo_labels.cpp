// PLOP's entropy pseudo-labelling on the CPU (kernels/cpu/pseudo_labels.h says what it computes).
// Work is split by full-resolution rows; each chunk of rows counts into its own histogram or its
// own per-row tallies, combined in order afterwards (integers: the same result on any number of
// threads).
#include "kernels/cpu/pseudo_labels.h"

#include <algorithm>
#include <vector>

#include "kernels/cpu/parallel.h"
#include "kernels/cpu/upsample.h"

namespace strata::kernels::cpu {

namespace cm = strata::kernels::common;

namespace {

// Rows per chunk: about this many channel evaluations each.
constexpr int64_t kChannelGrain = int64_t{1} << 14;

int64_t rows_per_chunk(const PseudoLabelProblem& problem) {
  return std::max<int64_t>(1, kChannelGrain / std::max<int64_t>(1, problem.width * problem.old_channels));
}

// f(p, n, verdict) for every pixel of rows [lo, hi) that wants(label) selects.
template <class T, class L, class Wants, class F>
void for_each_verdict(const PseudoLabelProblem& problem, const T* teacher, const L* labels,
                      const std::vector<cm::BilinearTaps<T>>& vertical,
                      const std::vector<cm::BilinearTaps<T>>& horizontal, int64_t lo, int64_t hi, Wants wants, F f) {
  for (int64_t row = lo; row < hi; ++row) {
    const int64_t n = row / problem.height, y = row % problem.height;
    for (int64_t x = 0; x < problem.width; ++x) {
      const int64_t p = row * problem.width + x;
      const int64_t label = static_cast<int64_t>(labels[p]);
      if (!wants(label)) continue;
      f(p, row, label,
        cm::teacher_pixel_verdict<T>(problem, teacher, n, vertical[static_cast<size_t>(y)],
                                     horizontal[static_cast<size_t>(x)]));
    }
  }
}

}  // namespace

template <class T, class L>
void entropy_histogram(int64_t* histogram, const T* teacher, const L* labels, const PseudoLabelProblem& problem,
                       const Backend&) {
  const int64_t rows = problem.batch * problem.height, grain = rows_per_chunk(problem);
  const int64_t cells = problem.old_channels * cm::kEntropyBins;
  const auto vertical = bilinear_axis_taps<T>(problem.low_height, problem.height, problem.align_corners);
  const auto horizontal = bilinear_axis_taps<T>(problem.low_width, problem.width, problem.align_corners);
  std::vector<std::vector<int64_t>> partials(static_cast<size_t>((rows + grain - 1) / grain));
  parallel_for(0, rows, grain, [&](int64_t lo, int64_t hi) {
    std::vector<int64_t>& counts = partials[static_cast<size_t>(lo / grain)];
    counts.assign(static_cast<size_t>(cells), 0);
    for_each_verdict(
        problem, teacher, labels, vertical, horizontal, lo, hi, [](int64_t label) { return label == 0; },
        [&](int64_t, int64_t, int64_t, const cm::TeacherVerdict<T>& v) {
          ++counts[static_cast<size_t>(v.cls * cm::kEntropyBins + cm::entropy_bin(v.entropy))];
        });
  });
  for (const std::vector<int64_t>& counts : partials) {
    for (int64_t i = 0; i < cells; ++i) histogram[i] += counts[static_cast<size_t>(i)];
  }
}

template <class T, class L>
void entropy_pseudo_labels(L* pseudo, T* image_weights, const T* teacher, const L* labels, const T* thresholds,
                           const PseudoLabelProblem& problem, const Backend&) {
  const int64_t rows = problem.batch * problem.height;
  const auto vertical = bilinear_axis_taps<T>(problem.low_height, problem.height, problem.align_corners);
  const auto horizontal = bilinear_axis_taps<T>(problem.low_width, problem.width, problem.align_corners);
  // Per row: its background pixels (label < C_old) and those given a pseudo-label.
  std::vector<int64_t> background(static_cast<size_t>(rows), 0), kept(static_cast<size_t>(rows), 0);
  std::copy(labels, labels + problem.pixels(), pseudo);
  parallel_for(0, rows, rows_per_chunk(problem), [&](int64_t lo, int64_t hi) {
    for_each_verdict(
        problem, teacher, labels, vertical, horizontal, lo, hi,
        [&](int64_t label) { return label >= 0 && label < problem.old_channels; },
        [&](int64_t p, int64_t row, int64_t, const cm::TeacherVerdict<T>& v) {
          const bool valid = v.entropy < thresholds[v.cls];
          pseudo[p] = static_cast<L>(valid ? v.cls : problem.ignore_index);
          ++background[static_cast<size_t>(row)];
          kept[static_cast<size_t>(row)] += valid ? 1 : 0;
        });
  });
  for (int64_t n = 0; n < problem.batch; ++n) {
    int64_t image_background = 0, image_kept = 0;
    for (int64_t y = 0; y < problem.height; ++y) {
      image_background += background[static_cast<size_t>(n * problem.height + y)];
      image_kept += kept[static_cast<size_t>(n * problem.height + y)];
    }
    image_weights[n] = static_cast<T>(image_kept) / (static_cast<T>(image_background) + static_cast<T>(1e-6));
  }
}

#define STRATA_INSTANTIATE(T, L)                                                                                  \
  template void entropy_histogram<T, L>(int64_t*, const T*, const L*, const PseudoLabelProblem&, const Backend&); \
  template void entropy_pseudo_labels<T, L>(L*, T*, const T*, const L*, const T*, const PseudoLabelProblem&,      \
                                            const Backend&);
STRATA_INSTANTIATE(float, uint8_t)
STRATA_INSTANTIATE(float, int32_t)
STRATA_INSTANTIATE(float, int64_t)
STRATA_INSTANTIATE(double, uint8_t)
STRATA_INSTANTIATE(double, int32_t)
STRATA_INSTANTIATE(double, int64_t)
#undef STRATA_INSTANTIATE

}  // namespace strata::kernels::cpu
