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
// partials (loss_finish_kernel), also writing the scalar loss and the label statistics. The first
// invalid pixel is a minimum, so it is order-independent as well.
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/common/losses.h"
#include "kernels/common/softmax.h"
#include "kernels/cuda/kernel_utils.h"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/losses.h"
#include "kernels/cuda/pixel_rows.h"

namespace strata::kernels::cuda {

namespace cm = strata::kernels::common;

namespace {

constexpr unsigned kThreads = 256;
constexpr int64_t kNoInvalidLabel = INT64_MAX;

// Threads per block of the cross-entropy forward over T logits: the staged tile's rows, or the
// unstaged default.
template <class T>
unsigned cross_entropy_threads(int64_t channels) {
  unsigned rows = staged_rows(channels, 1, sizeof(T));
  return rows ? rows : kUnstagedRowThreads;
}

// One block's partial: partial_sums[b]; partial_counts[2 b] = valid pixels, [2 b + 1] = the first
// invalid pixel (kNoInvalidLabel when none). Called by every thread of the block.
__device__ inline void write_block_partial(double* partial_sums, int64_t* partial_counts, double sum, int64_t valid,
                                           int64_t first_invalid) {
  __shared__ double sums[kThreads];
  __shared__ int64_t counts[kThreads];
  sum = block_reduce(sum, sums, SumOp{});
  if (partial_counts) {
    valid = block_reduce(valid, counts, SumOp{});
    first_invalid = block_reduce(first_invalid, counts, MinOp{});
  }
  if (threadIdx.x == 0) {
    partial_sums[blockIdx.x] = sum;
    if (partial_counts) {
      partial_counts[2 * blockIdx.x] = valid;
      partial_counts[2 * blockIdx.x + 1] = first_invalid;
    }
  }
}

// Combines `blocks` partials in a fixed order: reduced = T(sum * factor), stats = {valid, first
// invalid or -1}. One block of kThreads threads.
template <class T>
__global__ void loss_finish_kernel(T* reduced, int64_t* stats, const double* partial_sums,
                                   const int64_t* partial_counts, int64_t blocks, LossReduction reduction) {
  __shared__ double sums[kThreads];
  __shared__ int64_t counts[kThreads];
  double sum = 0;
  int64_t valid = 0, first_invalid = kNoInvalidLabel;
  for (int64_t b = threadIdx.x; b < blocks; b += kThreads) {
    sum += partial_sums[b];
    if (partial_counts) {
      valid += partial_counts[2 * b];
      first_invalid = partial_counts[2 * b + 1] < first_invalid ? partial_counts[2 * b + 1] : first_invalid;
    }
  }
  sum = block_reduce(sum, sums, SumOp{});
  if (partial_counts) {
    valid = block_reduce(valid, counts, SumOp{});
    first_invalid = block_reduce(first_invalid, counts, MinOp{});
  }
  if (threadIdx.x == 0) {
    if (reduced) {
      double factor = reduction.scale;
      if (reduction.per_valid) factor = valid > 0 ? 1.0 / static_cast<double>(valid) : nan("");
      reduced[0] = static_cast<T>(sum * factor);
    }
    if (stats) {
      stats[0] = valid;
      stats[1] = first_invalid == kNoInvalidLabel ? -1 : first_invalid;
    }
  }
}

template <class T>
void finish(T* reduced, int64_t* stats, const double* partial_sums, const int64_t* partial_counts, int64_t blocks,
            const LossReduction& reduction, const Stream& stream) {
  if (!reduced && !stats) return;
  STRATA_LAUNCH((loss_finish_kernel<T>), stream, 1, kThreads, 0, reduced, stats, partial_sums, partial_counts, blocks,
                reduction);
}

// The weight of element i's derivative: the per-element upstream gradient, or the reduced loss's
// upstream gradient times the reduction factor (rounded to T as the CPU's scale).
template <class T>
__device__ inline T upstream_weight(const T* dloss, const T* dreduced, double factor, int64_t i) {
  return dloss ? dloss[i] : static_cast<T>(static_cast<double>(*dreduced) * factor);
}

template <class T, class L>
__global__ void cross_entropy_kernel(T* loss, T* lse, double* partial_sums, int64_t* partial_counts, const T* x,
                                     const L* labels, int64_t pixels, int64_t channels, int64_t ignore_index,
                                     unsigned stride, bool staged) {
  STRATA_DYNAMIC_SHARED(T, tile);
  double sum = 0;
  int64_t valid = 0, first_invalid = kNoInvalidLabel;
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
      if (cm::label_is_invalid(label, channels, ignore_index)) {
        if (first_invalid == kNoInvalidLabel) first_invalid = p;
      } else if (label != ignore_index) {
        const T* row = staged ? tile + threadIdx.x * stride : x + p * channels;
        value = cm::cross_entropy_pixel<T>(row, channels, label, parts);
        sum += value;
        ++valid;
      }
      if (loss) loss[p] = value;
      if (lse) {
        lse[2 * p] = parts.max;
        lse[2 * p + 1] = parts.log_sum;
      }
    }
    if (staged) __syncthreads();
  }
  write_block_partial(partial_sums, partial_counts, sum, valid, first_invalid);
}

template <class T, class L>
struct CrossEntropyBackwardOp {
  const T* dloss;
  const T* dreduced;
  double factor;
  const T* lse;
  const L* labels;
  int64_t channels, ignore_index;
  __device__ void operator()(int64_t p, T* dx, const T* x, const T*) const {
    const int64_t label = static_cast<int64_t>(labels[p]);
    if (label == ignore_index) {
      for (int64_t c = 0; c < channels; ++c) dx[c] = 0;
      return;
    }
    const T weight = upstream_weight(dloss, dreduced, factor, p);
    cm::LogSumExp<T> parts{lse[2 * p], lse[2 * p + 1]};
    cm::cross_entropy_backward_pixel<T>(dx, x, channels, label, parts, weight);
  }
};

template <class T, class L>
__global__ void nll_kernel(T* loss, double* partial_sums, int64_t* partial_counts, const T* log_probs,
                           const L* labels, int64_t pixels, int64_t channels, int64_t ignore_index) {
  double sum = 0;
  int64_t valid = 0, first_invalid = kNoInvalidLabel;
  STRATA_FOR_EACH_INDEX(p, pixels) {
    const int64_t label = static_cast<int64_t>(labels[p]);
    T value = 0;
    if (cm::label_is_invalid(label, channels, ignore_index)) {
      if (first_invalid == kNoInvalidLabel) first_invalid = p;
    } else if (label != ignore_index) {
      value = -log_probs[p * channels + label];
      sum += value;
      ++valid;
    }
    if (loss) loss[p] = value;
  }
  write_block_partial(partial_sums, partial_counts, sum, valid, first_invalid);
}

template <class T, class L>
__global__ void nll_backward_kernel(T* dlog_probs, const T* dloss, const T* dreduced, double factor, const L* labels,
                                    int64_t pixels, int64_t channels, int64_t ignore_index) {
  STRATA_FOR_EACH_INDEX(i, pixels * channels) {
    const int64_t p = i / channels, c = i % channels;
    const int64_t label = static_cast<int64_t>(labels[p]);
    dlog_probs[i] = label != ignore_index && c == label ? -upstream_weight(dloss, dreduced, factor, p) : T(0);
  }
}

template <class T>
__global__ void bce_with_logits_kernel(T* loss, double* partial_sums, const T* x, const T* targets, int64_t n) {
  double sum = 0;
  STRATA_FOR_EACH_INDEX(i, n) {
    T value = cm::bce_with_logits_value(x[i], targets[i]);
    if (loss) loss[i] = value;
    sum += value;
  }
  write_block_partial(partial_sums, nullptr, sum, 0, 0);
}

template <class T>
__global__ void bce_with_logits_backward_kernel(T* dx, T* dtargets, const T* dloss, const T* dreduced, double factor,
                                                const T* x, const T* targets, int64_t n) {
  STRATA_FOR_EACH_INDEX(i, n) {
    const T weight = upstream_weight(dloss, dreduced, factor, i);
    if (dx) dx[i] = weight * (cm::sigmoid(x[i]) - targets[i]);
    if (dtargets) dtargets[i] = -weight * x[i];
  }
}

template <class T>
__global__ void mse_kernel(T* loss, double* partial_sums, const T* a, const T* b, int64_t n) {
  double sum = 0;
  STRATA_FOR_EACH_INDEX(i, n) {
    T value = cm::mse_value(a[i], b[i]);
    if (loss) loss[i] = value;
    sum += value;
  }
  write_block_partial(partial_sums, nullptr, sum, 0, 0);
}

template <class T>
__global__ void mse_backward_kernel(T* da, T* db, const T* dloss, const T* dreduced, double factor, const T* a,
                                    const T* b, int64_t n) {
  STRATA_FOR_EACH_INDEX(i, n) {
    const T weight = upstream_weight(dloss, dreduced, factor, i);
    const T g = T(2) * weight * (a[i] - b[i]);
    if (da) da[i] = g;
    if (db) db[i] = -g;
  }
}

}  // namespace

template <class T>
int64_t cross_entropy_partials(int64_t pixels, int64_t channels) {
  return blocks_for(pixels, cross_entropy_threads<T>(channels));
}

template <class T, class L>
void cross_entropy_cuda(T* loss, T* lse, T* reduced, int64_t* stats, const T* x, const L* labels, int64_t pixels,
                        int64_t channels, int64_t ignore_index, const LossReduction& reduction, double* partial_sums,
                        int64_t* partial_counts, const Stream& stream) {
  const unsigned rows = staged_rows(channels, 1, sizeof(T));
  const unsigned threads = cross_entropy_threads<T>(channels);
  const unsigned stride = rows ? static_cast<unsigned>(staged_stride(channels)) : 0u;
  const size_t shared = rows ? static_cast<size_t>(rows) * stride * sizeof(T) : 0;
  const int64_t blocks = cross_entropy_partials<T>(pixels, channels);
  STRATA_LAUNCH((cross_entropy_kernel<T, L>), stream, static_cast<unsigned>(blocks), threads, shared, loss, lse,
                partial_sums, partial_counts, x, labels, pixels, channels, ignore_index, stride, rows != 0);
  finish(reduced, stats, partial_sums, partial_counts, blocks, reduction, stream);
}

template <class T, class L>
void cross_entropy_backward_cuda(T* dx, const T* dloss, const T* dreduced, double factor, const T* x, const T* lse,
                                 const L* labels, int64_t pixels, int64_t channels, int64_t ignore_index,
                                 const Stream& stream) {
  CrossEntropyBackwardOp<T, L> op{dloss, dreduced, factor, lse, labels, channels, ignore_index};
  launch_pixel_rows<T, 1, true>(op, dx, x, nullptr, pixels, channels, stream);
}

int64_t nll_partials(int64_t pixels) { return blocks_for(pixels, kThreads); }

template <class T, class L>
void nll_cuda(T* loss, T* reduced, int64_t* stats, const T* log_probs, const L* labels, int64_t pixels,
              int64_t channels, int64_t ignore_index, const LossReduction& reduction, double* partial_sums,
              int64_t* partial_counts, const Stream& stream) {
  const int64_t blocks = nll_partials(pixels);
  STRATA_LAUNCH((nll_kernel<T, L>), stream, static_cast<unsigned>(blocks), kThreads, 0, loss, partial_sums,
                partial_counts, log_probs, labels, pixels, channels, ignore_index);
  finish(reduced, stats, partial_sums, partial_counts, blocks, reduction, stream);
}

template <class T, class L>
void nll_backward_cuda(T* dlog_probs, const T* dloss, const T* dreduced, double factor, const L* labels,
                       int64_t pixels, int64_t channels, int64_t ignore_index, const Stream& stream) {
  const int64_t n = pixels * channels;
  if (n == 0) return;
  STRATA_LAUNCH((nll_backward_kernel<T, L>), stream, blocks_for(n, kThreads), kThreads, 0, dlog_probs, dloss,
                dreduced, factor, labels, pixels, channels, ignore_index);
}

int64_t elementwise_loss_partials(int64_t n) { return blocks_for(n, kThreads); }

template <class T>
void bce_with_logits_cuda(T* loss, T* reduced, const T* x, const T* targets, int64_t n,
                          const LossReduction& reduction, double* partial_sums, const Stream& stream) {
  const int64_t blocks = elementwise_loss_partials(n);
  STRATA_LAUNCH((bce_with_logits_kernel<T>), stream, static_cast<unsigned>(blocks), kThreads, 0, loss, partial_sums,
                x, targets, n);
  finish(reduced, static_cast<int64_t*>(nullptr), partial_sums, static_cast<const int64_t*>(nullptr), blocks,
         reduction, stream);
}

template <class T>
void bce_with_logits_backward_cuda(T* dx, T* dtargets, const T* dloss, const T* dreduced, double factor, const T* x,
                                   const T* targets, int64_t n, const Stream& stream) {
  if (n == 0) return;
  STRATA_LAUNCH((bce_with_logits_backward_kernel<T>), stream, blocks_for(n, kThreads), kThreads, 0, dx, dtargets,
                dloss, dreduced, factor, x, targets, n);
}

template <class T>
void mse_cuda(T* loss, T* reduced, const T* a, const T* b, int64_t n, const LossReduction& reduction,
              double* partial_sums, const Stream& stream) {
  const int64_t blocks = elementwise_loss_partials(n);
  STRATA_LAUNCH((mse_kernel<T>), stream, static_cast<unsigned>(blocks), kThreads, 0, loss, partial_sums, a, b, n);
  finish(reduced, static_cast<int64_t*>(nullptr), partial_sums, static_cast<const int64_t*>(nullptr), blocks,
         reduction, stream);
}

template <class T>
void mse_backward_cuda(T* da, T* db, const T* dloss, const T* dreduced, double factor, const T* a, const T* b,
                       int64_t n, const Stream& stream) {
  if (n == 0) return;
  STRATA_LAUNCH((mse_backward_kernel<T>), stream, blocks_for(n, kThreads), kThreads, 0, da, db, dloss, dreduced,
                factor, a, b, n);
}

#define STRATA_INSTANTIATE_LABELLED(T, L)                                                                           \
  template void cross_entropy_cuda<T, L>(T*, T*, T*, int64_t*, const T*, const L*, int64_t, int64_t, int64_t,        \
                                         const LossReduction&, double*, int64_t*, const Stream&);                    \
  template void cross_entropy_backward_cuda<T, L>(T*, const T*, const T*, double, const T*, const T*, const L*,      \
                                                  int64_t, int64_t, int64_t, const Stream&);                         \
  template void nll_cuda<T, L>(T*, T*, int64_t*, const T*, const L*, int64_t, int64_t, int64_t,                      \
                               const LossReduction&, double*, int64_t*, const Stream&);                              \
  template void nll_backward_cuda<T, L>(T*, const T*, const T*, double, const L*, int64_t, int64_t, int64_t,         \
                                        const Stream&);
#define STRATA_INSTANTIATE(T)                                                                                       \
  STRATA_INSTANTIATE_LABELLED(T, uint8_t)                                                                           \
  STRATA_INSTANTIATE_LABELLED(T, int32_t)                                                                           \
  STRATA_INSTANTIATE_LABELLED(T, int64_t)                                                                           \
  template int64_t cross_entropy_partials<T>(int64_t, int64_t);                                                     \
  template void bce_with_logits_cuda<T>(T*, T*, const T*, const T*, int64_t, const LossReduction&, double*,         \
                                        const Stream&);                                                             \
  template void bce_with_logits_backward_cuda<T>(T*, T*, const T*, const T*, double, const T*, const T*, int64_t,   \
                                                 const Stream&);                                                    \
  template void mse_cuda<T>(T*, T*, const T*, const T*, int64_t, const LossReduction&, double*, const Stream&);     \
  template void mse_backward_cuda<T>(T*, T*, const T*, const T*, double, const T*, const T*, int64_t, const Stream&);
STRATA_INSTANTIATE(float)
STRATA_INSTANTIATE(double)
#undef STRATA_INSTANTIATE
#undef STRATA_INSTANTIATE_LABELLED

}  // namespace strata::kernels::cuda
