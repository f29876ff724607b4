// Replicate padding, as torch.nn.functional.pad(x, (left, right, top, bottom), mode="replicate"):
//   y[n, oh, ow, c] = x[n, clamp(oh - top, 0, H - 1), clamp(ow - left, 0, W - 1), c]
// Backward (a gather, one writer per input pixel): along each axis (kernels/common/pad.h), input
// index i is copied by the output range [i == 0 ? 0 : i + before, i == size - 1 ? out_size :
// i + before + 1), so
//   dx[n, ih, iw, c] = sum over oh in range_h(ih), ow in range_w(iw) of dy[n, oh, ow, c].
//   N batch, H x W input, OH x OW output, C channels (innermost, contiguous).
#include "kernels/cpu/pad.h"

#include <algorithm>

#include "kernels/common/pad.h"
#include "kernels/cpu/parallel.h"

namespace strata::kernels::cpu {

template <class T>
void pad_replicate(T* y, const T* x, int64_t batch, int64_t in_h, int64_t in_w, int64_t channels, int64_t top,
                   int64_t bottom, int64_t left, int64_t right, const Backend&) {
  const int64_t C = channels;
  const int64_t out_h = in_h + top + bottom, out_w = in_w + left + right;
  parallel_for(0, batch * out_h, rows_per_chunk(out_w * C), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      int64_t n = r / out_h, ih = common::replicate_source(r % out_h, top, in_h);
      const T* xr = x + (n * in_h + ih) * in_w * C;
      T* yr = y + r * out_w * C;
      for (int64_t ow = 0; ow < left; ++ow) std::copy(xr, xr + C, yr + ow * C);
      std::copy(xr, xr + in_w * C, yr + left * C);
      const T* last = xr + (in_w - 1) * C;
      for (int64_t ow = left + in_w; ow < out_w; ++ow) std::copy(last, last + C, yr + ow * C);
    }
  });
}

template <class T>
void pad_replicate_backward(T* dx, const T* dy, int64_t batch, int64_t in_h, int64_t in_w, int64_t channels,
                            int64_t top, int64_t bottom, int64_t left, int64_t right, const Backend&) {
  const int64_t C = channels;
  const int64_t out_h = in_h + top + bottom, out_w = in_w + left + right;
  parallel_for(0, batch * in_h, rows_per_chunk(in_w * C), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      int64_t n = r / in_h;
      common::CopyRange rh = common::replicate_copied_by(r % in_h, in_h, top, out_h);
      T* dxr = dx + r * in_w * C;
      for (int64_t iw = 0; iw < in_w; ++iw) {
        common::CopyRange rw = common::replicate_copied_by(iw, in_w, left, out_w);
        T* d = dxr + iw * C;
        std::fill(d, d + C, T(0));
        for (int64_t oh = rh.begin; oh < rh.end; ++oh) {
          const T* dyr = dy + (n * out_h + oh) * out_w * C;
          for (int64_t ow = rw.begin; ow < rw.end; ++ow) {
            const T* g = dyr + ow * C;
            for (int64_t c = 0; c < C; ++c) d[c] += g[c];
          }
        }
      }
    }
  });
}

#define STRATA_INSTANTIATE(T)                                                                                          \
  template void pad_replicate<T>(T*, const T*, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, \
                                 const Backend&);                                                                      \
  template void pad_replicate_backward<T>(T*, const T*, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, \
                                          int64_t, const Backend&);
STRATA_INSTANTIATE(float)
STRATA_INSTANTIATE(double)
#undef STRATA_INSTANTIATE

}  // namespace strata::kernels::cpu
