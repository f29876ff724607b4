// Loss kernels on CUDA, as PyTorch 1.13 defines them (torch.nn.functional documentation):
//   cross_entropy(x, y)   = -log softmax(x)_y = logsumexp(x) - x_y           F.cross_entropy
//   nll(lp, y)            = -lp_y                                             F.nll_loss
//   bce_with_logits(x, t) = max(x, 0) - x t + log(1 + exp(-|x|))              F.binary_cross_entropy_with_logits
//   mse(a, b)             = (a - b)^2                                         F.mse_loss
// with the per-pixel math of kernels/common/softmax.h and the per-element math of
// kernels/common/losses.h, the functions the CPU kernels call.
//
// Threads:
//   cross_entropy forward and backward: one thread per pixel over rows staged in shared memory
//     (pixel_rows.h), so each pixel's channel loops are the CPU's. The forward also validates the
//     pixel's label and accumulates (loss sum, valid count, first invalid pixel) per thread.
//   nll and the elementwise losses: one thread per pixel / element (grid-stride).
// Sums are deterministic without float atomics: each thread accumulates in double in a fixed order,
// each block combines its threads in a fixed tree into one partial, and one block combines the
// partials (loss_finish_kernel), also writing the scalar loss and the label statistics
// (label_stats.cuh). Partials live in the backend's scratch memory.
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/common/labels.h"
#include "kernels/common/losses.h"
#include "kernels/common/softmax.h"
#include "kernels/cuda/kernel_utils.h"
#include "kernels/cuda/label_stats.cuh"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/losses.h"
#include "kernels/cuda/pixel_rows.h"

namespace strata::kernels::cuda {

namespace cm = strata::kernels::common;

namespace {

constexpr unsigned kThreads = kLabelStatsThreads;

// Threads per block of the cross-entropy forward over T logits: the staged tile's rows, or the
// unstaged default.
template <class T>
unsigned cross_entropy_threads(int64_t channels) {
  unsigned rows = staged_rows(channels, 1, sizeof(T));
  return rows ? rows : kUnstagedRowThreads;
}

// Scratch of a forward: one double per block, and two counts per block for labelled losses.
struct Partials {
  double* sums;
  int64_t* counts;  // null for the elementwise losses
};

Partials partials_for(int64_t blocks, bool labelled, const Backend& backend) {
  return {backend.scratch->array<double>(blocks), labelled ? backend.scratch->array<int64_t>(2 * blocks) : nullptr};
}

// One block's partial: partials.sums[b], and its label tally when labelled. Called by every thread
// of the block.
__device__ inline void write_block_partial(const Partials& partials, double sum, const cm::LabelTally& tally) {
  __shared__ double sums[kThreads];
  sum = block_reduce(sum, sums, SumOp{});
  if (threadIdx.x == 0) partials.sums[blockIdx.x] = sum;
  if (partials.counts) write_tally_partial(partials.counts, tally);
}

// Combines `blocks` partials in a fixed order: stats (labelled losses), then reduced = T(sum *
// factor), the factor counting the valid labels for a mean over them. One block of kThreads threads.
template <class T, class L>
__global__ void loss_finish_kernel(T* reduced, int64_t* stats, Partials partials, int64_t blocks,
                                   LossReduction reduction, const L* labels) {
  __shared__ double sums[kThreads];
  double sum = 0;
  for (int64_t b = threadIdx.x; b < blocks; b += kThreads) sum += partials.sums[b];
  sum = block_reduce(sum, sums, SumOp{});
  const int64_t valid = stats ? write_label_stats_from_partials(stats, partials.counts, blocks, labels) : 0;
  if (threadIdx.x == 0 && reduced) reduced[0] = static_cast<T>(sum * cm::reduction_factor(reduction, valid));
}

template <class T, class L>
void finish(T* reduced, int64_t* stats, const Partials& partials, int64_t blocks, const LossReduction& reduction,
            const L* labels, const Backend& backend) {
  if (!reduced && !stats) return;
  STRATA_LAUNCH((loss_finish_kernel<T, L>), backend.stream, 1, kThreads, 0, reduced, stats, partials, blocks, reduction,
                labels);
}

template <class T, class L>
__global__ void cross_entropy_kernel(T* loss, T* lse, Partials partials, const T* x, const L* labels, int64_t pixels,
                                     int64_t channels, int64_t ignore_index, unsigned stride, bool staged) {
  STRATA_DYNAMIC_SHARED(T, tile);
  double sum = 0;
  cm::LabelTally tally;
  const int64_t tile_pixels = blockDim.x;
  for (int64_t first = blockIdx.x * tile_pixels; first < pixels; first += gridDim.x * tile_pixels) {
    const unsigned rows = static_cast<unsigned>(pixels - first < tile_pixels ? pixels - first : tile_pixels);
    if (staged) {
      stage_rows(tile, stride, x + first * channels, rows, static_cast<unsigned>(channels));
      __syncthreads();
    }
    if (threadIdx.x < rows) {
      const int64_t p = first + threadIdx.x;
      const int64_t label = static_cast<int64_t>(labels[p]);
      T value = 0;
      cm::LogSumExp<T> parts{0, 0};
      if (tally.count(p, label, channels, ignore_index)) {
        const T* row = staged ? tile + threadIdx.x * stride : x + p * channels;
        value = cm::cross_entropy_pixel<T>(row, channels, label, parts);
        sum += value;
      }
      if (loss) loss[p] = value;
      if (lse) {
        lse[2 * p] = parts.max;
        lse[2 * p + 1] = parts.log_sum;
      }
    }
    if (staged) __syncthreads();
  }
  write_block_partial(partials, sum, tally);
}

template <class T, class L>
struct CrossEntropyBackwardOp {
  LossUpstream<T> upstream;
  const T* lse;
  const L* labels;
  int64_t channels, ignore_index;
  __device__ void operator()(int64_t p, T* dx, const T* x, const T*) const {
    const int64_t label = static_cast<int64_t>(labels[p]);
    if (!cm::label_is_class(label, channels, ignore_index)) {
      for (int64_t c = 0; c < channels; ++c) dx[c] = 0;
      return;
    }
    cm::LogSumExp<T> parts{lse[2 * p], lse[2 * p + 1]};
    cm::cross_entropy_backward_pixel<T>(dx, x, channels, label, parts, upstream.weight(p));
  }
};

template <class T, class L>
__global__ void nll_kernel(T* loss, Partials partials, const T* log_probs, const L* labels, int64_t pixels,
                           int64_t channels, int64_t ignore_index) {
  double sum = 0;
  cm::LabelTally tally;
  STRATA_FOR_EACH_INDEX(p, pixels) {
    const int64_t label = static_cast<int64_t>(labels[p]);
    T value = 0;
    if (tally.count(p, label, channels, ignore_index)) {
      value = -log_probs[p * channels + label];
      sum += value;
    }
    if (loss) loss[p] = value;
  }
  write_block_partial(partials, sum, tally);
}

template <class T, class L>
__global__ void nll_backward_kernel(T* dlog_probs, LossUpstream<T> upstream, const L* labels, int64_t pixels,
                                    int64_t channels, int64_t ignore_index) {
  STRATA_FOR_EACH_INDEX(i, pixels * channels) {
    const int64_t p = i / channels, c = i % channels;
    const int64_t label = static_cast<int64_t>(labels[p]);
    dlog_probs[i] = c == label && cm::label_is_class(label, channels, ignore_index) ? -upstream.weight(p) : T(0);
  }
}

// loss[i] = value(a[i], b[i]), summed into the block's partial.
template <class T, class Value>
__global__ void elementwise_loss_kernel(T* loss, Partials partials, const T* a, const T* b, int64_t n, Value value) {
  double sum = 0;
  STRATA_FOR_EACH_INDEX(i, n) {
    T v = value(a[i], b[i]);
    if (loss) loss[i] = v;
    sum += v;
  }
  write_block_partial(partials, sum, cm::LabelTally{});
}

template <class T>
__global__ void bce_with_logits_backward_kernel(T* dx, T* dtargets, LossUpstream<T> upstream, const T* x,
                                                const T* targets, int64_t n) {
  STRATA_FOR_EACH_INDEX(i, n) {
    const T weight = upstream.weight(i);
    if (dx) dx[i] = weight * (cm::sigmoid(x[i]) - targets[i]);
    if (dtargets) dtargets[i] = -weight * x[i];
  }
}

template <class T>
__global__ void mse_backward_kernel(T* da, T* db, LossUpstream<T> upstream, const T* a, const T* b, int64_t n) {
  STRATA_FOR_EACH_INDEX(i, n) {
    const T g = T(2) * upstream.weight(i) * (a[i] - b[i]);
    if (da) da[i] = g;
    if (db) db[i] = -g;
  }
}

// The forward of an elementwise loss: per-element values, partial sums, the reduced scalar. These
// losses read no labels, so the finish kernel gets no label statistics to write (null stats and
// labels; uint8_t only names its label template argument).
template <class T, class Value>
void elementwise_loss(T* loss, T* reduced, const T* a, const T* b, int64_t n, const LossReduction& reduction,
                      Value value, const Backend& backend) {
  const unsigned blocks = blocks_for(n, kThreads);
  const Partials partials = partials_for(blocks, false, backend);
  STRATA_LAUNCH((elementwise_loss_kernel<T, Value>), backend.stream, blocks, kThreads, 0, loss, partials, a, b, n,
                value);
  finish(reduced, static_cast<int64_t*>(nullptr), partials, blocks, reduction, static_cast<const uint8_t*>(nullptr),
         backend);
}

}  // namespace

template <class T, class L>
void cross_entropy(T* loss, T* lse, T* reduced, int64_t* stats, const T* x, const L* labels, int64_t pixels,
                   int64_t channels, int64_t ignore_index, const LossReduction& reduction, const Backend& backend) {
  const unsigned rows = staged_rows(channels, 1, sizeof(T));
  const unsigned threads = cross_entropy_threads<T>(channels);
  const unsigned stride = rows ? static_cast<unsigned>(staged_stride(channels)) : 0u;
  const size_t shared = rows ? static_cast<size_t>(rows) * stride * sizeof(T) : 0;
  const unsigned blocks = blocks_for(pixels, threads);
  const Partials partials = partials_for(blocks, true, backend);
  STRATA_LAUNCH((cross_entropy_kernel<T, L>), backend.stream, blocks, threads, shared, loss, lse, partials, x, labels,
                pixels, channels, ignore_index, stride, rows != 0);
  finish(reduced, stats, partials, blocks, reduction, labels, backend);
}

template <class T, class L>
void cross_entropy_backward(T* dx, const LossUpstream<T>& upstream, const T* x, const T* lse, const L* labels,
                            int64_t pixels, int64_t channels, int64_t ignore_index, const Backend& backend) {
  CrossEntropyBackwardOp<T, L> op{upstream, lse, labels, channels, ignore_index};
  launch_pixel_rows<T, 1, true>(op, dx, x, nullptr, pixels, channels, backend.stream);
}

template <class T, class L>
void nll(T* loss, T* reduced, int64_t* stats, const T* log_probs, const L* labels, int64_t pixels, int64_t channels,
         int64_t ignore_index, const LossReduction& reduction, const Backend& backend) {
  const unsigned blocks = blocks_for(pixels, kThreads);
  const Partials partials = partials_for(blocks, true, backend);
  STRATA_LAUNCH((nll_kernel<T, L>), backend.stream, blocks, kThreads, 0, loss, partials, log_probs, labels, pixels,
                channels, ignore_index);
  finish(reduced, stats, partials, blocks, reduction, labels, backend);
}

template <class T, class L>
void nll_backward(T* dlog_probs, const LossUpstream<T>& upstream, const L* labels, int64_t pixels, int64_t channels,
                  int64_t ignore_index, const Backend& backend) {
  const int64_t n = pixels * channels;
  if (n == 0) return;
  STRATA_LAUNCH((nll_backward_kernel<T, L>), backend.stream, blocks_for(n, kThreads), kThreads, 0, dlog_probs, upstream,
                labels, pixels, channels, ignore_index);
}

template <class T>
void bce_with_logits(T* loss, T* reduced, const T* x, const T* targets, int64_t n, const LossReduction& reduction,
                     const Backend& backend) {
  elementwise_loss(loss, reduced, x, targets, n, reduction, cm::BceWithLogitsValue{}, backend);
}

template <class T>
void bce_with_logits_backward(T* dx, T* dtargets, const LossUpstream<T>& upstream, const T* x, const T* targets,
                              int64_t n, const Backend& backend) {
  if (n == 0) return;
  STRATA_LAUNCH((bce_with_logits_backward_kernel<T>), backend.stream, blocks_for(n, kThreads), kThreads, 0, dx,
                dtargets, upstream, x, targets, n);
}

template <class T>
void mse(T* loss, T* reduced, const T* a, const T* b, int64_t n, const LossReduction& reduction,
         const Backend& backend) {
  elementwise_loss(loss, reduced, a, b, n, reduction, cm::MseValue{}, backend);
}

template <class T>
void mse_backward(T* da, T* db, const LossUpstream<T>& upstream, const T* a, const T* b, int64_t n,
                  const Backend& backend) {
  if (n == 0) return;
  STRATA_LAUNCH((mse_backward_kernel<T>), backend.stream, blocks_for(n, kThreads), kThreads, 0, da, db, upstream, a, b,
                n);
}

#define STRATA_INSTANTIATE_LABELLED(T, L)                                                                        \
  template void cross_entropy<T, L>(T*, T*, T*, int64_t*, const T*, const L*, int64_t, int64_t, int64_t,         \
                                    const LossReduction&, const Backend&);                                       \
  template void cross_entropy_backward<T, L>(T*, const LossUpstream<T>&, const T*, const T*, const L*, int64_t,  \
                                             int64_t, int64_t, const Backend&);                                  \
  template void nll<T, L>(T*, T*, int64_t*, const T*, const L*, int64_t, int64_t, int64_t, const LossReduction&, \
                          const Backend&);                                                                       \
  template void nll_backward<T, L>(T*, const LossUpstream<T>&, const L*, int64_t, int64_t, int64_t, const Backend&);
#define STRATA_INSTANTIATE(T)                                                                                  \
  STRATA_INSTANTIATE_LABELLED(T, uint8_t)                                                                      \
  STRATA_INSTANTIATE_LABELLED(T, int32_t)                                                                      \
  STRATA_INSTANTIATE_LABELLED(T, int64_t)                                                                      \
  template void bce_with_logits<T>(T*, T*, const T*, const T*, int64_t, const LossReduction&, const Backend&); \
  template void bce_with_logits_backward<T>(T*, T*, const LossUpstream<T>&, const T*, const T*, int64_t,       \
                                            const Backend&);                                                   \
  template void mse<T>(T*, T*, const T*, const T*, int64_t, const LossReduction&, const Backend&);             \
  template void mse_backward<T>(T*, T*, const LossUpstream<T>&, const T*, const T*, int64_t, const Backend&);
STRATA_INSTANTIATE(float)
STRATA_INSTANTIATE(double)
#undef STRATA_INSTANTIATE
#undef STRATA_INSTANTIATE_LABELLED

}  // namespace strata::kernels::cuda
