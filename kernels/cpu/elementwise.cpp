// Elementwise kernels: y_i = f(a_i, b_i) and their derivatives. Broadcast shapes are documented in
// elementwise.h. Chunks of kElementwiseGrain elements run on OpenMP threads.
#include "kernels/cpu/elementwise.h"

#include <cmath>

#include "kernels/common/sigmoid.h"
#include "kernels/cpu/parallel.h"

namespace strata::kernels::cpu {

template <class T>
void add(T* y, const T* a, const T* b, int64_t n, const Backend&) {
  parallel_for(0, n, kElementwiseGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) y[i] = a[i] + b[i];
  });
}

template <class T>
void add_channel(T* y, const T* a, const T* bias, int64_t rows, int64_t channels, const Backend&) {
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
void add_spatial(T* y, const T* a, const T* b, int64_t batch, int64_t pixels, int64_t channels,
                 const Backend& backend) {
  for (int64_t n = 0; n < batch; ++n) {
    add_channel(y + n * pixels * channels, a + n * pixels * channels, b + n * channels, pixels, channels, backend);
  }
}

template <class T>
void mul(T* y, const T* a, const T* b, int64_t n, const Backend&) {
  parallel_for(0, n, kElementwiseGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) y[i] = a[i] * b[i];
  });
}

template <class T>
void mul_channel(T* y, const T* a, const T* scale, int64_t rows, int64_t channels, const Backend&) {
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
void mul_spatial(T* y, const T* a, const T* b, int64_t batch, int64_t pixels, int64_t channels,
                 const Backend& backend) {
  for (int64_t n = 0; n < batch; ++n) {
    mul_channel(y + n * pixels * channels, a + n * pixels * channels, b + n * channels, pixels, channels, backend);
  }
}

template <class T>
void scale(T* y, const T* x, T s, int64_t n, const Backend&) {
  parallel_for(0, n, kElementwiseGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) y[i] = s * x[i];
  });
}

template <class T>
void pow(T* y, const T* x, T p, int64_t n, const Backend&) {
  parallel_for(0, n, kElementwiseGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) y[i] = std::pow(x[i], p);
  });
}

template <class T>
void pow_backward(T* dx, const T* dy, const T* x, T p, int64_t n, const Backend&) {
  parallel_for(0, n, kElementwiseGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) dx[i] = p == T(0) ? T(0) : dy[i] * p * std::pow(x[i], p - T(1));
  });
}

template <class T>
void square(T* y, const T* x, int64_t n, const Backend&) {
  parallel_for(0, n, kElementwiseGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) y[i] = x[i] * x[i];
  });
}

template <class T>
void square_backward(T* dx, const T* dy, const T* x, int64_t n, const Backend&) {
  parallel_for(0, n, kElementwiseGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) dx[i] = T(2) * x[i] * dy[i];
  });
}

template <class T>
void leaky_relu(T* y, const T* x, T slope, int64_t n, const Backend&) {
  parallel_for(0, n, kElementwiseGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) y[i] = x[i] > T(0) ? x[i] : slope * x[i];
  });
}

template <class T>
void leaky_relu_backward(T* dx, const T* dy, const T* y, T slope, int64_t n, const Backend&) {
  parallel_for(0, n, kElementwiseGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) dx[i] = y[i] > T(0) ? dy[i] : slope * dy[i];
  });
}

template <class T>
void sigmoid(T* y, const T* x, int64_t n, const Backend&) {
  parallel_for(0, n, kElementwiseGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) y[i] = common::sigmoid(x[i]);
  });
}

template <class T>
void sigmoid_backward(T* dx, const T* dy, const T* y, int64_t n, const Backend&) {
  parallel_for(0, n, kElementwiseGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) dx[i] = common::sigmoid_backward(dy[i], y[i]);
  });
}

template <class T>
void unary_math(T* y, const T* x, common::UnaryMath op, T lo, T hi, int64_t n, const Backend&) {
  parallel_for(0, n, kElementwiseGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) y[i] = common::unary_math(op, x[i], lo, hi);
  });
}

template <class T>
void unary_math_backward(T* dx, const T* dy, const T* x, common::UnaryMath op, T lo, T hi, int64_t n, const Backend&) {
  parallel_for(0, n, kElementwiseGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) dx[i] = common::unary_math_backward(op, dy[i], x[i], lo, hi);
  });
}

#define STRATA_INSTANTIATE(T)                                                                      \
  template void add<T>(T*, const T*, const T*, int64_t, const Backend&);                           \
  template void add_channel<T>(T*, const T*, const T*, int64_t, int64_t, const Backend&);          \
  template void add_spatial<T>(T*, const T*, const T*, int64_t, int64_t, int64_t, const Backend&); \
  template void mul<T>(T*, const T*, const T*, int64_t, const Backend&);                           \
  template void mul_channel<T>(T*, const T*, const T*, int64_t, int64_t, const Backend&);          \
  template void mul_spatial<T>(T*, const T*, const T*, int64_t, int64_t, int64_t, const Backend&); \
  template void scale<T>(T*, const T*, T, int64_t, const Backend&);                                \
  template void pow<T>(T*, const T*, T, int64_t, const Backend&);                                  \
  template void pow_backward<T>(T*, const T*, const T*, T, int64_t, const Backend&);               \
  template void square<T>(T*, const T*, int64_t, const Backend&);                                  \
  template void square_backward<T>(T*, const T*, const T*, int64_t, const Backend&);               \
  template void leaky_relu<T>(T*, const T*, T, int64_t, const Backend&);                           \
  template void leaky_relu_backward<T>(T*, const T*, const T*, T, int64_t, const Backend&);        \
  template void sigmoid<T>(T*, const T*, int64_t, const Backend&);                                 \
  template void sigmoid_backward<T>(T*, const T*, const T*, int64_t, const Backend&);              \
  template void unary_math<T>(T*, const T*, common::UnaryMath, T, T, int64_t, const Backend&);     \
  template void unary_math_backward<T>(T*, const T*, const T*, common::UnaryMath, T, T, int64_t, const Backend&);
STRATA_INSTANTIATE(float)
STRATA_INSTANTIATE(double)
#undef STRATA_INSTANTIATE

}  // namespace strata::kernels::cpu
