// Elementwise kernels: y_i = f(a_i, b_i) and their derivatives. Broadcast shapes are documented in
// elementwise.h. Chunks of kElementwiseGrain elements run on OpenMP threads.
#include "kernels/cpu/elementwise.h"

#include <cmath>

#include "kernels/cpu/parallel.h"

namespace strata::kernels::cpu {

template <class T>
void add_cpu(T* y, const T* a, const T* b, int64_t n) {
  parallel_for(0, n, kElementwiseGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) y[i] = a[i] + b[i];
  });
}

template <class T>
void add_channel_cpu(T* y, const T* a, const T* bias, int64_t rows, int64_t channels) {
  int64_t grain = channels > 0 ? kElementwiseGrain / channels + 1 : 1;
  parallel_for(0, rows, grain, [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const T* ar = a + r * channels;
      T* yr = y + r * channels;
      for (int64_t c = 0; c < channels; ++c) yr[c] = ar[c] + bias[c];
    }
  });
}

template <class T>
void add_spatial_cpu(T* y, const T* a, const T* b, int64_t batch, int64_t pixels, int64_t channels) {
  for (int64_t n = 0; n < batch; ++n) {
    add_channel_cpu(y + n * pixels * channels, a + n * pixels * channels, b + n * channels, pixels, channels);
  }
}

template <class T>
void mul_cpu(T* y, const T* a, const T* b, int64_t n) {
  parallel_for(0, n, kElementwiseGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) y[i] = a[i] * b[i];
  });
}

template <class T>
void mul_channel_cpu(T* y, const T* a, const T* scale, int64_t rows, int64_t channels) {
  int64_t grain = channels > 0 ? kElementwiseGrain / channels + 1 : 1;
  parallel_for(0, rows, grain, [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const T* ar = a + r * channels;
      T* yr = y + r * channels;
      for (int64_t c = 0; c < channels; ++c) yr[c] = ar[c] * scale[c];
    }
  });
}

template <class T>
void mul_spatial_cpu(T* y, const T* a, const T* b, int64_t batch, int64_t pixels, int64_t channels) {
  for (int64_t n = 0; n < batch; ++n) {
    mul_channel_cpu(y + n * pixels * channels, a + n * pixels * channels, b + n * channels, pixels, channels);
  }
}

template <class T>
void scale_cpu(T* y, const T* x, T s, int64_t n) {
  parallel_for(0, n, kElementwiseGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) y[i] = s * x[i];
  });
}

template <class T>
void pow_cpu(T* y, const T* x, T p, int64_t n) {
  parallel_for(0, n, kElementwiseGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) y[i] = std::pow(x[i], p);
  });
}

template <class T>
void pow_backward_cpu(T* dx, const T* dy, const T* x, T p, int64_t n) {
  parallel_for(0, n, kElementwiseGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) dx[i] = p == T(0) ? T(0) : dy[i] * p * std::pow(x[i], p - T(1));
  });
}

template <class T>
void square_cpu(T* y, const T* x, int64_t n) {
  parallel_for(0, n, kElementwiseGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) y[i] = x[i] * x[i];
  });
}

template <class T>
void square_backward_cpu(T* dx, const T* dy, const T* x, int64_t n) {
  parallel_for(0, n, kElementwiseGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) dx[i] = T(2) * x[i] * dy[i];
  });
}

template <class T>
void leaky_relu_cpu(T* y, const T* x, T slope, int64_t n) {
  parallel_for(0, n, kElementwiseGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) y[i] = x[i] > T(0) ? x[i] : slope * x[i];
  });
}

template <class T>
void leaky_relu_backward_cpu(T* dx, const T* dy, const T* y, T slope, int64_t n) {
  parallel_for(0, n, kElementwiseGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) dx[i] = y[i] > T(0) ? dy[i] : slope * dy[i];
  });
}

#define STRATA_INSTANTIATE(T)                                                                  \
  template void add_cpu<T>(T*, const T*, const T*, int64_t);                                   \
  template void add_channel_cpu<T>(T*, const T*, const T*, int64_t, int64_t);                  \
  template void add_spatial_cpu<T>(T*, const T*, const T*, int64_t, int64_t, int64_t);         \
  template void mul_cpu<T>(T*, const T*, const T*, int64_t);                                   \
  template void mul_channel_cpu<T>(T*, const T*, const T*, int64_t, int64_t);                  \
  template void mul_spatial_cpu<T>(T*, const T*, const T*, int64_t, int64_t, int64_t);         \
  template void scale_cpu<T>(T*, const T*, T, int64_t);                                        \
  template void pow_cpu<T>(T*, const T*, T, int64_t);                                          \
  template void pow_backward_cpu<T>(T*, const T*, const T*, T, int64_t);                       \
  template void square_cpu<T>(T*, const T*, int64_t);                                          \
  template void square_backward_cpu<T>(T*, const T*, const T*, int64_t);                       \
  template void leaky_relu_cpu<T>(T*, const T*, T, int64_t);                                   \
  template void leaky_relu_backward_cpu<T>(T*, const T*, const T*, T, int64_t);
STRATA_INSTANTIATE(float)
STRATA_INSTANTIATE(double)
#undef STRATA_INSTANTIATE

}  // namespace strata::kernels::cpu
