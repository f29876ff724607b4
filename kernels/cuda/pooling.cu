// 2-D pooling of NHWC images on CUDA, PyTorch's F.max_pool2d / F.avg_pool2d / F.adaptive_avg_pool2d semantics (ATen
// MaxPoolKernel.cpp / AvgPoolKernel.cpp), the same arithmetic in the same order as
// kernels/cpu/pooling.cpp; the per-axis window math is kernels/common/pooling.h.
//   window of output (oh, ow): rows oh * sH - pH + kh * dH (kh < kH), columns likewise.
//   max: y = max over the taps inside the input, scanned row-major, a tap replacing the running
//        maximum when v > max or v is NaN; argmax = ih * W + iw.
//   avg: y = sum over the taps inside the input / (divisor_h * divisor_w), summed in double.
//   N batch, H x W input, OH x OW output, C channels (innermost, contiguous).
//
// Threads: the NHWC layout of kernel_utils.h (one pixel per threadIdx.y row, its channels over
// threadIdx.x), so loads and stores are coalesced along C and the window geometry is computed once
// per pixel. Every output element has exactly one writer: no atomics, the same bits every run.
//   max forward: one output pixel per row of threads, scanning its window.
//   max backward: a gather per input pixel over the outputs whose windows tap it
//     (common::tapping_output, visited in increasing (oh, ow) as the CPU does), adding dy where the
//     saved argmax names this pixel.
//   avg forward: separable, like the CPU: pass 1 sums each output row's window of input rows into a
//     double buffer (N, OH, W, C), pass 2 sums each output pixel's window of that buffer's columns
//     and divides. O(kH + kW) per output instead of O(kH kW) (the MiB head's 32x32 evaluation
//     pooling would otherwise read each input 1024 times).
//   avg backward: the adjoint, separable too: pass 1 gathers dy rows into a double buffer
//     (N, H, OW, C) weighted by 1 / divisor_h over the outputs containing each input row
//     (common::outputs_containing), pass 2 gathers that buffer's columns weighted by 1 / divisor_w.
#include <cuda_runtime.h>

#include "kernels/cuda/kernel_utils.h"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/pooling.h"

namespace strata::kernels::cuda {

namespace cm = strata::kernels::common;

namespace {

template <class T>
__global__ void max_pool2d_kernel(T* y, int32_t* argmax, const T* x, const Pool2dGeometry g) {
  const int64_t C = g.channels;
  STRATA_FOR_EACH_PIXEL(p, g.batch * g.out_h * g.out_w) {
    int64_t ow = p % g.out_w, oh = (p / g.out_w) % g.out_h, n = p / (g.out_w * g.out_h);
    int64_t h_start = oh * g.stride_h - g.pad_h, w_start = ow * g.stride_w - g.pad_w;
    const T* xn = x + n * g.in_h * g.in_w * C;
    STRATA_FOR_EACH_CHANNEL(c, C) {
      T m = -INFINITY;
      int32_t a = -1;
      for (int64_t kh = 0; kh < g.kernel_h; ++kh) {
        int64_t ih = h_start + kh * g.dilation_h;
        if (ih < 0 || ih >= g.in_h) continue;
        for (int64_t kw = 0; kw < g.kernel_w; ++kw) {
          int64_t iw = w_start + kw * g.dilation_w;
          if (iw < 0 || iw >= g.in_w) continue;
          T v = xn[(ih * g.in_w + iw) * C + c];
          int32_t pos = static_cast<int32_t>(ih * g.in_w + iw);
          // An all -inf window keeps its first tap, as PyTorch initialises the index to it.
          if (a < 0) a = pos;
          if (v > m || v != v) {
            m = v;
            a = pos;
          }
        }
      }
      y[p * C + c] = m;
      if (argmax) argmax[p * C + c] = a;
    }
  }
}

template <class T>
__global__ void max_pool2d_backward_kernel(T* dx, const T* dy, const int32_t* argmax, const Pool2dGeometry g) {
  const int64_t C = g.channels;
  STRATA_FOR_EACH_PIXEL(p, g.batch * g.in_h * g.in_w) {
    int64_t iw = p % g.in_w, ih = (p / g.in_w) % g.in_h, n = p / (g.in_w * g.in_h);
    int32_t pos = static_cast<int32_t>(ih * g.in_w + iw);
    const int64_t out_base = n * g.out_h * g.out_w;
    STRATA_FOR_EACH_CHANNEL(c, C) {
      T d = 0;
      for (int64_t jh = g.kernel_h - 1; jh >= 0; --jh) {
        int64_t oh = cm::tapping_output(ih, jh, g.out_h, g.stride_h, g.pad_h, g.dilation_h);
        if (oh < 0) continue;
        for (int64_t jw = g.kernel_w - 1; jw >= 0; --jw) {
          int64_t ow = cm::tapping_output(iw, jw, g.out_w, g.stride_w, g.pad_w, g.dilation_w);
          if (ow < 0) continue;
          int64_t o = (out_base + oh * g.out_w + ow) * C + c;
          if (argmax[o] == pos) d += dy[o];
        }
      }
      dx[p * C + c] = d;
    }
  }
}

// rows[n, oh, iw, c] = sum over the input rows of output row oh's window of x[n, ih, iw, c].
template <class T>
__global__ void avg_pool2d_rows_kernel(double* rows, const T* x, const Pool2dGeometry g) {
  const int64_t C = g.channels;
  STRATA_FOR_EACH_PIXEL(p, g.batch * g.out_h * g.in_w) {
    int64_t iw = p % g.in_w, oh = (p / g.in_w) % g.out_h, n = p / (g.in_w * g.out_h);
    cm::AvgPoolWindow wh = cm::average_window(g, true, oh, false);
    const T* xc = x + (n * g.in_h * g.in_w + iw) * C;
    STRATA_FOR_EACH_CHANNEL(c, C) {
      double s = 0;
      for (int64_t ih = wh.begin; ih < wh.end; ++ih) s += static_cast<double>(xc[ih * g.in_w * C + c]);
      rows[p * C + c] = s;
    }
  }
}

template <class T>
__global__ void avg_pool2d_columns_kernel(T* y, const double* rows, const Pool2dGeometry g, bool count_include_pad) {
  const int64_t C = g.channels;
  STRATA_FOR_EACH_PIXEL(p, g.batch * g.out_h * g.out_w) {
    int64_t ow = p % g.out_w, r = p / g.out_w;  // r = n * OH + oh
    cm::AvgPoolWindow wh = cm::average_window(g, true, r % g.out_h, count_include_pad);
    cm::AvgPoolWindow ww = cm::average_window(g, false, ow, count_include_pad);
    int64_t divisor = wh.divisor * ww.divisor;
    double inv = divisor > 0 ? 1.0 / static_cast<double>(divisor) : 0.0;
    const double* row = rows + r * g.in_w * C;
    STRATA_FOR_EACH_CHANNEL(c, C) {
      double s = 0;
      for (int64_t iw = ww.begin; iw < ww.end; ++iw) s += row[iw * C + c];
      y[p * C + c] = static_cast<T>(s * inv);
    }
  }
}

// The reciprocal of output o's divisor along the rows (or columns) (0 for an empty window, which no
// input's range contains).
__device__ inline double inverse_divisor(const Pool2dGeometry& g, bool rows, int64_t o, bool count_include_pad) {
  int64_t d = cm::average_window(g, rows, o, count_include_pad).divisor;
  return d > 0 ? 1.0 / static_cast<double>(d) : 0.0;
}

// columns[n, ih, ow, c] = sum over the output rows oh containing ih of dy[n, oh, ow, c] / divisor_h(oh).
template <class T>
__global__ void avg_pool2d_backward_rows_kernel(double* columns, const T* dy, const Pool2dGeometry g,
                                                bool count_include_pad) {
  const int64_t C = g.channels;
  STRATA_FOR_EACH_PIXEL(p, g.batch * g.in_h * g.out_w) {
    int64_t ow = p % g.out_w, ih = (p / g.out_w) % g.in_h, n = p / (g.out_w * g.in_h);
    cm::OutputRange range = cm::average_outputs_containing(g, true, ih);
    const T* dyc = dy + (n * g.out_h * g.out_w + ow) * C;
    STRATA_FOR_EACH_CHANNEL(c, C) {
      double s = 0;
      for (int64_t oh = range.first; oh < range.last; ++oh) {
        double w = inverse_divisor(g, true, oh, count_include_pad);
        s += w * static_cast<double>(dyc[oh * g.out_w * C + c]);
      }
      columns[p * C + c] = s;
    }
  }
}

template <class T>
__global__ void avg_pool2d_backward_columns_kernel(T* dx, const double* columns, const Pool2dGeometry g,
                                                   bool count_include_pad) {
  const int64_t C = g.channels;
  STRATA_FOR_EACH_PIXEL(p, g.batch * g.in_h * g.in_w) {
    int64_t iw = p % g.in_w, r = p / g.in_w;  // r = n * H + ih
    cm::OutputRange range = cm::average_outputs_containing(g, false, iw);
    const double* row = columns + r * g.out_w * C;
    STRATA_FOR_EACH_CHANNEL(c, C) {
      double s = 0;
      for (int64_t ow = range.first; ow < range.last; ++ow) {
        double w = inverse_divisor(g, false, ow, count_include_pad);
        s += w * row[ow * C + c];
      }
      dx[p * C + c] = static_cast<T>(s);
    }
  }
}

}  // namespace

template <class T>
void max_pool2d(T* y, int32_t* argmax, const T* x, const Pool2dGeometry& g, const Backend& backend) {
  int64_t pixels = g.batch * g.out_h * g.out_w;
  if (pixels == 0 || g.channels == 0) return;
  PixelLaunch l = pixel_launch(pixels, g.channels);
  STRATA_LAUNCH((max_pool2d_kernel<T>), backend.stream, l.grid, l.block, 0, y, argmax, x, g);
}

template <class T>
void max_pool2d_backward(T* dx, const T* dy, const int32_t* argmax, const Pool2dGeometry& g, const Backend& backend) {
  int64_t pixels = g.batch * g.in_h * g.in_w;
  if (pixels == 0 || g.channels == 0) return;
  PixelLaunch l = pixel_launch(pixels, g.channels);
  STRATA_LAUNCH((max_pool2d_backward_kernel<T>), backend.stream, l.grid, l.block, 0, dx, dy, argmax, g);
}

template <class T>
void avg_pool2d(T* y, const T* x, const Pool2dGeometry& g, bool count_include_pad, const Backend& backend) {
  if (g.batch * g.out_h * g.out_w * g.channels == 0) return;
  double* rows = backend.scratch->array<double>(g.batch * g.out_h * g.in_w * g.channels);
  PixelLaunch pass1 = pixel_launch(g.batch * g.out_h * g.in_w, g.channels);
  STRATA_LAUNCH((avg_pool2d_rows_kernel<T>), backend.stream, pass1.grid, pass1.block, 0, rows, x, g);
  PixelLaunch pass2 = pixel_launch(g.batch * g.out_h * g.out_w, g.channels);
  STRATA_LAUNCH((avg_pool2d_columns_kernel<T>), backend.stream, pass2.grid, pass2.block, 0, y, rows, g,
                count_include_pad);
}

template <class T>
void avg_pool2d_backward(T* dx, const T* dy, const Pool2dGeometry& g, bool count_include_pad, const Backend& backend) {
  if (g.batch * g.in_h * g.in_w * g.channels == 0) return;
  double* columns = backend.scratch->array<double>(g.batch * g.in_h * g.out_w * g.channels);
  PixelLaunch pass1 = pixel_launch(g.batch * g.in_h * g.out_w, g.channels);
  STRATA_LAUNCH((avg_pool2d_backward_rows_kernel<T>), backend.stream, pass1.grid, pass1.block, 0, columns, dy, g,
                count_include_pad);
  PixelLaunch pass2 = pixel_launch(g.batch * g.in_h * g.in_w, g.channels);
  STRATA_LAUNCH((avg_pool2d_backward_columns_kernel<T>), backend.stream, pass2.grid, pass2.block, 0, dx, columns, g,
                count_include_pad);
}

#define STRATA_INSTANTIATE(T)                                                                                \
  template void max_pool2d<T>(T*, int32_t*, const T*, const Pool2dGeometry&, const Backend&);                \
  template void max_pool2d_backward<T>(T*, const T*, const int32_t*, const Pool2dGeometry&, const Backend&); \
  template void avg_pool2d<T>(T*, const T*, const Pool2dGeometry&, bool, const Backend&);                    \
  template void avg_pool2d_backward<T>(T*, const T*, const Pool2dGeometry&, bool, const Backend&);
STRATA_INSTANTIATE(float)
STRATA_INSTANTIATE(double)
#undef STRATA_INSTANTIATE

}  // namespace strata::kernels::cuda
