// Batch normalisation (Ioffe & Szegedy, ICML 2015) with PyTorch's F.batch_norm semantics.
// R = rows (N*H*W pixels), C = channels (contiguous, innermost).
//   training: mean[c] = (1/R) sum_r x,  var[c] = (1/R) sum_r (x - mean)^2  (biased, used to normalise)
//             running stats move towards the batch statistics with the unbiased var R/(R-1)
//   forward : y = (x - mean) invstd w + b,  invstd = 1/sqrt(var + eps)
//   backward: dbias = sum dy,  dweight = sum dy xhat,  xhat = (x - mean) invstd
//             training dx = w invstd (dy - mean(dy) - xhat mean(dy xhat))   (mean, var depend on x)
//             eval     dx = w invstd dy
// Statistics use two passes (mean, then squared deviations) in double: the one-pass E[x^2] - E[x]^2
// loses all precision when |mean| >> std.
#include "kernels/cpu/batch_norm.h"

#include <cstddef>
#include <vector>

#include "kernels/common/batch_norm.h"

namespace strata::kernels::cpu {

namespace {

int64_t row_grain(int64_t channels) { return channels > 0 ? kElementwiseGrain / channels + 1 : 1; }

}  // namespace

template <class T>
void batch_norm_stats_cpu(double* mean, double* var, const T* x, int64_t rows, int64_t channels) {
  channel_sums_cpu<1>(mean, rows, channels, [&](int64_t r, double* p) {
    const T* xr = x + r * channels;
    for (int64_t c = 0; c < channels; ++c) p[c] += static_cast<double>(xr[c]);
  });
  const double inv_rows = 1.0 / static_cast<double>(rows);
  for (int64_t c = 0; c < channels; ++c) mean[c] *= inv_rows;
  channel_sums_cpu<1>(var, rows, channels, [&](int64_t r, double* p) {
    const T* xr = x + r * channels;
    for (int64_t c = 0; c < channels; ++c) {
      double d = static_cast<double>(xr[c]) - mean[c];
      p[c] += d * d;
    }
  });
  for (int64_t c = 0; c < channels; ++c) var[c] *= inv_rows;
}

template <class T>
void batch_norm_update_running_cpu(T* running_mean, T* running_var, const double* mean, const double* var,
                                   double momentum, int64_t rows, int64_t channels) {
  const double unbias = common::batch_norm_unbias(rows);
  for (int64_t c = 0; c < channels; ++c) {
    running_mean[c] =
        static_cast<T>(common::batch_norm_running_mean(static_cast<double>(running_mean[c]), mean[c], momentum));
    running_var[c] =
        static_cast<T>(common::batch_norm_running_var(static_cast<double>(running_var[c]), var[c], unbias, momentum));
  }
}

template <class T>
void batch_norm_forward_cpu(T* y, const T* x, const double* mean, const double* invstd, const T* weight,
                            const T* bias, int64_t rows, int64_t channels) {
  std::vector<T> shift(static_cast<size_t>(channels)), scale(static_cast<size_t>(channels)),
      offset(static_cast<size_t>(channels));
  for (int64_t c = 0; c < channels; ++c) {
    size_t u = static_cast<size_t>(c);
    common::ChannelAffine<T> affine = common::batch_norm_affine(mean[c], invstd[c], weight, bias, c);
    shift[u] = affine.shift;
    scale[u] = affine.scale;
    offset[u] = affine.offset;
  }
  const T* m = shift.data();
  const T* s = scale.data();
  const T* b = offset.data();
  parallel_for(0, rows, row_grain(channels), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const T* xr = x + r * channels;
      T* yr = y + r * channels;
      for (int64_t c = 0; c < channels; ++c) yr[c] = (xr[c] - m[c]) * s[c] + b[c];
    }
  });
}

template <class T>
void batch_norm_backward_cpu(T* dx, T* dweight, T* dbias, const T* dy, const T* x, const double* mean,
                             const double* invstd, const T* weight, bool training, int64_t rows, int64_t channels) {
  const size_t width = static_cast<size_t>(channels);
  // sums[c] = sum dy, sums[C + c] = sum dy (x - mean)
  std::vector<double> sums(2 * width, 0.0);
  const bool need_sums = dweight || dbias || (training && dx);
  if (need_sums && x) {
    channel_sums_cpu<2>(sums.data(), rows, channels, [&](int64_t r, double* p) {
      const T* xr = x + r * channels;
      const T* dyr = dy + r * channels;
      for (int64_t c = 0; c < channels; ++c) {
        double g = static_cast<double>(dyr[c]);
        p[c] += g;
        p[channels + c] += g * (static_cast<double>(xr[c]) - mean[c]);
      }
    });
  } else if (need_sums) {
    channel_sums_cpu<1>(sums.data(), rows, channels, [&](int64_t r, double* p) {
      const T* dyr = dy + r * channels;
      for (int64_t c = 0; c < channels; ++c) p[c] += static_cast<double>(dyr[c]);
    });
  }
  for (int64_t c = 0; c < channels; ++c) {
    if (dbias) dbias[c] = static_cast<T>(sums[static_cast<size_t>(c)]);
    if (dweight) {
      dweight[c] = static_cast<T>(common::batch_norm_dweight(sums[width + static_cast<size_t>(c)], invstd[c]));
    }
  }
  if (!dx) return;

  // dx = k (dy - a - (x - mean) b) with per-channel k = w invstd, a = mean(dy),
  // b = invstd^2 mean(dy (x - mean)); eval has a = b = 0.
  std::vector<T> k(width), a(width, T(0)), b(width, T(0)), m(width, T(0));
  const double inv_rows = rows > 0 ? 1.0 / static_cast<double>(rows) : 0.0;
  for (int64_t c = 0; c < channels; ++c) {
    size_t u = static_cast<size_t>(c);
    common::BatchNormBackwardCoefficients<T> co =
        common::batch_norm_backward_coefficients(sums[u], sums[width + u], mean[c], invstd[c], weight, c, training,
                                                 inv_rows);
    k[u] = co.k;
    a[u] = co.a;
    b[u] = co.b;
    m[u] = co.m;
  }
  const T* kp = k.data();
  if (!training) {
    parallel_for(0, rows, row_grain(channels), [&](int64_t lo, int64_t hi) {
      for (int64_t r = lo; r < hi; ++r) {
        const T* dyr = dy + r * channels;
        T* dxr = dx + r * channels;
        for (int64_t c = 0; c < channels; ++c) dxr[c] = dyr[c] * kp[c];
      }
    });
    return;
  }
  const T* ap = a.data();
  const T* bp = b.data();
  const T* mp = m.data();
  parallel_for(0, rows, row_grain(channels), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const T* xr = x + r * channels;
      const T* dyr = dy + r * channels;
      T* dxr = dx + r * channels;
      for (int64_t c = 0; c < channels; ++c) dxr[c] = (dyr[c] - ap[c] - (xr[c] - mp[c]) * bp[c]) * kp[c];
    }
  });
}

#define STRATA_INSTANTIATE(T)                                                                                    \
  template void batch_norm_stats_cpu<T>(double*, double*, const T*, int64_t, int64_t);                         \
  template void batch_norm_update_running_cpu<T>(T*, T*, const double*, const double*, double, int64_t,        \
                                                 int64_t);                                                       \
  template void batch_norm_forward_cpu<T>(T*, const T*, const double*, const double*, const T*, const T*,       \
                                          int64_t, int64_t);                                                     \
  template void batch_norm_backward_cpu<T>(T*, T*, T*, const T*, const T*, const double*, const double*,        \
                                           const T*, bool, int64_t, int64_t);
STRATA_INSTANTIATE(float)
STRATA_INSTANTIATE(double)
#undef STRATA_INSTANTIATE

}  // namespace strata::kernels::cpu
