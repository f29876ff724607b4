// Bilinear resampling of NHWC images on CUDA, PyTorch's F.interpolate(mode="bilinear") semantics,
// with the per-axis taps of kernels/common/upsample.h and the arithmetic of kernels/cpu/upsample.cpp
// in the same order:
//   y[n, oh, ow, c] = lh0 * (lw0 * x[n, h0, w0, c] + lw1 * x[n, h0, w1, c])
//                   + lh1 * (lw0 * x[n, h1, w0, c] + lw1 * x[n, h1, w1, c])
// The map is separable, y = A_h x A_w^T per channel, so the backward dx = A_h^T dy A_w is a gather in
// two passes, never scattered atomics (DESIGN.md): per axis, the outputs whose taps touch input i
// form one contiguous range (common::bilinear_footprint), read with common::bilinear_weight.
//   pass 1 (h): rows[n, ih, ow, c] = sum over oh in footprint_h(ih) of w_h(oh, ih) dy[n, oh, ow, c]
//   pass 2 (w): dx[n, ih, iw, c]   = sum over ow in footprint_w(iw) of w_w(ow, iw) rows[n, ih, ow, c]
// which reads each dy element about twice, against four times for a direct 2-D gather, and needs the
// footprints and weights of one axis per pass.
// Threads: the NHWC layout of kernel_utils.h. A row of threads owns one pixel and its lanes walk the
// channels (coalesced loads and stores, the C = 21..151 class logits this runs on in the losses), so
// the taps and footprints are computed once per pixel, not once per element.
//   N batch, H x W input, OH x OW output, C channels (innermost, contiguous).
#include <cuda_runtime.h>

#include "kernels/common/upsample.h"
#include "kernels/cuda/kernel_utils.h"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/upsample.h"

namespace strata::kernels::cuda {

namespace cm = strata::kernels::common;

namespace {

template <class T>
__global__ void upsample_bilinear_kernel(T* y, const T* x, int64_t batch, int64_t in_h, int64_t in_w, int64_t channels,
                                         int64_t out_h, int64_t out_w, T scale_h, T scale_w, bool align_corners) {
  STRATA_FOR_EACH_PIXEL(p, batch * out_h * out_w) {
    int64_t ow = p % out_w, oh = (p / out_w) % out_h, n = p / (out_w * out_h);
    cm::BilinearTaps<T> th = cm::bilinear_taps<T>(scale_h, oh, in_h, align_corners);
    cm::BilinearTaps<T> tw = cm::bilinear_taps<T>(scale_w, ow, in_w, align_corners);
    const T* row0 = x + (n * in_h + th.i0) * in_w * channels;
    const T* row1 = x + (n * in_h + th.i1) * in_w * channels;
    const T* x00 = row0 + tw.i0 * channels;
    const T* x01 = row0 + tw.i1 * channels;
    const T* x10 = row1 + tw.i0 * channels;
    const T* x11 = row1 + tw.i1 * channels;
    STRATA_FOR_EACH_CHANNEL(c, channels) {
      y[p * channels + c] = th.lambda0 * (tw.lambda0 * x00[c] + tw.lambda1 * x01[c]) +
                            th.lambda1 * (tw.lambda0 * x10[c] + tw.lambda1 * x11[c]);
    }
  }
}

// One axis of the adjoint: out[n, i, j, c] = sum over o in footprint(i) of w(o, i) in[n, o, j, c],
// where the axis runs over `in_size` (i) and `out_size` (o), `inner` is the size of the axis after it
// (j) and n the product of the axes before it. Pass 1 is (n, i = ih, j = ow) over dy viewed as
// (N, OH, OW, C); pass 2 is (n = (n, ih), i = iw, j = 1) over rows viewed as (N H, OW, 1, C).
template <class T>
__global__ void upsample_bilinear_adjoint_kernel(T* out, const T* in, int64_t outer, int64_t in_size,
                                                 int64_t out_size, int64_t inner, int64_t channels, T scale,
                                                 bool align_corners) {
  STRATA_FOR_EACH_PIXEL(p, outer * in_size * inner) {
    int64_t j = p % inner, i = (p / inner) % in_size, n = p / (inner * in_size);
    cm::BilinearRange range = cm::bilinear_footprint<T>(scale, i, in_size, out_size, align_corners);
    const int64_t step = inner * channels;
    const T* column = in + (n * out_size * inner + j) * channels;
    STRATA_FOR_EACH_CHANNEL(c, channels) {
      T s = 0;
      for (int64_t o = range.first; o < range.last; ++o) {
        T w = cm::bilinear_weight(cm::bilinear_taps<T>(scale, o, in_size, align_corners), i);
        T term = w * column[o * step + c];
        s = o == range.first ? term : s + term;
      }
      out[p * channels + c] = s;
    }
  }
}

template <class T>
__global__ void upsample_nearest_kernel(T* y, const T* x, int64_t batch, int64_t in_h, int64_t in_w, int64_t channels,
                                        int64_t out_h, int64_t out_w) {
  STRATA_FOR_EACH_PIXEL(p, batch * out_h * out_w) {
    int64_t ow = p % out_w, oh = (p / out_w) % out_h, n = p / (out_w * out_h);
    const T* source = x + ((n * in_h + cm::nearest_source_index(oh, in_h, out_h)) * in_w +
                           cm::nearest_source_index(ow, in_w, out_w)) *
                              channels;
    STRATA_FOR_EACH_CHANNEL(c, channels) { y[p * channels + c] = source[c]; }
  }
}

// One thread row per input pixel: the sum of dy over its output rectangle, in the CPU's order (rows,
// then columns).
template <class T>
__global__ void upsample_nearest_backward_kernel(T* dx, const T* dy, int64_t batch, int64_t in_h, int64_t in_w,
                                                 int64_t channels, int64_t out_h, int64_t out_w) {
  STRATA_FOR_EACH_PIXEL(p, batch * in_h * in_w) {
    int64_t iw = p % in_w, ih = (p / in_w) % in_h, n = p / (in_w * in_h);
    cm::BilinearRange rh = cm::nearest_footprint(ih, in_h, out_h);
    cm::BilinearRange rw = cm::nearest_footprint(iw, in_w, out_w);
    STRATA_FOR_EACH_CHANNEL(c, channels) {
      T s = 0;
      for (int64_t oh = rh.first; oh < rh.last; ++oh) {
        for (int64_t ow = rw.first; ow < rw.last; ++ow) s += dy[((n * out_h + oh) * out_w + ow) * channels + c];
      }
      dx[p * channels + c] = s;
    }
  }
}

}  // namespace

template <class T>
void upsample_nearest(T* y, const T* x, int64_t batch, int64_t in_h, int64_t in_w, int64_t channels, int64_t out_h,
                      int64_t out_w, const Backend& backend) {
  const int64_t pixels = batch * out_h * out_w;
  if (pixels == 0 || channels == 0) return;
  PixelLaunch l = pixel_launch(pixels, channels);
  STRATA_LAUNCH((upsample_nearest_kernel<T>), backend.stream, l.grid, l.block, 0, y, x, batch, in_h, in_w, channels,
                out_h, out_w);
}

template <class T>
void upsample_nearest_backward(T* dx, const T* dy, int64_t batch, int64_t in_h, int64_t in_w, int64_t channels,
                               int64_t out_h, int64_t out_w, const Backend& backend) {
  const int64_t pixels = batch * in_h * in_w;
  if (pixels == 0 || channels == 0) return;
  PixelLaunch l = pixel_launch(pixels, channels);
  STRATA_LAUNCH((upsample_nearest_backward_kernel<T>), backend.stream, l.grid, l.block, 0, dx, dy, batch, in_h, in_w,
                channels, out_h, out_w);
}

template <class T>
void upsample_bilinear(T* y, const T* x, int64_t batch, int64_t in_h, int64_t in_w, int64_t channels, int64_t out_h,
                       int64_t out_w, bool align_corners, const Backend& backend) {
  const int64_t pixels = batch * out_h * out_w;
  if (pixels == 0 || channels == 0) return;
  T scale_h = cm::bilinear_scale<T>(in_h, out_h, align_corners);
  T scale_w = cm::bilinear_scale<T>(in_w, out_w, align_corners);
  PixelLaunch l = pixel_launch(pixels, channels);
  STRATA_LAUNCH((upsample_bilinear_kernel<T>), backend.stream, l.grid, l.block, 0, y, x, batch, in_h, in_w, channels,
                out_h, out_w, scale_h, scale_w, align_corners);
}

template <class T>
void upsample_bilinear_backward(T* dx, const T* dy, int64_t batch, int64_t in_h, int64_t in_w, int64_t channels,
                                int64_t out_h, int64_t out_w, bool align_corners, const Backend& backend) {
  if (batch * in_h * in_w * channels == 0) return;
  // The adjoint along H first: rows (N, H, OW, C), then along W into dx.
  T* rows = backend.scratch->array<T>(batch * in_h * out_w * channels);
  T scale_h = cm::bilinear_scale<T>(in_h, out_h, align_corners);
  T scale_w = cm::bilinear_scale<T>(in_w, out_w, align_corners);
  PixelLaunch pass1 = pixel_launch(batch * in_h * out_w, channels);
  STRATA_LAUNCH((upsample_bilinear_adjoint_kernel<T>), backend.stream, pass1.grid, pass1.block, 0, rows, dy, batch,
                in_h, out_h, out_w, channels, scale_h, align_corners);
  PixelLaunch pass2 = pixel_launch(batch * in_h * in_w, channels);
  STRATA_LAUNCH((upsample_bilinear_adjoint_kernel<T>), backend.stream, pass2.grid, pass2.block, 0, dx, rows,
                batch * in_h, in_w, out_w, int64_t{1}, channels, scale_w, align_corners);
}

#define STRATA_INSTANTIATE(T)                                                                                     \
  template void upsample_nearest<T>(T*, const T*, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,           \
                                    const Backend&);                                                              \
  template void upsample_nearest_backward<T>(T*, const T*, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,  \
                                             const Backend&);                                                     \
  template void upsample_bilinear<T>(T*, const T*, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, bool,    \
                                     const Backend&);                                                             \
  template void upsample_bilinear_backward<T>(T*, const T*, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, \
                                              bool, const Backend&);
STRATA_INSTANTIATE(float)
STRATA_INSTANTIATE(double)
#undef STRATA_INSTANTIATE

}  // namespace strata::kernels::cuda
