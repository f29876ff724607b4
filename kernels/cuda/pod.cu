// Local POD on CUDA (kernels/cuda/pod.h; the math: kernels/common/pod.h).
//
// Threads, all reading NHWC with consecutive threads on consecutive channels (coalesced):
//   row profiles:    one thread per row-profile value (sample, scale, row, window column, channel),
//                    summing D over the window's kw columns;
//   column profiles: one thread per column-profile value, summing D over the window's kh rows;
//   distance:        one block per sample, Σ e² over its embedding in a fixed tree;
//   backward:        one thread per element of the student map.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "kernels/common/pod.h"
#include "kernels/cuda/kernel_utils.h"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/pod.h"

namespace strata::kernels::cuda {

namespace cm = strata::kernels::common;

namespace {

constexpr unsigned kThreads = 256;

__device__ inline double squared_difference(double a, double b) { return (a - b) * (a + b); }

// The scale whose block of offsets [offset[t], offset[t+1]) holds `index`.
__device__ inline int scale_of(const int64_t* offset, int scales, int64_t index) {
  int t = 0;
  while (t + 1 < scales && offset[t + 1] <= index) ++t;
  return t;
}

template <class T>
__global__ void local_pod_rows_kernel(T* embedding, const T* a, const T* b, cm::PodGeometry g) {
  const int64_t C = g.channels;
  STRATA_FOR_EACH_INDEX(index, g.batch * g.row_values) {
    const int64_t n = index / g.row_values, local = index % g.row_values;
    const int t = scale_of(g.row_offset, g.scales, local);
    const int64_t s = g.scale[t], kw = g.window_width[t];
    const int64_t within = local - g.row_offset[t];
    const int64_t c = within % C, rj = within / C, j = rj % s, r = rj / s;
    const int64_t first = ((n * g.height + r) * g.width + j * kw) * C + c;
    double sum = 0.0;
    for (int64_t q = 0; q < kw; ++q) sum += squared_difference(a[first + q * C], b[first + q * C]);
    embedding[n * g.embedding + local] = static_cast<T>(sum / static_cast<double>(kw));
  }
}

template <class T>
__global__ void local_pod_columns_kernel(T* embedding, const T* a, const T* b, cm::PodGeometry g) {
  const int64_t C = g.channels, col_values = g.embedding - g.row_values;
  STRATA_FOR_EACH_INDEX(index, g.batch * col_values) {
    const int64_t n = index / col_values, local = g.row_values + index % col_values;
    const int t = scale_of(g.col_offset, g.scales, local);
    const int64_t s = g.scale[t], kh = g.window_height[t], kw = g.window_width[t];
    const int64_t within = local - g.col_offset[t];
    const int64_t c = within % C, iq = within / C, q = iq % (s * kw), i = iq / (s * kw);
    const int64_t first = ((n * g.height + i * kh) * g.width + q) * C + c, row = g.width * C;
    double sum = 0.0;
    for (int64_t r = 0; r < kh; ++r) sum += squared_difference(a[first + r * row], b[first + r * row]);
    embedding[n * g.embedding + local] = static_cast<T>(sum / static_cast<double>(kh));
  }
}

// One block per sample.
template <class T>
__global__ void local_pod_distance_kernel(T* distance, const T* embedding, int64_t values) {
  __shared__ double sums[kThreads];
  const T* e = embedding + blockIdx.x * values;
  double sum = 0.0;
  for (int64_t k = threadIdx.x; k < values; k += blockDim.x)
    sum += static_cast<double>(e[k]) * static_cast<double>(e[k]);
  sum = block_reduce(sum, sums, SumOp{});
  if (threadIdx.x == 0) distance[blockIdx.x] = static_cast<T>(sqrt(sum));
}

template <class T>
__global__ void local_pod_backward_kernel(T* dstudent, const T* ddistance, const T* distance, const T* embedding,
                                          const T* student, cm::PodGeometry g) {
  const int64_t C = g.channels;
  STRATA_FOR_EACH_INDEX(index, g.batch * g.pixels() * C) {
    const int64_t c = index % C, pixel = index / C;
    const int64_t q = pixel % g.width, r = (pixel / g.width) % g.height, n = pixel / g.pixels();
    const T* e = embedding + n * g.embedding;
    double profiles = 0.0;
    for (int t = 0; t < g.scales; ++t) {
      int64_t row = 0, col = 0;
      if (!cm::pod_pixel_offsets(g, t, r, q, row, col)) continue;
      profiles += cm::pod_profile_term(e, row, col, c, cm::pod_row_weight(g, t), cm::pod_col_weight(g, t));
    }
    const double scale =
        cm::local_pod_gradient_scale(static_cast<double>(ddistance[n]), static_cast<double>(distance[n]));
    dstudent[index] = static_cast<T>(cm::local_pod_gradient(scale, static_cast<double>(student[index]), profiles));
  }
}

}  // namespace

template <class T>
void local_pod(T* distance, T* embedding, const T* teacher, const T* student, const cm::PodGeometry& g,
               const Backend& backend) {
  STRATA_LAUNCH((local_pod_rows_kernel<T>), backend.stream, blocks_for(g.batch * g.row_values, kThreads), kThreads, 0,
                embedding, teacher, student, g);
  STRATA_LAUNCH((local_pod_columns_kernel<T>), backend.stream,
                blocks_for(g.batch * (g.embedding - g.row_values), kThreads), kThreads, 0, embedding, teacher, student,
                g);
  STRATA_LAUNCH((local_pod_distance_kernel<T>), backend.stream, static_cast<unsigned>(g.batch), kThreads, 0, distance,
                embedding, g.embedding);
}

template <class T>
void local_pod_backward(T* dstudent, const T* ddistance, const T* distance, const T* embedding, const T* student,
                        const cm::PodGeometry& g, const Backend& backend) {
  STRATA_LAUNCH((local_pod_backward_kernel<T>), backend.stream, blocks_for(g.batch * g.pixels() * g.channels, kThreads),
                kThreads, 0, dstudent, ddistance, distance, embedding, student, g);
}

#define STRATA_INSTANTIATE(T)                                                                             \
  template void local_pod<T>(T*, T*, const T*, const T*, const cm::PodGeometry&, const Backend&);         \
  template void local_pod_backward<T>(T*, const T*, const T*, const T*, const T*, const cm::PodGeometry&, \
                                      const Backend&);
STRATA_INSTANTIATE(float)
STRATA_INSTANTIATE(double)
#undef STRATA_INSTANTIATE

}  // namespace strata::kernels::cuda
