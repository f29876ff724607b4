// Local POD on the CPU (kernels/cpu/pod.h; the math: kernels/common/pod.h).
//
// Forward: one pass over the two maps per (sample, block of 64 channels). Each pixel's D = a² − b²
// is added to the running row profile of every scale's window column it falls in and to the column
// profile of its window row; a row's profiles are written when the row ends, a window row's column
// profiles when its last row ends. Work items own disjoint channel blocks of the embedding; each
// keeps its partial Σ e², combined per sample in block order.
// Backward: an elementwise pass that reads each pixel's profile values from the saved embedding.
#include "kernels/cpu/pod.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/parallel.h"

namespace strata::kernels::cpu {

namespace cm = strata::kernels::common;

namespace {

constexpr int64_t kChannelBlock = 64;

// Writes the profiles of channels [c0, c0 + cn) of one sample and returns their Σ e².
//   a, b: (H,W,C) of one sample -> e: (E) of that sample
template <class T>
double local_pod_block(T* e, const T* a, const T* b, int64_t c0, int64_t cn, const cm::PodGeometry& g) {
  const int64_t C = g.channels, W = g.width;
  int64_t row_base[cm::kMaxPodScales], col_base[cm::kMaxPodScales];
  int64_t row_size = 0, col_size = 0;
  for (int t = 0; t < g.scales; ++t) {
    row_base[t] = row_size;
    row_size += g.scale[t] * cn;
    col_base[t] = col_size;
    col_size += g.scale[t] * g.window_width[t] * cn;
  }
  std::vector<double> row_acc(static_cast<size_t>(row_size)), col_acc(static_cast<size_t>(col_size), 0.0);
  double diff[kChannelBlock];
  double squares = 0.0;
  auto store = [&](T* out, double value) {
    const T v = static_cast<T>(value);
    *out = v;
    squares += static_cast<double>(v) * static_cast<double>(v);
  };
  for (int64_t r = 0; r < g.height; ++r) {
    std::fill(row_acc.begin(), row_acc.end(), 0.0);
    for (int64_t q = 0; q < W; ++q) {
      const T* ap = a + (r * W + q) * C + c0;
      const T* bp = b + (r * W + q) * C + c0;
#pragma omp simd
      for (int64_t c = 0; c < cn; ++c) {
        const double x = static_cast<double>(ap[c]), y = static_cast<double>(bp[c]);
        diff[c] = (x - y) * (x + y);
      }
      for (int t = 0; t < g.scales; ++t) {
        const int64_t kh = g.window_height[t], kw = g.window_width[t];
        if (r >= g.scale[t] * kh || q >= g.scale[t] * kw) continue;
        double* ra = row_acc.data() + row_base[t] + (q / kw) * cn;
        double* ca = col_acc.data() + col_base[t] + q * cn;
#pragma omp simd
        for (int64_t c = 0; c < cn; ++c) {
          ra[c] += diff[c];
          ca[c] += diff[c];
        }
      }
    }
    for (int t = 0; t < g.scales; ++t) {
      const int64_t s = g.scale[t], kh = g.window_height[t], kw = g.window_width[t];
      if (r >= s * kh) continue;
      for (int64_t j = 0; j < s; ++j) {
        const double* ra = row_acc.data() + row_base[t] + j * cn;
        T* out = e + g.row_offset[t] + (r * s + j) * C + c0;
        for (int64_t c = 0; c < cn; ++c) store(out + c, ra[c] / static_cast<double>(kw));
      }
      if ((r + 1) % kh != 0) continue;
      const int64_t i = r / kh;
      for (int64_t q = 0; q < s * kw; ++q) {
        double* ca = col_acc.data() + col_base[t] + q * cn;
        T* out = e + g.col_offset[t] + (i * s * kw + q) * C + c0;
        for (int64_t c = 0; c < cn; ++c) {
          store(out + c, ca[c] / static_cast<double>(kh));
          ca[c] = 0.0;
        }
      }
    }
  }
  return squares;
}

}  // namespace

template <class T>
void local_pod(T* distance, T* embedding, const T* teacher, const T* student, const cm::PodGeometry& g,
               const Backend&) {
  const int64_t blocks = (g.channels + kChannelBlock - 1) / kChannelBlock;
  const int64_t map = g.pixels() * g.channels;
  std::vector<double> partial(static_cast<size_t>(g.batch * blocks));
  parallel_for(0, g.batch * blocks, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t item = lo; item < hi; ++item) {
      const int64_t n = item / blocks, c0 = (item % blocks) * kChannelBlock;
      partial[static_cast<size_t>(item)] =
          local_pod_block(embedding + n * g.embedding, teacher + n * map, student + n * map, c0,
                          std::min(kChannelBlock, g.channels - c0), g);
    }
  });
  for (int64_t n = 0; n < g.batch; ++n) {
    double squares = 0.0;
    for (int64_t k = 0; k < blocks; ++k) squares += partial[static_cast<size_t>(n * blocks + k)];
    distance[n] = static_cast<T>(std::sqrt(squares));
  }
}

template <class T>
void local_pod_backward(T* dstudent, const T* ddistance, const T* distance, const T* embedding, const T* student,
                        const cm::PodGeometry& g, const Backend&) {
  const int64_t C = g.channels, row = g.width * C;
  const int64_t grain = std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(1, row));
  parallel_for(0, g.batch * g.height, grain, [&](int64_t lo, int64_t hi) {
    std::vector<double> profiles(static_cast<size_t>(C));
    for (int64_t nr = lo; nr < hi; ++nr) {
      const int64_t n = nr / g.height, r = nr % g.height;
      const T* e = embedding + n * g.embedding;
      const double scale =
          cm::local_pod_gradient_scale(static_cast<double>(ddistance[n]), static_cast<double>(distance[n]));
      for (int64_t q = 0; q < g.width; ++q) {
        // The pixel's profile sums, scale by scale (the order of the CUDA kernel's per-element loop),
        // over its C contiguous channels.
        std::fill(profiles.begin(), profiles.end(), 0.0);
        double* p = profiles.data();
        for (int t = 0; t < g.scales; ++t) {
          int64_t row_at = 0, col_at = 0;
          if (!cm::pod_pixel_offsets(g, t, r, q, row_at, col_at)) continue;
          const double row_weight = cm::pod_row_weight(g, t), col_weight = cm::pod_col_weight(g, t);
#pragma omp simd
          for (int64_t c = 0; c < C; ++c) p[c] += cm::pod_profile_term(e, row_at, col_at, c, row_weight, col_weight);
        }
        const T* b = student + nr * row + q * C;
        T* db = dstudent + nr * row + q * C;
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) {
          db[c] = static_cast<T>(cm::local_pod_gradient(scale, static_cast<double>(b[c]), p[c]));
        }
      }
    }
  });
}

#define STRATA_INSTANTIATE(T)                                                                             \
  template void local_pod<T>(T*, T*, const T*, const T*, const cm::PodGeometry&, const Backend&);         \
  template void local_pod_backward<T>(T*, const T*, const T*, const T*, const T*, const cm::PodGeometry&, \
                                      const Backend&);
STRATA_INSTANTIATE(float)
STRATA_INSTANTIATE(double)
#undef STRATA_INSTANTIATE

}  // namespace strata::kernels::cpu
