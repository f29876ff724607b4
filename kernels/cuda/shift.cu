// Spatial shift kernels on CUDA (kernels/common/shift.h for the index maps): gathers, one writer per
// output element, no atomics; the backward of spatial_difference adds +g then -g in the CPU kernel's
// order. Threads: the NHWC layout of kernel_utils.h (a pixel per row of threads, channels over lanes).
#include <cuda_runtime.h>

#include "kernels/common/shift.h"
#include "kernels/cuda/kernel_utils.h"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/shift.h"

namespace strata::kernels::cuda {

namespace cm = strata::kernels::common;

namespace {

template <class T>
__global__ void roll_flip_kernel(T* y, const T* x, int64_t batch, int64_t height, int64_t width, int64_t channels,
                                 int64_t shift_h, int64_t shift_w, bool flip, bool inverse) {
  STRATA_FOR_EACH_PIXEL(p, batch * height * width) {
    const int64_t w = p % width, h = (p / width) % height, n = p / (width * height);
    const int64_t s = cm::roll_flip_source(h, w, height, width, shift_h, shift_w, flip, inverse);
    const T* xp = x + (n * height * width + s) * channels;
    STRATA_FOR_EACH_CHANNEL(c, channels) { y[p * channels + c] = xp[c]; }
  }
}

template <class T>
__global__ void spatial_difference_kernel(T* y, const T* x, int64_t batch, int64_t height, int64_t width,
                                          int64_t channels, cm::DifferenceGeometry g) {
  STRATA_FOR_EACH_PIXEL(p, batch * g.out_h * g.out_w) {
    const int64_t j = p % g.out_w, i = (p / g.out_w) % g.out_h, n = p / (g.out_w * g.out_h);
    const T* a = x + ((n * height + i + g.oy) * width + j + g.ox) * channels;
    const T* b = x + ((n * height + i + g.oy + g.dy) * width + j + g.ox + g.dx) * channels;
    STRATA_FOR_EACH_CHANNEL(c, channels) { y[p * channels + c] = a[c] - b[c]; }
  }
}

template <class T>
__global__ void spatial_difference_backward_kernel(T* gx, const T* gy, int64_t batch, int64_t height, int64_t width,
                                                   int64_t channels, cm::DifferenceGeometry g) {
  STRATA_FOR_EACH_PIXEL(p, batch * height * width) {
    const int64_t w = p % width, h = (p / width) % height, n = p / (width * height);
    const int64_t pi = h - g.oy, pj = w - g.ox, mi = pi - g.dy, mj = pj - g.dx;
    const bool plus = pi >= 0 && pi < g.out_h && pj >= 0 && pj < g.out_w;
    const bool minus = mi >= 0 && mi < g.out_h && mj >= 0 && mj < g.out_w;
    const T* gn = gy + n * g.out_h * g.out_w * channels;
    STRATA_FOR_EACH_CHANNEL(c, channels) {
      T d = 0;
      if (plus) d += gn[(pi * g.out_w + pj) * channels + c];
      if (minus) d -= gn[(mi * g.out_w + mj) * channels + c];
      gx[p * channels + c] = d;
    }
  }
}

}  // namespace

template <class T>
void roll_flip(T* y, const T* x, int64_t batch, int64_t height, int64_t width, int64_t channels, int64_t shift_h,
               int64_t shift_w, bool flip, bool inverse, const Backend& backend) {
  const int64_t pixels = batch * height * width;
  if (pixels == 0 || channels == 0) return;
  PixelLaunch l = pixel_launch(pixels, channels);
  STRATA_LAUNCH((roll_flip_kernel<T>), backend.stream, l.grid, l.block, 0, y, x, batch, height, width, channels,
                shift_h, shift_w, flip, inverse);
}

template <class T>
void spatial_difference(T* y, const T* x, int64_t batch, int64_t height, int64_t width, int64_t channels, int64_t dy,
                        int64_t dx, const Backend& backend) {
  const cm::DifferenceGeometry g = cm::difference_geometry(height, width, dy, dx);
  const int64_t pixels = batch * g.out_h * g.out_w;
  if (pixels == 0 || channels == 0) return;
  PixelLaunch l = pixel_launch(pixels, channels);
  STRATA_LAUNCH((spatial_difference_kernel<T>), backend.stream, l.grid, l.block, 0, y, x, batch, height, width,
                channels, g);
}

template <class T>
void spatial_difference_backward(T* gx, const T* gy, int64_t batch, int64_t height, int64_t width, int64_t channels,
                                 int64_t dy, int64_t dx, const Backend& backend) {
  const cm::DifferenceGeometry g = cm::difference_geometry(height, width, dy, dx);
  const int64_t pixels = batch * height * width;
  if (pixels == 0 || channels == 0) return;
  PixelLaunch l = pixel_launch(pixels, channels);
  STRATA_LAUNCH((spatial_difference_backward_kernel<T>), backend.stream, l.grid, l.block, 0, gx, gy, batch, height,
                width, channels, g);
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

}  // namespace strata::kernels::cuda
