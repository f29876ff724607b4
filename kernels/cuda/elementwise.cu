// Elementwise kernels: one thread per output element in a grid-stride loop (see elementwise.h).
#include <cuda_runtime.h>

#include <type_traits>

#include "kernels/common/sigmoid.h"
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/launch.h"

namespace strata::kernels::cuda {

namespace {

constexpr unsigned kThreads = 256;

#define STRATA_GRID_STRIDE(i, n)                                                             \
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < (n);    \
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)

enum class Op { add, mul };

template <class T, Op op>
__device__ inline T apply(T a, T b) {
  if constexpr (op == Op::add) {
    return a + b;
  } else {
    return a * b;
  }
}

// b's element for element i of a: same index, i % C (per-channel), or n * C + i % C (per-sample).
template <class T, Op op>
__global__ void binary_kernel(T* y, const T* a, const T* b, int64_t n) {
  STRATA_GRID_STRIDE(i, n) { y[i] = apply<T, op>(a[i], b[i]); }
}

template <class T, Op op>
__global__ void binary_channel_kernel(T* y, const T* a, const T* b, int64_t n, int64_t channels) {
  STRATA_GRID_STRIDE(i, n) { y[i] = apply<T, op>(a[i], b[i % channels]); }
}

template <class T, Op op>
__global__ void binary_spatial_kernel(T* y, const T* a, const T* b, int64_t n, int64_t pixels, int64_t channels) {
  STRATA_GRID_STRIDE(i, n) { y[i] = apply<T, op>(a[i], b[(i / (pixels * channels)) * channels + i % channels]); }
}

template <class T>
__global__ void scale_kernel(T* y, const T* x, T s, int64_t n) {
  STRATA_GRID_STRIDE(i, n) { y[i] = s * x[i]; }
}

// pow as the CPU's std::pow in T: CUDA's powf for float, pow for double (a few ulp from the
// correctly rounded value, like glibc's).
template <class T>
__device__ inline T power(T x, T p) {
  if constexpr (std::is_same_v<T, float>) {
    return powf(x, p);
  } else {
    return ::pow(x, p);
  }
}

template <class T>
__global__ void pow_kernel(T* y, const T* x, T p, int64_t n) {
  STRATA_GRID_STRIDE(i, n) { y[i] = power(x[i], p); }
}

template <class T>
__global__ void pow_backward_kernel(T* dx, const T* dy, const T* x, T p, int64_t n) {
  STRATA_GRID_STRIDE(i, n) { dx[i] = p == T(0) ? T(0) : dy[i] * p * power(x[i], p - T(1)); }
}

template <class T>
__global__ void square_kernel(T* y, const T* x, int64_t n) {
  STRATA_GRID_STRIDE(i, n) { y[i] = x[i] * x[i]; }
}

template <class T>
__global__ void square_backward_kernel(T* dx, const T* dy, const T* x, int64_t n) {
  STRATA_GRID_STRIDE(i, n) { dx[i] = T(2) * x[i] * dy[i]; }
}

template <class T>
__global__ void leaky_relu_kernel(T* y, const T* x, T slope, int64_t n) {
  STRATA_GRID_STRIDE(i, n) { y[i] = x[i] > T(0) ? x[i] : slope * x[i]; }
}

// Reads the output: for slope >= 0, y > 0 exactly when x > 0.
template <class T>
__global__ void leaky_relu_backward_kernel(T* dx, const T* dy, const T* y, T slope, int64_t n) {
  STRATA_GRID_STRIDE(i, n) { dx[i] = y[i] > T(0) ? dy[i] : slope * dy[i]; }
}

template <class T>
__global__ void unary_math_kernel(T* y, const T* x, common::UnaryMath op, T lo, T hi, int64_t n) {
  STRATA_GRID_STRIDE(i, n) { y[i] = common::unary_math(op, x[i], lo, hi); }
}

template <class T>
__global__ void unary_math_backward_kernel(T* dx, const T* dy, const T* x, common::UnaryMath op, T lo, T hi,
                                           int64_t n) {
  STRATA_GRID_STRIDE(i, n) { dx[i] = common::unary_math_backward(op, dy[i], x[i], lo, hi); }
}

template <class T>
__global__ void sigmoid_kernel(T* y, const T* x, int64_t n) {
  STRATA_GRID_STRIDE(i, n) { y[i] = common::sigmoid(x[i]); }
}

template <class T>
__global__ void sigmoid_backward_kernel(T* dx, const T* dy, const T* y, int64_t n) {
  STRATA_GRID_STRIDE(i, n) { dx[i] = common::sigmoid_backward(dy[i], y[i]); }
}

#undef STRATA_GRID_STRIDE

}  // namespace

template <class T>
void add(T* y, const T* a, const T* b, int64_t n, const Backend& backend) {
  if (n) STRATA_LAUNCH((binary_kernel<T, Op::add>), backend.stream, blocks_for(n, kThreads), kThreads, 0, y, a, b, n);
}

template <class T>
void add_channel(T* y, const T* a, const T* bias, int64_t rows, int64_t channels, const Backend& backend) {
  int64_t n = rows * channels;
  if (n) {
    STRATA_LAUNCH((binary_channel_kernel<T, Op::add>), backend.stream, blocks_for(n, kThreads), kThreads, 0, y, a, bias,
                  n, channels);
  }
}

template <class T>
void add_spatial(T* y, const T* a, const T* b, int64_t batch, int64_t pixels, int64_t channels,
                 const Backend& backend) {
  int64_t n = batch * pixels * channels;
  if (n) {
    STRATA_LAUNCH((binary_spatial_kernel<T, Op::add>), backend.stream, blocks_for(n, kThreads), kThreads, 0, y, a, b, n,
                  pixels, channels);
  }
}

template <class T>
void mul(T* y, const T* a, const T* b, int64_t n, const Backend& backend) {
  if (n) STRATA_LAUNCH((binary_kernel<T, Op::mul>), backend.stream, blocks_for(n, kThreads), kThreads, 0, y, a, b, n);
}

template <class T>
void mul_channel(T* y, const T* a, const T* scale, int64_t rows, int64_t channels, const Backend& backend) {
  int64_t n = rows * channels;
  if (n) {
    STRATA_LAUNCH((binary_channel_kernel<T, Op::mul>), backend.stream, blocks_for(n, kThreads), kThreads, 0, y, a,
                  scale, n, channels);
  }
}

template <class T>
void mul_spatial(T* y, const T* a, const T* b, int64_t batch, int64_t pixels, int64_t channels,
                 const Backend& backend) {
  int64_t n = batch * pixels * channels;
  if (n) {
    STRATA_LAUNCH((binary_spatial_kernel<T, Op::mul>), backend.stream, blocks_for(n, kThreads), kThreads, 0, y, a, b, n,
                  pixels, channels);
  }
}

template <class T>
void scale(T* y, const T* x, T s, int64_t n, const Backend& backend) {
  if (n) STRATA_LAUNCH((scale_kernel<T>), backend.stream, blocks_for(n, kThreads), kThreads, 0, y, x, s, n);
}

template <class T>
void pow(T* y, const T* x, T p, int64_t n, const Backend& backend) {
  if (n) STRATA_LAUNCH((pow_kernel<T>), backend.stream, blocks_for(n, kThreads), kThreads, 0, y, x, p, n);
}

template <class T>
void pow_backward(T* dx, const T* dy, const T* x, T p, int64_t n, const Backend& backend) {
  if (n) STRATA_LAUNCH((pow_backward_kernel<T>), backend.stream, blocks_for(n, kThreads), kThreads, 0, dx, dy, x, p, n);
}

template <class T>
void square(T* y, const T* x, int64_t n, const Backend& backend) {
  if (n) STRATA_LAUNCH((square_kernel<T>), backend.stream, blocks_for(n, kThreads), kThreads, 0, y, x, n);
}

template <class T>
void square_backward(T* dx, const T* dy, const T* x, int64_t n, const Backend& backend) {
  if (n) STRATA_LAUNCH((square_backward_kernel<T>), backend.stream, blocks_for(n, kThreads), kThreads, 0, dx, dy, x, n);
}

template <class T>
void leaky_relu(T* y, const T* x, T slope, int64_t n, const Backend& backend) {
  if (n) STRATA_LAUNCH((leaky_relu_kernel<T>), backend.stream, blocks_for(n, kThreads), kThreads, 0, y, x, slope, n);
}

template <class T>
void leaky_relu_backward(T* dx, const T* dy, const T* y, T slope, int64_t n, const Backend& backend) {
  if (n)
    STRATA_LAUNCH((leaky_relu_backward_kernel<T>), backend.stream, blocks_for(n, kThreads), kThreads, 0, dx, dy, y,
                  slope, n);
}

template <class T>
void sigmoid(T* y, const T* x, int64_t n, const Backend& backend) {
  if (n) STRATA_LAUNCH((sigmoid_kernel<T>), backend.stream, blocks_for(n, kThreads), kThreads, 0, y, x, n);
}

template <class T>
void sigmoid_backward(T* dx, const T* dy, const T* y, int64_t n, const Backend& backend) {
  if (n) {
    STRATA_LAUNCH((sigmoid_backward_kernel<T>), backend.stream, blocks_for(n, kThreads), kThreads, 0, dx, dy, y, n);
  }
}

template <class T>
void unary_math(T* y, const T* x, common::UnaryMath op, T lo, T hi, int64_t n, const Backend& backend) {
  if (n)
    STRATA_LAUNCH((unary_math_kernel<T>), backend.stream, blocks_for(n, kThreads), kThreads, 0, y, x, op, lo, hi, n);
}

template <class T>
void unary_math_backward(T* dx, const T* dy, const T* x, common::UnaryMath op, T lo, T hi, int64_t n,
                         const Backend& backend) {
  if (n) {
    STRATA_LAUNCH((unary_math_backward_kernel<T>), backend.stream, blocks_for(n, kThreads), kThreads, 0, dx, dy, x, op,
                  lo, hi, n);
  }
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

}  // namespace strata::kernels::cuda
