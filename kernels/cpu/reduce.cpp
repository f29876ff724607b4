// Sums over all elements, over rows of a (rows, C) array (per-channel sums of NHWC data), and over
// channels, plus the broadcasts their backward passes need. Accumulation is in double and chunked
// at fixed boundaries so results do not depend on the thread count.
#include "kernels/cpu/reduce.h"

#include <cstddef>
#include <vector>

#include "kernels/cpu/parallel.h"

namespace strata::kernels::cpu {

namespace {

// sum rounded to T, then scaled in double and rounded again (see reduce.h).
template <class T>
T scaled_sum(double sum, double scale) {
  return static_cast<T>(static_cast<double>(static_cast<T>(sum)) * scale);
}

}  // namespace

template <class T>
void sum_all(T* out, const T* x, int64_t n, double scale, const Backend&) {
  constexpr int64_t kGrain = 1 << 15;
  int64_t chunks = (n + kGrain - 1) / kGrain;
  std::vector<double> partial(static_cast<size_t>(chunks > 0 ? chunks : 1), 0.0);
  parallel_for(0, n, kGrain, [&](int64_t lo, int64_t hi) {
    double s = 0;
    for (int64_t i = lo; i < hi; ++i) s += x[i];
    partial[static_cast<size_t>(lo / kGrain)] = s;
  });
  double total = 0;
  for (double p : partial) total += p;
  out[0] = scaled_sum<T>(total, scale);
}

template <class T>
void sum_rows(T* out, const T* x, int64_t rows, int64_t channels, const Backend&) {
  constexpr int64_t kRowGrain = 256;
  int64_t chunks = (rows + kRowGrain - 1) / kRowGrain;
  std::vector<double> partial(static_cast<size_t>((chunks > 0 ? chunks : 1) * channels), 0.0);
  parallel_for(0, rows, kRowGrain, [&](int64_t lo, int64_t hi) {
    double* p = partial.data() + (lo / kRowGrain) * channels;
    for (int64_t r = lo; r < hi; ++r) {
      const T* xr = x + r * channels;
      for (int64_t c = 0; c < channels; ++c) p[c] += xr[c];
    }
  });
  for (int64_t c = 0; c < channels; ++c) {
    double s = 0;
    for (int64_t k = 0; k < chunks; ++k) s += partial[static_cast<size_t>(k * channels + c)];
    out[c] = static_cast<T>(s);
  }
}

template <class T>
void sum_spatial(T* out, const T* x, int64_t batch, int64_t pixels, int64_t channels, double scale,
                 const Backend& backend) {
  for (int64_t n = 0; n < batch; ++n)
    sum_rows(out + n * channels, x + n * pixels * channels, pixels, channels, backend);
  for (int64_t i = 0; i < batch * channels; ++i) out[i] = scaled_sum<T>(out[i], scale);
}

template <class T>
void sum_channels(T* out, const T* x, int64_t rows, int64_t channels, double scale, const Backend&) {
  int64_t grain = channels > 0 ? kElementwiseGrain / channels + 1 : 1;
  parallel_for(0, rows, grain, [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const T* xr = x + r * channels;
      double s = 0;
      for (int64_t c = 0; c < channels; ++c) s += xr[c];
      out[r] = scaled_sum<T>(s, scale);
    }
  });
}

template <class T>
void broadcast_channels(T* y, const T* g, T s, int64_t rows, int64_t channels, const Backend&) {
  int64_t grain = channels > 0 ? kElementwiseGrain / channels + 1 : 1;
  parallel_for(0, rows, grain, [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      T v = g[r] * s;
      T* yr = y + r * channels;
      for (int64_t c = 0; c < channels; ++c) yr[c] = v;
    }
  });
}

template <class T>
void broadcast_spatial(T* y, const T* g, T s, int64_t batch, int64_t pixels, int64_t channels, const Backend&) {
  int64_t grain = channels > 0 ? kElementwiseGrain / channels + 1 : 1;
  for (int64_t n = 0; n < batch; ++n) {
    const T* gn = g + n * channels;
    T* yn = y + n * pixels * channels;
    parallel_for(0, pixels, grain, [&](int64_t lo, int64_t hi) {
      for (int64_t p = lo; p < hi; ++p) {
        T* yp = yn + p * channels;
        for (int64_t c = 0; c < channels; ++c) yp[c] = gn[c] * s;
      }
    });
  }
}

#define STRATA_INSTANTIATE(T)                                                                    \
  template void sum_rows<T>(T*, const T*, int64_t, int64_t, const Backend&);                     \
  template void sum_all<T>(T*, const T*, int64_t, double, const Backend&);                       \
  template void sum_spatial<T>(T*, const T*, int64_t, int64_t, int64_t, double, const Backend&); \
  template void sum_channels<T>(T*, const T*, int64_t, int64_t, double, const Backend&);         \
  template void broadcast_channels<T>(T*, const T*, T, int64_t, int64_t, const Backend&);        \
  template void broadcast_spatial<T>(T*, const T*, T, int64_t, int64_t, int64_t, const Backend&);
STRATA_INSTANTIATE(float)
STRATA_INSTANTIATE(double)
#undef STRATA_INSTANTIATE

}  // namespace strata::kernels::cpu
