// 2-D pooling of NHWC images, PyTorch's F.max_pool2d / F.avg_pool2d semantics (ATen
// MaxPoolKernel.cpp / AvgPoolKernel.cpp):
//   window of output (oh, ow): rows oh * sH - pH + kh * dH (kh < kH), columns likewise; taps outside
//   the input are padding.
//   max: y = max over taps inside the input, scanned row-major, replacing the running maximum when
//        v > max or v is NaN (so ties keep the first maximum and NaN propagates); argmax = ih * W + iw.
//   avg: y = sum over taps inside the input / divisor; the window clipped to [-p, in + p) has
//        size kh' x kw', the window clipped to the input h' x w'; divisor = kh' * kw' with
//        count_include_pad, else h' * w'. Both are products of per-axis counts, so average pooling
//        is separable: sum input rows into a row buffer, then sum columns of that buffer.
// Backward passes are gathers (one writer per input pixel, no atomics, any thread count gives the
// same bits): along each axis, the outputs whose windows tap input index i are precomputed
// (kernels/common/pooling.h).
//   N batch, H x W input, OH x OW output, C channels (innermost, contiguous).
#include "kernels/cpu/pooling.h"

#include <algorithm>
#include <cstddef>
#include <limits>
#include <vector>

#include "kernels/cpu/parallel.h"

namespace strata::kernels::cpu {

namespace {

// For every input index i along one axis, the outputs whose windows tap it, ascending:
// output[offset[i] .. offset[i + 1]).
struct TappingOutputs {
  std::vector<int64_t> offset;
  std::vector<int64_t> output;
};

TappingOutputs tapping_outputs(int64_t in_size, int64_t out_size, int64_t kernel, int64_t stride, int64_t pad,
                               int64_t dilation) {
  TappingOutputs t;
  t.offset.push_back(0);
  for (int64_t i = 0; i < in_size; ++i) {
    for (int64_t j = kernel - 1; j >= 0; --j) {
      int64_t o = common::tapping_output(i, j, out_size, stride, pad, dilation);
      if (o >= 0) t.output.push_back(o);
    }
    t.offset.push_back(static_cast<int64_t>(t.output.size()));
  }
  return t;
}

template <class T, bool kTrackArgmax>
void max_pool_rows(T* y, int32_t* argmax, const T* x, const Pool2dGeometry& g, int64_t lo, int64_t hi) {
  const int64_t C = g.channels;
  for (int64_t r = lo; r < hi; ++r) {
    int64_t n = r / g.out_h, oh = r % g.out_h;
    int64_t h_start = oh * g.stride_h - g.pad_h;
    for (int64_t ow = 0; ow < g.out_w; ++ow) {
      int64_t w_start = ow * g.stride_w - g.pad_w;
      T* m = y + (r * g.out_w + ow) * C;
      int32_t* a = kTrackArgmax ? argmax + (r * g.out_w + ow) * C : nullptr;
      std::fill(m, m + C, -std::numeric_limits<T>::infinity());
      bool any_tap = false;
      for (int64_t kh = 0; kh < g.kernel_h; ++kh) {
        int64_t ih = h_start + kh * g.dilation_h;
        if (ih < 0 || ih >= g.in_h) continue;
        for (int64_t kw = 0; kw < g.kernel_w; ++kw) {
          int64_t iw = w_start + kw * g.dilation_w;
          if (iw < 0 || iw >= g.in_w) continue;
          const T* v = x + ((n * g.in_h + ih) * g.in_w + iw) * C;
          int32_t pos = static_cast<int32_t>(ih * g.in_w + iw);
          if constexpr (kTrackArgmax) {
            // An all -inf window keeps its first tap, as PyTorch initialises the index to it.
            if (!any_tap) std::fill(a, a + C, pos);
            for (int64_t c = 0; c < C; ++c) {
              bool take = (v[c] > m[c]) | (v[c] != v[c]);
              m[c] = take ? v[c] : m[c];
              a[c] = take ? pos : a[c];
            }
          } else {
            for (int64_t c = 0; c < C; ++c) m[c] = (v[c] > m[c]) | (v[c] != v[c]) ? v[c] : m[c];
          }
          any_tap = true;
        }
      }
      if constexpr (kTrackArgmax) {
        if (!any_tap) std::fill(a, a + C, int32_t{-1});
      }
    }
  }
}

// Per output index along one axis: the window clipped to the input, [begin, end) (empty when
// begin >= end), and that axis's factor of the divisor (common::average_window).
struct AvgAxis {
  std::vector<int64_t> begin;
  std::vector<int64_t> end;
  std::vector<int64_t> divisor;
};

AvgAxis avg_axis(const Pool2dGeometry& g, bool rows, bool count_include_pad) {
  AvgAxis a;
  for (int64_t o = 0; o < (rows ? g.out_h : g.out_w); ++o) {
    common::AvgPoolWindow w = common::average_window(g, rows, o, count_include_pad);
    a.begin.push_back(w.begin);
    a.end.push_back(w.end);
    a.divisor.push_back(w.divisor);
  }
  return a;
}

// For every input index i, the outputs [first, last) whose clipped windows contain it.
std::vector<common::OutputRange> containing_outputs(const Pool2dGeometry& g, bool rows) {
  int64_t in_size = rows ? g.in_h : g.in_w;
  std::vector<common::OutputRange> ranges(static_cast<size_t>(in_size));
  for (int64_t i = 0; i < in_size; ++i) {
    ranges[static_cast<size_t>(i)] = common::average_outputs_containing(g, rows, i);
  }
  return ranges;
}

}  // namespace

template <class T>
void max_pool2d(T* y, int32_t* argmax, const T* x, const Pool2dGeometry& g, const Backend&) {
  int64_t grain = rows_per_chunk(g.out_w * g.channels * g.kernel_h * g.kernel_w);
  parallel_for(0, g.batch * g.out_h, grain, [&](int64_t lo, int64_t hi) {
    if (argmax) {
      max_pool_rows<T, true>(y, argmax, x, g, lo, hi);
    } else {
      max_pool_rows<T, false>(y, nullptr, x, g, lo, hi);
    }
  });
}

template <class T>
void max_pool2d_backward(T* dx, const T* dy, const int32_t* argmax, const Pool2dGeometry& g, const Backend&) {
  TappingOutputs th = tapping_outputs(g.in_h, g.out_h, g.kernel_h, g.stride_h, g.pad_h, g.dilation_h);
  TappingOutputs tw = tapping_outputs(g.in_w, g.out_w, g.kernel_w, g.stride_w, g.pad_w, g.dilation_w);
  const int64_t C = g.channels;
  int64_t grain = rows_per_chunk(g.in_w * C * g.kernel_h * g.kernel_w);
  parallel_for(0, g.batch * g.in_h, grain, [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      int64_t n = r / g.in_h, ih = r % g.in_h;
      size_t h = static_cast<size_t>(ih);
      for (int64_t iw = 0; iw < g.in_w; ++iw) {
        T* d = dx + (r * g.in_w + iw) * C;
        std::fill(d, d + C, T(0));
        int32_t pos = static_cast<int32_t>(ih * g.in_w + iw);
        size_t w = static_cast<size_t>(iw);
        for (int64_t j = th.offset[h]; j < th.offset[h + 1]; ++j) {
          int64_t oh = th.output[static_cast<size_t>(j)];
          for (int64_t k = tw.offset[w]; k < tw.offset[w + 1]; ++k) {
            int64_t o = ((n * g.out_h + oh) * g.out_w + tw.output[static_cast<size_t>(k)]) * C;
            const T* gp = dy + o;
            const int32_t* ap = argmax + o;
            for (int64_t c = 0; c < C; ++c) d[c] += ap[c] == pos ? gp[c] : T(0);
          }
        }
      }
    }
  });
}

template <class T>
void avg_pool2d(T* y, const T* x, const Pool2dGeometry& g, bool count_include_pad, const Backend&) {
  AvgAxis ah = avg_axis(g, true, count_include_pad);
  AvgAxis aw = avg_axis(g, false, count_include_pad);
  const int64_t C = g.channels, in_row = g.in_w * C;
  int64_t grain = rows_per_chunk(g.kernel_h * in_row + g.kernel_w * g.out_w * C);
  parallel_for(0, g.batch * g.out_h, grain, [&](int64_t lo, int64_t hi) {
    std::vector<double> row_sum(static_cast<size_t>(in_row));
    std::vector<double> sum(static_cast<size_t>(C));
    for (int64_t r = lo; r < hi; ++r) {
      int64_t n = r / g.out_h;
      size_t oh = static_cast<size_t>(r % g.out_h);
      std::fill(row_sum.begin(), row_sum.end(), 0.0);
      for (int64_t ih = ah.begin[oh]; ih < ah.end[oh]; ++ih) {
        const T* xr = x + (n * g.in_h + ih) * in_row;
        for (int64_t j = 0; j < in_row; ++j) row_sum[static_cast<size_t>(j)] += xr[j];
      }
      T* yr = y + r * g.out_w * C;
      for (int64_t ow = 0; ow < g.out_w; ++ow) {
        size_t o = static_cast<size_t>(ow);
        std::fill(sum.begin(), sum.end(), 0.0);
        for (int64_t iw = aw.begin[o]; iw < aw.end[o]; ++iw) {
          const double* s = row_sum.data() + iw * C;
          for (int64_t c = 0; c < C; ++c) sum[static_cast<size_t>(c)] += s[c];
        }
        int64_t divisor = ah.divisor[oh] * aw.divisor[o];
        double inv = divisor > 0 ? 1.0 / static_cast<double>(divisor) : 0.0;
        T* yp = yr + ow * C;
        for (int64_t c = 0; c < C; ++c) yp[c] = static_cast<T>(sum[static_cast<size_t>(c)] * inv);
      }
    }
  });
}

template <class T>
void avg_pool2d_backward(T* dx, const T* dy, const Pool2dGeometry& g, bool count_include_pad, const Backend&) {
  AvgAxis ah = avg_axis(g, true, count_include_pad);
  AvgAxis aw = avg_axis(g, false, count_include_pad);
  std::vector<common::OutputRange> rh = containing_outputs(g, true);
  std::vector<common::OutputRange> rw = containing_outputs(g, false);
  // An output in a containing range has a non-empty window, so its divisor is >= 1.
  auto reciprocals = [](const AvgAxis& a) {
    std::vector<double> inv;
    for (int64_t d : a.divisor) inv.push_back(d > 0 ? 1.0 / static_cast<double>(d) : 0.0);
    return inv;
  };
  std::vector<double> inv_h = reciprocals(ah), inv_w = reciprocals(aw);
  const int64_t C = g.channels, out_row = g.out_w * C;
  int64_t grain = rows_per_chunk(g.kernel_h * out_row + g.kernel_w * g.in_w * C);
  parallel_for(0, g.batch * g.in_h, grain, [&](int64_t lo, int64_t hi) {
    std::vector<double> column_sum(static_cast<size_t>(out_row));
    std::vector<double> sum(static_cast<size_t>(C));
    for (int64_t r = lo; r < hi; ++r) {
      int64_t n = r / g.in_h;
      common::OutputRange range_h = rh[static_cast<size_t>(r % g.in_h)];
      std::fill(column_sum.begin(), column_sum.end(), 0.0);
      for (int64_t oh = range_h.first; oh < range_h.last; ++oh) {
        const T* gr = dy + (n * g.out_h + oh) * out_row;
        double w = inv_h[static_cast<size_t>(oh)];
        for (int64_t j = 0; j < out_row; ++j) column_sum[static_cast<size_t>(j)] += w * gr[j];
      }
      T* dxr = dx + r * g.in_w * C;
      for (int64_t iw = 0; iw < g.in_w; ++iw) {
        common::OutputRange range_w = rw[static_cast<size_t>(iw)];
        std::fill(sum.begin(), sum.end(), 0.0);
        for (int64_t ow = range_w.first; ow < range_w.last; ++ow) {
          const double* s = column_sum.data() + ow * C;
          double w = inv_w[static_cast<size_t>(ow)];
          for (int64_t c = 0; c < C; ++c) sum[static_cast<size_t>(c)] += w * s[c];
        }
        T* d = dxr + iw * C;
        for (int64_t c = 0; c < C; ++c) d[c] = static_cast<T>(sum[static_cast<size_t>(c)]);
      }
    }
  });
}

#define STRATA_INSTANTIATE(T)                                                                                \
  template void max_pool2d<T>(T*, int32_t*, const T*, const Pool2dGeometry&, const Backend&);                \
  template void max_pool2d_backward<T>(T*, const T*, const int32_t*, const Pool2dGeometry&, const Backend&); \
  template void avg_pool2d<T>(T*, const T*, const Pool2dGeometry&, bool, const Backend&);                    \
  template void avg_pool2d_backward<T>(T*, const T*, const Pool2dGeometry&, bool, const Backend&);
STRATA_INSTANTIATE(float)
STRATA_INSTANTIATE(double)
#undef STRATA_INSTANTIATE

}  // namespace strata::kernels::cpu
