// Batch normalisation (Ioffe & Szegedy, ICML 2015; PyTorch's F.batch_norm) and In-place Activated
// Batch Normalisation (Rota Bulo et al., CVPR 2018; mapillary/inplace_abn v1) as one computation, the
// CPU reference. The math, the two ways the backward reads a saved tensor and the operation order are
// kernels/common/batch_norm.h's; here: per-channel coefficients in double rounded to T once, sums in
// double over fixed chunks of rows, and elementwise passes in T on OpenMP threads.
#include "kernels/cpu/batch_norm.h"

#include <cstddef>
#include <stdexcept>
#include <vector>

#include "kernels/cpu/parallel.h"

namespace strata::kernels::cpu {

namespace {

namespace common = kernels::common;

int64_t row_grain(int64_t channels) { return channels > 0 ? kElementwiseGrain / channels + 1 : 1; }

// Rows per chunk of a per-channel reduction: at most 64 chunks (enough for 64 threads, and the
// partial sums stay small), and at least ~8k elements per chunk so small inputs run in one piece.
int64_t channel_sum_chunk_rows(int64_t rows, int64_t channels) {
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
void channel_sums(double* out, int64_t rows, int64_t channels, F&& accumulate_row) {
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

}  // namespace

template <class T>
void batch_norm_stats(double* mean, double* var, const T* x, int64_t rows, int64_t channels, const Backend&) {
  channel_sums<1>(mean, rows, channels, [&](int64_t r, double* p) {
    const T* xr = x + r * channels;
    for (int64_t c = 0; c < channels; ++c) p[c] += static_cast<double>(xr[c]);
  });
  const double inv_rows = 1.0 / static_cast<double>(rows);
  for (int64_t c = 0; c < channels; ++c) mean[c] *= inv_rows;
  channel_sums<1>(var, rows, channels, [&](int64_t r, double* p) {
    const T* xr = x + r * channels;
    for (int64_t c = 0; c < channels; ++c) {
      double d = static_cast<double>(xr[c]) - mean[c];
      p[c] += d * d;
    }
  });
  for (int64_t c = 0; c < channels; ++c) var[c] *= inv_rows;
}

template <class T>
void batch_norm_update_running(T* running_mean, T* running_var, const double* mean, const double* var, double momentum,
                               int64_t rows, int64_t channels, const Backend&) {
  const double unbias = common::batch_norm_unbias(rows);
  for (int64_t c = 0; c < channels; ++c) {
    running_mean[c] =
        static_cast<T>(common::batch_norm_running_mean(static_cast<double>(running_mean[c]), mean[c], momentum));
    running_var[c] =
        static_cast<T>(common::batch_norm_running_var(static_cast<double>(running_var[c]), var[c], unbias, momentum));
  }
}

template <class V>
void batch_norm_invstd(double* invstd, const V* var, double eps, int64_t channels, const Backend&) {
  for (int64_t c = 0; c < channels; ++c) invstd[c] = common::batch_norm_invstd(static_cast<double>(var[c]), eps);
}

template <class T>
void batch_norm_forward(T* y, const T* x, const double* mean, const double* invstd, const T* weight, const T* bias,
                        const NormActivation& act, int64_t rows, int64_t channels, const Backend&) {
  const size_t width = static_cast<size_t>(channels);
  // Per-channel values as separate arrays, so the elementwise loop vectorises.
  std::vector<T> shift(width), scale(width), offset(width);
  for (int64_t c = 0; c < channels; ++c) {
    common::ChannelAffine<T> affine = common::norm_affine(mean[c], invstd[c], weight, bias, act, c);
    const size_t u = static_cast<size_t>(c);
    shift[u] = affine.shift;
    scale[u] = affine.scale;
    offset[u] = affine.offset;
  }
  const T* m = shift.data();
  const T* s = scale.data();
  const T* b = offset.data();
  const T slope = static_cast<T>(act.slope);
  // Scalars are captured by value: by reference, a store to y might alias them as far as the
  // compiler knows, which keeps the loop scalar.
  parallel_for(0, rows, row_grain(channels), [&, slope](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const T* xr = x + r * channels;
      T* yr = y + r * channels;
      for (int64_t c = 0; c < channels; ++c) yr[c] = common::norm_forward(xr[c], m[c], s[c], b[c], slope);
    }
  });
}

template <class T>
void batch_norm_backward(T* dx, T* dweight, T* dbias, const T* dy, const T* saved, const double* mean,
                         const double* invstd, const T* weight, const T* bias, const NormActivation& act, bool training,
                         int64_t rows, int64_t channels, const Backend&, const common::NormSync* sync) {
  if (act.saved == common::NormSaved::input && act.slope != 1.0) {
    throw std::invalid_argument("batch_norm_backward: from the input, the activation must be the identity (slope 1)");
  }
  const size_t width = static_cast<size_t>(channels);
  std::vector<common::NormRecovery> recovery(width);
  for (int64_t c = 0; c < channels; ++c)
    recovery[static_cast<size_t>(c)] = common::norm_recovery(mean, weight, bias, act, c);
  const double slope = act.slope, inv_slope = 1.0 / act.slope;

  // sums[c] = sum dz, sums[C + c] = sum u dz
  std::vector<double> sums(2 * width, 0.0);
  if (dweight || dbias || (training && dx)) {
    if (saved) {
      const common::NormRecovery* rp = recovery.data();
      channel_sums<2>(sums.data(), rows, channels, [&, slope, inv_slope](int64_t r, double* p) {
        const T* vr = saved + r * channels;
        const T* dyr = dy + r * channels;
        for (int64_t c = 0; c < channels; ++c) {
          common::add_norm_terms(p[c], p[channels + c], static_cast<double>(dyr[c]), static_cast<double>(vr[c]),
                                 rp[c].shift, rp[c].unscale, slope, inv_slope);
        }
      });
    } else {
      channel_sums<1>(sums.data(), rows, channels, [&](int64_t r, double* p) {
        const T* dyr = dy + r * channels;
        for (int64_t c = 0; c < channels; ++c) p[c] += static_cast<double>(dyr[c]);
      });
    }
  }
  for (int64_t c = 0; c < channels; ++c) {
    const size_t u = static_cast<size_t>(c);
    if (dbias) dbias[c] = static_cast<T>(sums[u]);
    if (dweight) dweight[c] = common::norm_dweight(weight[c], sums[width + u], invstd[c], act);
  }
  if (!dx) return;
  // The rows the statistics were taken over: every rank's with sync.
  int64_t statistics_rows = rows;
  if (sync && training) {
    sync->sum(sums.data(), 2 * channels);
    statistics_rows = sync->rows;
  }

  std::vector<T> k(width), a(width), b(width), shift(width), unscale(width);
  const double inv_rows = statistics_rows > 0 ? 1.0 / static_cast<double>(statistics_rows) : 0.0;
  for (int64_t c = 0; c < channels; ++c) {
    const size_t u = static_cast<size_t>(c);
    common::NormBackwardCoefficients<T> co = common::norm_backward_coefficients<T>(
        sums[u], sums[width + u], invstd[c], common::norm_gamma(weight, act, c), recovery[u], act, training, inv_rows);
    k[u] = co.k;
    a[u] = co.a;
    b[u] = co.b;
    shift[u] = co.shift;
    unscale[u] = co.unscale;
  }
  const T* kp = k.data();
  const T slope_t = static_cast<T>(slope), inv_slope_t = static_cast<T>(inv_slope);
  if (!training) {
    parallel_for(0, rows, row_grain(channels), [&, slope_t](int64_t lo, int64_t hi) {
      for (int64_t r = lo; r < hi; ++r) {
        const T* dyr = dy + r * channels;
        T* dxr = dx + r * channels;
        if (saved) {
          const T* vr = saved + r * channels;
          for (int64_t c = 0; c < channels; ++c) dxr[c] = common::norm_dz(dyr[c], vr[c], slope_t) * kp[c];
        } else {
          for (int64_t c = 0; c < channels; ++c) dxr[c] = dyr[c] * kp[c];
        }
      }
    });
    return;
  }
  const T* ap = a.data();
  const T* bp = b.data();
  const T* sp = shift.data();
  const T* up = unscale.data();
  parallel_for(0, rows, row_grain(channels), [&, slope_t, inv_slope_t](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const T* vr = saved + r * channels;
      const T* dyr = dy + r * channels;
      T* dxr = dx + r * channels;
      for (int64_t c = 0; c < channels; ++c) {
        dxr[c] = common::norm_backward_dx(dyr[c], vr[c], kp[c], ap[c], bp[c], sp[c], up[c], slope_t, inv_slope_t);
      }
    }
  });
}

#define STRATA_INSTANTIATE(T)                                                                                   \
  template void batch_norm_stats<T>(double*, double*, const T*, int64_t, int64_t, const Backend&);              \
  template void batch_norm_update_running<T>(T*, T*, const double*, const double*, double, int64_t, int64_t,    \
                                             const Backend&);                                                   \
  template void batch_norm_invstd<T>(double*, const T*, double, int64_t, const Backend&);                       \
  template void batch_norm_forward<T>(T*, const T*, const double*, const double*, const T*, const T*,           \
                                      const NormActivation&, int64_t, int64_t, const Backend&);                 \
  template void batch_norm_backward<T>(T*, T*, T*, const T*, const T*, const double*, const double*, const T*,  \
                                       const T*, const NormActivation&, bool, int64_t, int64_t, const Backend&, \
                                       const common::NormSync*);
STRATA_INSTANTIATE(float)
STRATA_INSTANTIATE(double)
#undef STRATA_INSTANTIATE

}  // namespace strata::kernels::cpu
