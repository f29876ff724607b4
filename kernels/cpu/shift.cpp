// Spatial shift kernels (kernels/common/shift.h for the index maps): gathers, one writer per output
// element, rows of pixels in parallel chunks.
#include "kernels/cpu/shift.h"

#include <algorithm>

#include "kernels/common/shift.h"
#include "kernels/cpu/parallel.h"

namespace strata::kernels::cpu {

template <class T>
void roll_flip(T* y, const T* x, int64_t batch, int64_t height, int64_t width, int64_t channels, int64_t shift_h,
               int64_t shift_w, bool flip, bool inverse, const Backend&) {
  const int64_t C = channels;
  parallel_for(0, batch * height, rows_per_chunk(width * C), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const int64_t n = r / height, h = r % height;
      const T* xn = x + n * height * width * C;
      for (int64_t w = 0; w < width; ++w) {
        const int64_t s = common::roll_flip_source(h, w, height, width, shift_h, shift_w, flip, inverse);
        std::copy(xn + s * C, xn + (s + 1) * C, y + (r * width + w) * C);
      }
    }
  });
}

template <class T>
void spatial_difference(T* y, const T* x, int64_t batch, int64_t height, int64_t width, int64_t channels, int64_t dy,
                        int64_t dx, const Backend&) {
  const int64_t C = channels;
  const common::DifferenceGeometry g = common::difference_geometry(height, width, dy, dx);
  parallel_for(0, batch * g.out_h, rows_per_chunk(g.out_w * C), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const int64_t n = r / g.out_h, i = r % g.out_h;
      const T* a = x + ((n * height + i + g.oy) * width + g.ox) * C;
      const T* b = x + ((n * height + i + g.oy + dy) * width + g.ox + dx) * C;
      T* yr = y + r * g.out_w * C;
      for (int64_t k = 0; k < g.out_w * C; ++k) yr[k] = a[k] - b[k];
    }
  });
}

template <class T>
void spatial_difference_backward(T* gx, const T* gy, int64_t batch, int64_t height, int64_t width, int64_t channels,
                                 int64_t dy, int64_t dx, const Backend&) {
  const int64_t C = channels;
  const common::DifferenceGeometry g = common::difference_geometry(height, width, dy, dx);
  auto inside = [&](int64_t i, int64_t j) { return i >= 0 && i < g.out_h && j >= 0 && j < g.out_w; };
  parallel_for(0, batch * height, rows_per_chunk(width * C), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const int64_t n = r / height, h = r % height;
      const T* gn = gy + n * g.out_h * g.out_w * C;
      for (int64_t w = 0; w < width; ++w) {
        T* d = gx + (r * width + w) * C;
        std::fill(d, d + C, T(0));
        const int64_t pi = h - g.oy, pj = w - g.ox, mi = pi - dy, mj = pj - dx;
        if (inside(pi, pj)) {
          const T* s = gn + (pi * g.out_w + pj) * C;
          for (int64_t c = 0; c < C; ++c) d[c] += s[c];
        }
        if (inside(mi, mj)) {
          const T* s = gn + (mi * g.out_w + mj) * C;
          for (int64_t c = 0; c < C; ++c) d[c] -= s[c];
        }
      }
    }
  });
}

#define STRATA_INSTANTIATE(T)                                                                                      \
  template void roll_flip<T>(T*, const T*, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, bool, bool,       \
                             const Backend&);                                                                      \
  template void spatial_difference<T>(T*, const T*, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,          \
                                      const Backend&);                                                             \
  template void spatial_difference_backward<T>(T*, const T*, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, \
                                               const Backend&);
STRATA_INSTANTIATE(float)
STRATA_INSTANTIATE(double)
#undef STRATA_INSTANTIATE

}  // namespace strata::kernels::cpu
