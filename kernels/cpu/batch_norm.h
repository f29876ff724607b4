// Batch normalisation CPU kernels (T = float or double). Activations are NHWC, so the input is
// viewed as an (R, C) array: R = N*H*W rows (pixels; N for an (N,C) input), C contiguous channels.
// Per-channel statistics (mean, var, invstd = 1/sqrt(var + eps)) are double arrays of C values.
// Sums are accumulated in double and chunked at boundaries that depend only on (R, C), so results
// are bit-identical for any number of threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/cpu/parallel.h"

namespace strata::kernels::cpu {

// mean[c] = (1/R) sum_r x[r,c];   var[c] = (1/R) sum_r (x[r,c] - mean[c])^2  (biased), R > 0.
template <class T>
void batch_norm_stats_cpu(double* mean, double* var, const T* x, int64_t rows, int64_t channels);

// In place, R > 1:  running_mean = (1 - momentum) running_mean + momentum mean
//                   running_var  = (1 - momentum) running_var  + momentum var R / (R - 1)
template <class T>
void batch_norm_update_running_cpu(T* running_mean, T* running_var, const double* mean, const double* var,
                                   double momentum, int64_t rows, int64_t channels);

// y[r,c] = (x[r,c] - mean[c]) invstd[c] weight[c] + bias[c]; weight and bias may be null (1 and 0).
template <class T>
void batch_norm_forward_cpu(T* y, const T* x, const double* mean, const double* invstd, const T* weight,
                            const T* bias, int64_t rows, int64_t channels);

// With xhat = (x - mean) invstd, w = weight (1 when null):
//   dbias[c]   = sum_r dy
//   dweight[c] = sum_r dy xhat
//   dx (training: mean and invstd are the batch statistics, functions of x)
//              = w invstd (dy - mean_r(dy) - xhat mean_r(dy xhat))
//   dx (eval: running statistics, constants) = w invstd dy
// Any of dx, dweight, dbias may be null (not needed). x may be null only when neither dweight is
// needed nor training is set.
template <class T>
void batch_norm_backward_cpu(T* dx, T* dweight, T* dbias, const T* dy, const T* x, const double* mean,
                             const double* invstd, const T* weight, bool training, int64_t rows, int64_t channels);

// ---- deterministic per-channel sums, shared with the In-place ABN kernels --------------------------

// Rows per chunk of a per-channel reduction: at most 64 chunks (enough for 64 threads, and the
// partial sums stay small), and at least ~8k elements per chunk so small inputs run in one piece.
inline int64_t channel_sum_chunk_rows(int64_t rows, int64_t channels) {
  constexpr int64_t kMaxChunks = 64, kMinChunkElements = 8192;
  int64_t by_count = (rows + kMaxChunks - 1) / kMaxChunks;
  int64_t by_size = channels > 0 ? (kMinChunkElements + channels - 1) / channels : rows;
  int64_t chunk = by_count > by_size ? by_count : by_size;
  return chunk > 0 ? chunk : 1;
}

// out[k*C + c] = sum over rows r of the k-th quantity of (r, c), for k < kSums. accumulate_row(r, p)
// adds row r's contributions to p[k*C + c], a chunk's double partial sums; chunks are combined in
// order, so the result does not depend on the thread count.
template <int kSums, class F>
void channel_sums_cpu(double* out, int64_t rows, int64_t channels, F&& accumulate_row) {
  const int64_t width = kSums * channels;
  const int64_t chunk = channel_sum_chunk_rows(rows, channels);
  const int64_t chunks = rows > 0 ? (rows + chunk - 1) / chunk : 0;
  std::vector<double> partial(static_cast<size_t>(chunks * width), 0.0);
  parallel_for(0, rows, chunk, [&](int64_t lo, int64_t hi) {
    double* p = partial.data() + (lo / chunk) * width;
    for (int64_t r = lo; r < hi; ++r) accumulate_row(r, p);
  });
  for (int64_t j = 0; j < width; ++j) out[j] = 0.0;
  for (int64_t k = 0; k < chunks; ++k) {
    const double* p = partial.data() + k * width;
    for (int64_t j = 0; j < width; ++j) out[j] += p[j];
  }
}

}  // namespace strata::kernels::cpu
