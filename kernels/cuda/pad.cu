// Replicate padding on CUDA, as torch.nn.functional.pad(x, (left, right, top, bottom),
// mode="replicate"); the per-axis math is kernels/common/pad.h:
//   y[n, oh, ow, c] = x[n, clamp(oh - top, 0, H - 1), clamp(ow - left, 0, W - 1), c]
// Backward (a gather, one writer per input element, no atomics): input index i along an axis is
// copied by one output range, so dx[n, ih, iw, c] = sum over oh in range_h(ih), ow in range_w(iw) of
// dy[n, oh, ow, c], added in the CPU kernel's order (oh, then ow, ascending).
// Threads: the NHWC layout of kernel_utils.h (a pixel per row of threads, channels over lanes).
//   N batch, H x W input, OH x OW output, C channels (innermost, contiguous).
#include <cuda_runtime.h>

#include "kernels/common/pad.h"
#include "kernels/cuda/kernel_utils.h"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/pad.h"

namespace strata::kernels::cuda {

namespace cm = strata::kernels::common;

namespace {

template <class T>
__global__ void pad_replicate_kernel(T* y, const T* x, int64_t batch, int64_t in_h, int64_t in_w, int64_t channels,
                                     int64_t top, int64_t left, int64_t out_h, int64_t out_w) {
  STRATA_FOR_EACH_PIXEL(p, batch * out_h * out_w) {
    int64_t ow = p % out_w, oh = (p / out_w) % out_h, n = p / (out_w * out_h);
    int64_t ih = cm::replicate_source(oh, top, in_h), iw = cm::replicate_source(ow, left, in_w);
    const T* xp = x + ((n * in_h + ih) * in_w + iw) * channels;
    STRATA_FOR_EACH_CHANNEL(c, channels) { y[p * channels + c] = xp[c]; }
  }
}

template <class T>
__global__ void pad_replicate_backward_kernel(T* dx, const T* dy, int64_t batch, int64_t in_h, int64_t in_w,
                                              int64_t channels, int64_t top, int64_t left, int64_t out_h,
                                              int64_t out_w) {
  STRATA_FOR_EACH_PIXEL(p, batch * in_h * in_w) {
    int64_t iw = p % in_w, ih = (p / in_w) % in_h, n = p / (in_w * in_h);
    cm::CopyRange rh = cm::replicate_copied_by(ih, in_h, top, out_h);
    cm::CopyRange rw = cm::replicate_copied_by(iw, in_w, left, out_w);
    const T* dyn = dy + n * out_h * out_w * channels;
    STRATA_FOR_EACH_CHANNEL(c, channels) {
      T d = 0;
      for (int64_t oh = rh.begin; oh < rh.end; ++oh) {
        for (int64_t ow = rw.begin; ow < rw.end; ++ow) d += dyn[(oh * out_w + ow) * channels + c];
      }
      dx[p * channels + c] = d;
    }
  }
}

}  // namespace

template <class T>
void pad_replicate(T* y, const T* x, int64_t batch, int64_t in_h, int64_t in_w, int64_t channels, int64_t top,
                   int64_t bottom, int64_t left, int64_t right, const Backend& backend) {
  const int64_t out_h = in_h + top + bottom, out_w = in_w + left + right;
  const int64_t pixels = batch * out_h * out_w;
  if (pixels == 0 || channels == 0) return;
  PixelLaunch l = pixel_launch(pixels, channels);
  STRATA_LAUNCH((pad_replicate_kernel<T>), backend.stream, l.grid, l.block, 0, y, x, batch, in_h, in_w, channels, top,
                left, out_h, out_w);
}

template <class T>
void pad_replicate_backward(T* dx, const T* dy, int64_t batch, int64_t in_h, int64_t in_w, int64_t channels,
                            int64_t top, int64_t bottom, int64_t left, int64_t right, const Backend& backend) {
  const int64_t out_h = in_h + top + bottom, out_w = in_w + left + right;
  const int64_t pixels = batch * in_h * in_w;
  if (pixels == 0 || channels == 0) return;
  PixelLaunch l = pixel_launch(pixels, channels);
  STRATA_LAUNCH((pad_replicate_backward_kernel<T>), backend.stream, l.grid, l.block, 0, dx, dy, batch, in_h, in_w,
                channels, top, left, out_h, out_w);
}

#define STRATA_INSTANTIATE(T)                                                                                          \
  template void pad_replicate<T>(T*, const T*, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, \
                                 const Backend&);                                                                      \
  template void pad_replicate_backward<T>(T*, const T*, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, \
                                          int64_t, const Backend&);
STRATA_INSTANTIATE(float)
STRATA_INSTANTIATE(double)
#undef STRATA_INSTANTIATE

}  // namespace strata::kernels::cuda
