// The fused segmentation losses on CUDA (kernels/cpu/fused_losses.h says what they compute; the
// per-pixel math is kernels/common/fused_losses.h, shared with the CPU).
//
// Threads:
//   forward: one thread per full-resolution pixel. It interpolates each channel from the pixel's
//     four low-resolution taps as it goes (online softmax, one visit per channel: C = 151 needs no
//     second pass over global memory), writes the pixel's PixelStats, and accumulates each term's
//     loss and the label tally; blocks combine their threads in a fixed tree and one block combines
//     the blocks in order (no float atomics: deterministic).
//   backward, rows: one thread per (n, Y, x, c), x a low-resolution column: the gradient of the
//     full-resolution pixels of row Y whose horizontal taps read x, weighted by those taps, into a
//     (N, H, w, C) buffer from scratch.
//   backward, columns: one thread per (n, y, x, c) of the low-resolution logits: the buffer's rows
//     whose vertical taps read y, weighted by those taps.
// Each full-resolution gradient is evaluated twice (once per horizontal tap) in exchange for plain
// gathers with no atomics and no full-resolution buffer.
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/common/fused_losses.h"
#include "kernels/common/labels.h"
#include "kernels/cuda/fused_losses.h"
#include "kernels/cuda/kernel_utils.h"
#include "kernels/cuda/label_stats.cuh"
#include "kernels/cuda/launch.h"

namespace strata::kernels::cuda {

namespace cm = strata::kernels::common;

namespace {

constexpr unsigned kThreads = kLabelStatsThreads;

// Channel c of a low-resolution map (N, h, w, channels) at full-resolution pixel (n, v, h) taps.
template <class T>
__device__ inline T interpolate(const T* map, int64_t n, const cm::BilinearTaps<T>& v, const cm::BilinearTaps<T>& h,
                                int64_t c, int64_t channels, const FusedLossProblem& problem) {
  const T* image = map + n * problem.low_height * problem.low_width * channels;
  const T* r0 = image + v.i0 * problem.low_width * channels;
  const T* r1 = image + v.i1 * problem.low_width * channels;
  const T top = h.lambda0 * r0[h.i0 * channels + c] + h.lambda1 * r0[h.i1 * channels + c];
  const T bottom = h.lambda0 * r1[h.i0 * channels + c] + h.lambda1 * r1[h.i1 * channels + c];
  return v.lambda0 * top + v.lambda1 * bottom;
}

template <class T>
struct PixelTaps {
  int64_t n;
  cm::BilinearTaps<T> v, h;
};

template <class T>
__device__ inline PixelTaps<T> pixel_taps(int64_t p, const FusedLossProblem& problem) {
  const int64_t x = p % problem.width, y = (p / problem.width) % problem.height,
                n = p / (problem.width * problem.height);
  const T scale_v = cm::bilinear_scale<T>(problem.low_height, problem.height, problem.align_corners);
  const T scale_h = cm::bilinear_scale<T>(problem.low_width, problem.width, problem.align_corners);
  return {n, cm::bilinear_taps<T>(scale_v, y, problem.low_height, problem.align_corners),
          cm::bilinear_taps<T>(scale_h, x, problem.low_width, problem.align_corners)};
}

// Blocks' partials: kMaxFusedTerms sums and two label counts per block.
struct Partials {
  double* sums;
  int64_t* counts;
};

template <class T, class L>
__global__ void fused_losses_kernel(T* pixel_stats, Partials partials, const T* logits, const T* teacher,
                                    const T* image_weights, const L* labels, FusedLossProblem problem) {
  double sums[cm::kMaxFusedTerms] = {};
  cm::LabelTally tally;
  const int64_t old = problem.old_channels;
  STRATA_FOR_EACH_INDEX(p, problem.pixels()) {
    const int64_t label = static_cast<int64_t>(labels[p]);
    const bool is_class = tally.count(p, label, problem.channels, problem.ignore_index);
    const PixelTaps<T> taps = pixel_taps<T>(p, problem);
    cm::PixelLossAccumulator<T> pixel(problem, is_class ? label : -1);
    for (int64_t c = 0; c < problem.channels; ++c) {
      const T z = interpolate(logits, taps.n, taps.v, taps.h, c, problem.channels, problem);
      const T t = teacher && c < old ? interpolate(teacher, taps.n, taps.v, taps.h, c, old, problem) : T(0);
      pixel.add(c, z, t);
    }
    const cm::PixelSums<T> pixel_sums = pixel.sums();
    const cm::PixelStats<T>& s = pixel_sums.stats;
    const double image_weight = image_weights ? static_cast<double>(image_weights[taps.n]) : 1.0;
#pragma unroll
    for (int k = 0; k < cm::kMaxFusedTerms; ++k) {
      if (k < problem.terms) {
        sums[k] += image_weight *
                   static_cast<double>(cm::pixel_term_loss(problem, k, pixel_sums, is_class ? label : int64_t{-1}));
      }
    }
    if (pixel_stats) {
      T* out = pixel_stats + p * cm::kPixelStats;
      out[0] = s.lse, out[1] = s.lse_old, out[2] = s.lse_bg, out[3] = s.lse_teacher, out[4] = s.distillation;
    }
  }
  __shared__ double shared[kThreads];
#pragma unroll
  for (int k = 0; k < cm::kMaxFusedTerms; ++k) {
    if (k >= problem.terms) break;
    const double block_sum = block_reduce(sums[k], shared, SumOp{});
    if (threadIdx.x == 0) partials.sums[blockIdx.x * cm::kMaxFusedTerms + k] = block_sum;
  }
  write_tally_partial(partials.counts, tally);
}

// Combines the blocks' partials in order: the label statistics, then values[k] = weight_k ·
// scale_k · sum_k. One block of kThreads threads.
template <class T, class L>
__global__ void fused_losses_finish_kernel(T* values, int64_t* label_stats, Partials partials, int64_t blocks,
                                           const L* labels, FusedLossProblem problem) {
  __shared__ double shared[kThreads];
  const int64_t valid = write_label_stats_from_partials(label_stats, partials.counts, blocks, labels);
#pragma unroll
  for (int k = 0; k < cm::kMaxFusedTerms; ++k) {
    if (k >= problem.terms) break;
    double sum = 0;
    for (int64_t b = threadIdx.x; b < blocks; b += kThreads) sum += partials.sums[b * cm::kMaxFusedTerms + k];
    sum = block_reduce(sum, shared, SumOp{});
    if (threadIdx.x == 0) {
      values[k] = static_cast<T>(sum * problem.weights[k] * cm::reduction_factor(problem.reductions[k], valid));
    }
  }
}

template <class T, class L>
__global__ void fused_losses_rows_kernel(T* row_gradients, const T* dvalues, const int64_t* label_stats,
                                         const T* pixel_stats, const T* logits, const T* teacher,
                                         const T* image_weights, const L* labels, FusedLossProblem problem) {
  T factors[cm::kMaxFusedTerms] = {};
#pragma unroll
  for (int k = 0; k < cm::kMaxFusedTerms; ++k) {
    if (k >= problem.terms) break;
    const double scale = cm::reduction_factor(problem.reductions[k], label_stats[cm::kValidLabels]);
    factors[k] = static_cast<T>(static_cast<double>(dvalues[k]) * problem.weights[k] * scale);
  }
  const int64_t channels = problem.channels, old = problem.old_channels, low_w = problem.low_width;
  const T scale_h = cm::bilinear_scale<T>(low_w, problem.width, problem.align_corners);
  STRATA_FOR_EACH_INDEX(i, problem.batch * problem.height * low_w * channels) {
    const int64_t c = i % channels, x = (i / channels) % low_w, row = i / (channels * low_w);
    const cm::BilinearRange range = cm::bilinear_footprint<T>(scale_h, x, low_w, problem.width, problem.align_corners);
    T sum = 0;
    for (int64_t column = range.first; column < range.last; ++column) {
      const int64_t p = row * problem.width + column;
      const PixelTaps<T> taps = pixel_taps<T>(p, problem);
      const int64_t label = static_cast<int64_t>(labels[p]);
      const int64_t cls = cm::label_is_class(label, channels, problem.ignore_index) ? label : -1;
      const T* st = pixel_stats + p * cm::kPixelStats;
      const cm::PixelStats<T> s{st[0], st[1], st[2], st[3], st[4]};
      const T z = interpolate(logits, taps.n, taps.v, taps.h, c, channels, problem);
      const T t = teacher && c < old ? interpolate(teacher, taps.n, taps.v, taps.h, c, old, problem) : T(0);
      const T weight =
          image_weights ? cm::bilinear_weight(taps.h, x) * image_weights[taps.n] : cm::bilinear_weight(taps.h, x);
      sum += weight * cm::fused_loss_gradient<T>(problem, factors, s, cls, c, z, t);
    }
    row_gradients[i] = sum;
  }
}

template <class T>
__global__ void fused_losses_columns_kernel(T* dlogits, const T* row_gradients, FusedLossProblem problem) {
  const int64_t row_values = problem.low_width * problem.channels;
  const T scale_v = cm::bilinear_scale<T>(problem.low_height, problem.height, problem.align_corners);
  STRATA_FOR_EACH_INDEX(i, problem.batch * problem.low_height * row_values) {
    const int64_t within = i % row_values, y = (i / row_values) % problem.low_height;
    const int64_t n = i / (row_values * problem.low_height);
    const cm::BilinearRange range =
        cm::bilinear_footprint<T>(scale_v, y, problem.low_height, problem.height, problem.align_corners);
    T sum = 0;
    for (int64_t row = range.first; row < range.last; ++row) {
      const cm::BilinearTaps<T> v = cm::bilinear_taps<T>(scale_v, row, problem.low_height, problem.align_corners);
      sum += cm::bilinear_weight(v, y) * row_gradients[(n * problem.height + row) * row_values + within];
    }
    dlogits[i] = sum;
  }
}

}  // namespace

template <class T, class L>
void fused_losses(T* values, T* pixel_stats, int64_t* label_stats, const T* logits, const T* teacher,
                  const T* image_weights, const L* labels, const FusedLossProblem& problem, const Backend& backend) {
  const unsigned blocks = blocks_for(problem.pixels(), kThreads);
  const Partials partials{backend.scratch->array<double>(int64_t{blocks} * cm::kMaxFusedTerms),
                          backend.scratch->array<int64_t>(2 * int64_t{blocks})};
  const T* teacher_map = problem.reads_teacher() ? teacher : nullptr;
  STRATA_LAUNCH((fused_losses_kernel<T, L>), backend.stream, blocks, kThreads, 0, pixel_stats, partials, logits,
                teacher_map, image_weights, labels, problem);
  STRATA_LAUNCH((fused_losses_finish_kernel<T, L>), backend.stream, 1, kThreads, 0, values, label_stats, partials,
                int64_t{blocks}, labels, problem);
}

template <class T, class L>
void fused_losses_backward(T* dlogits, const T* dvalues, const int64_t* label_stats, const T* pixel_stats,
                           const T* logits, const T* teacher, const T* image_weights, const L* labels,
                           const FusedLossProblem& problem, const Backend& backend) {
  const int64_t row_values = problem.batch * problem.height * problem.low_width * problem.channels;
  T* row_gradients = backend.scratch->array<T>(row_values);
  const T* teacher_map = problem.reads_teacher() ? teacher : nullptr;
  STRATA_LAUNCH((fused_losses_rows_kernel<T, L>), backend.stream, blocks_for(row_values, kThreads), kThreads, 0,
                row_gradients, dvalues, label_stats, pixel_stats, logits, teacher_map, image_weights, labels, problem);
  const int64_t low_values = problem.batch * problem.low_height * problem.low_width * problem.channels;
  STRATA_LAUNCH((fused_losses_columns_kernel<T>), backend.stream, blocks_for(low_values, kThreads), kThreads, 0,
                dlogits, static_cast<const T*>(row_gradients), problem);
}

#define STRATA_INSTANTIATE(T, L)                                                                                      \
  template void fused_losses<T, L>(T*, T*, int64_t*, const T*, const T*, const T*, const L*, const FusedLossProblem&, \
                                   const Backend&);                                                                   \
  template void fused_losses_backward<T, L>(T*, const T*, const int64_t*, const T*, const T*, const T*, const T*,     \
                                            const L*, const FusedLossProblem&, const Backend&);
STRATA_INSTANTIATE(float, uint8_t)
STRATA_INSTANTIATE(float, int32_t)
STRATA_INSTANTIATE(float, int64_t)
STRATA_INSTANTIATE(double, uint8_t)
STRATA_INSTANTIATE(double, int32_t)
STRATA_INSTANTIATE(double, int64_t)
#undef STRATA_INSTANTIATE

}  // namespace strata::kernels::cuda
