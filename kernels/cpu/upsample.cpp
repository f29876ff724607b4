// Bilinear resampling of NHWC images (PyTorch F.interpolate(mode="bilinear") semantics; the
// per-axis math is kernels/common/upsample.h):
//   y[n, oh, ow, c] = lh0 * (lw0 * x[n, h0, w0, c] + lw1 * x[n, h0, w1, c])
//                   + lh1 * (lw0 * x[n, h1, w0, c] + lw1 * x[n, h1, w1, c])
// The map is separable, y = A_h x A_w^T per channel, so the backward is dx = A_h^T dy A_w. It is
// computed as a gather: per axis, the output indices that reference input index i form one
// contiguous range (the source index is monotone in the destination index), stored with their
// weights; each input row first sums its range of dy rows into a row buffer (the h axis), then each
// input pixel sums its range of that buffer (the w axis).
//   N batch, H x W input, OH x OW output, C channels (innermost, contiguous).
#include "kernels/cpu/upsample.h"

#include <algorithm>
#include <cstddef>
#include <vector>

#include "kernels/common/upsample.h"
#include "kernels/cpu/parallel.h"

namespace strata::kernels::cpu {

namespace {

using common::BilinearTaps;

// For every input index i: the outputs first[i] .. first[i] + count(i) - 1 reference it, with
// weights weight[offset[i] .. offset[i + 1]).
template <class T>
struct AxisFootprint {
  std::vector<int64_t> first;
  std::vector<int64_t> offset;
  std::vector<T> weight;
  int64_t count(int64_t i) const { return offset[static_cast<size_t>(i) + 1] - offset[static_cast<size_t>(i)]; }
};

template <class T>
AxisFootprint<T> axis_footprint(int64_t in_size, int64_t out_size, bool align_corners) {
  std::vector<BilinearTaps<T>> taps = bilinear_axis_taps<T>(in_size, out_size, align_corners);
  AxisFootprint<T> fp;
  size_t in = static_cast<size_t>(in_size);
  fp.first.assign(in, 0);
  fp.offset.assign(in + 1, 0);
  for (const BilinearTaps<T>& t : taps) {
    ++fp.offset[static_cast<size_t>(t.i0) + 1];
    if (t.i1 != t.i0) ++fp.offset[static_cast<size_t>(t.i1) + 1];
  }
  for (size_t i = 0; i < in; ++i) fp.offset[i + 1] += fp.offset[i];
  fp.weight.assign(static_cast<size_t>(fp.offset[in]), T(0));
  std::vector<int64_t> fill(fp.offset.begin(), fp.offset.end() - 1);
  auto add = [&](int64_t i, int64_t o, T w) {
    size_t u = static_cast<size_t>(i);
    if (fill[u] == fp.offset[u]) fp.first[u] = o;
    fp.weight[static_cast<size_t>(fill[u]++)] = w;
  };
  // Outputs are visited in increasing order, so each input's list is its contiguous output range.
  for (int64_t o = 0; o < out_size; ++o) {
    const BilinearTaps<T>& t = taps[static_cast<size_t>(o)];
    if (t.i1 == t.i0) {
      add(t.i0, o, t.lambda0 + t.lambda1);
    } else {
      add(t.i0, o, t.lambda0);
      add(t.i1, o, t.lambda1);
    }
  }
  return fp;
}

}  // namespace

template <class T>
void upsample_bilinear(T* y, const T* x, int64_t batch, int64_t in_h, int64_t in_w, int64_t channels, int64_t out_h,
                       int64_t out_w, bool align_corners, const Backend&) {
  std::vector<BilinearTaps<T>> taps_h = bilinear_axis_taps<T>(in_h, out_h, align_corners);
  std::vector<BilinearTaps<T>> taps_w = bilinear_axis_taps<T>(in_w, out_w, align_corners);
  const int64_t C = channels;
  parallel_for(0, batch * out_h, rows_per_chunk(out_w * C), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      int64_t n = r / out_h;
      const BilinearTaps<T>& th = taps_h[static_cast<size_t>(r % out_h)];
      const T* row0 = x + (n * in_h + th.i0) * in_w * C;
      const T* row1 = x + (n * in_h + th.i1) * in_w * C;
      T* yr = y + r * out_w * C;
      for (int64_t ow = 0; ow < out_w; ++ow) {
        const BilinearTaps<T>& tw = taps_w[static_cast<size_t>(ow)];
        const T* x00 = row0 + tw.i0 * C;
        const T* x01 = row0 + tw.i1 * C;
        const T* x10 = row1 + tw.i0 * C;
        const T* x11 = row1 + tw.i1 * C;
        T* yp = yr + ow * C;
        for (int64_t c = 0; c < C; ++c) {
          yp[c] = th.lambda0 * (tw.lambda0 * x00[c] + tw.lambda1 * x01[c]) +
                  th.lambda1 * (tw.lambda0 * x10[c] + tw.lambda1 * x11[c]);
        }
      }
    }
  });
}

template <class T>
void upsample_bilinear_backward(T* dx, const T* dy, int64_t batch, int64_t in_h, int64_t in_w, int64_t channels,
                                int64_t out_h, int64_t out_w, bool align_corners, const Backend&) {
  AxisFootprint<T> fh = axis_footprint<T>(in_h, out_h, align_corners);
  AxisFootprint<T> fw = axis_footprint<T>(in_w, out_w, align_corners);
  const int64_t C = channels;
  const int64_t out_row = out_w * C;
  parallel_for(0, batch * in_h, rows_per_chunk(out_row), [&](int64_t lo, int64_t hi) {
    std::vector<T> buffer(static_cast<size_t>(out_row));
    for (int64_t r = lo; r < hi; ++r) {
      int64_t n = r / in_h, ih = r % in_h;
      T* dxr = dx + r * in_w * C;
      int64_t count_h = fh.count(ih);
      if (count_h == 0) {
        std::fill(dxr, dxr + in_w * C, T(0));
        continue;
      }
      // buffer[ow, c] = sum over the output rows oh touching ih of weight_h * dy[n, oh, ow, c]
      const T* wh = fh.weight.data() + fh.offset[static_cast<size_t>(ih)];
      const T* dy0 = dy + (n * out_h + fh.first[static_cast<size_t>(ih)]) * out_row;
      T* b = buffer.data();
      for (int64_t j = 0; j < out_row; ++j) b[j] = wh[0] * dy0[j];
      for (int64_t k = 1; k < count_h; ++k) {
        const T* dyk = dy0 + k * out_row;
        T w = wh[k];
        for (int64_t j = 0; j < out_row; ++j) b[j] += w * dyk[j];
      }
      for (int64_t iw = 0; iw < in_w; ++iw) {
        T* d = dxr + iw * C;
        int64_t count_w = fw.count(iw);
        if (count_w == 0) {
          std::fill(d, d + C, T(0));
          continue;
        }
        const T* ww = fw.weight.data() + fw.offset[static_cast<size_t>(iw)];
        const T* b0 = b + fw.first[static_cast<size_t>(iw)] * C;
        for (int64_t c = 0; c < C; ++c) d[c] = ww[0] * b0[c];
        for (int64_t k = 1; k < count_w; ++k) {
          const T* bk = b0 + k * C;
          T w = ww[k];
          for (int64_t c = 0; c < C; ++c) d[c] += w * bk[c];
        }
      }
    }
  });
}

template <class T>
void upsample_nearest(T* y, const T* x, int64_t batch, int64_t in_h, int64_t in_w, int64_t channels, int64_t out_h,
                      int64_t out_w, const Backend&) {
  std::vector<int64_t> src_w(static_cast<size_t>(out_w));
  for (int64_t o = 0; o < out_w; ++o) src_w[static_cast<size_t>(o)] = common::nearest_source_index(o, in_w, out_w);
  const int64_t C = channels;
  parallel_for(0, batch * out_h, rows_per_chunk(out_w * C), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const int64_t n = r / out_h, ih = common::nearest_source_index(r % out_h, in_h, out_h);
      const T* row = x + (n * in_h + ih) * in_w * C;
      T* yr = y + r * out_w * C;
      for (int64_t ow = 0; ow < out_w; ++ow) std::copy_n(row + src_w[static_cast<size_t>(ow)] * C, C, yr + ow * C);
    }
  });
}

template <class T>
void upsample_nearest_backward(T* dx, const T* dy, int64_t batch, int64_t in_h, int64_t in_w, int64_t channels,
                               int64_t out_h, int64_t out_w, const Backend&) {
  std::vector<common::BilinearRange> range_w(static_cast<size_t>(in_w));
  for (int64_t i = 0; i < in_w; ++i) range_w[static_cast<size_t>(i)] = common::nearest_footprint(i, in_w, out_w);
  const int64_t C = channels;
  parallel_for(0, batch * in_h, rows_per_chunk(in_w * C), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const int64_t n = r / in_h;
      const common::BilinearRange rh = common::nearest_footprint(r % in_h, in_h, out_h);
      T* dxr = dx + r * in_w * C;
      for (int64_t iw = 0; iw < in_w; ++iw) {
        const common::BilinearRange rw = range_w[static_cast<size_t>(iw)];
        T* d = dxr + iw * C;
        std::fill(d, d + C, T(0));
        for (int64_t oh = rh.first; oh < rh.last; ++oh) {
          const T* dyr = dy + (n * out_h + oh) * out_w * C;
          for (int64_t ow = rw.first; ow < rw.last; ++ow) {
            const T* g = dyr + ow * C;
            for (int64_t c = 0; c < C; ++c) d[c] += g[c];
          }
        }
      }
    }
  });
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

}  // namespace strata::kernels::cpu
