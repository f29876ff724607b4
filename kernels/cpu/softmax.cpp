// Softmax, log-softmax and logsumexp over a channel range, per NHWC pixel, and their backward
// passes: the definitions (PyTorch's torch.softmax / log_softmax / logsumexp over dim=1 of NCHW)
// and the numerically stable forms are in kernels/common/softmax.h. Rows are independent, so
// chunks of pixels run on OpenMP threads and the results do not depend on the thread count.
#include "kernels/cpu/softmax.h"

#include "kernels/common/softmax.h"
#include "kernels/cpu/parallel.h"

namespace strata::kernels::cpu {

namespace cm = strata::kernels::common;

namespace {

// Pixels per chunk: about 16K channel values, since every value costs an exp.
int64_t pixel_grain(int64_t channels) { return (int64_t{1} << 14) / channels + 1; }

}  // namespace

template <class T>
void softmax(T* y, const T* x, int64_t pixels, int64_t channels, const Backend&) {
  parallel_for(0, pixels, pixel_grain(channels), [&](int64_t lo, int64_t hi) {
    for (int64_t p = lo; p < hi; ++p) cm::softmax_pixel<T>(y + p * channels, x + p * channels, channels);
  });
}

template <class T>
void softmax_backward(T* dx, const T* dy, const T* y, int64_t pixels, int64_t channels, const Backend&) {
  parallel_for(0, pixels, pixel_grain(channels), [&](int64_t lo, int64_t hi) {
    for (int64_t p = lo; p < hi; ++p) {
      int64_t o = p * channels;
      cm::softmax_backward_pixel<T>(dx + o, dy + o, y + o, channels);
    }
  });
}

template <class T>
void log_softmax(T* y, const T* x, int64_t pixels, int64_t channels, const Backend&) {
  parallel_for(0, pixels, pixel_grain(channels), [&](int64_t lo, int64_t hi) {
    for (int64_t p = lo; p < hi; ++p) cm::log_softmax_pixel<T>(y + p * channels, x + p * channels, channels);
  });
}

template <class T>
void log_softmax_backward(T* dx, const T* dy, const T* y, int64_t pixels, int64_t channels, const Backend&) {
  parallel_for(0, pixels, pixel_grain(channels), [&](int64_t lo, int64_t hi) {
    for (int64_t p = lo; p < hi; ++p) {
      int64_t o = p * channels;
      cm::log_softmax_backward_pixel<T>(dx + o, dy + o, y + o, channels);
    }
  });
}

template <class T>
void logsumexp(T* lse, const T* x, int64_t pixels, int64_t channels, int64_t begin, int64_t end, const Backend&) {
  parallel_for(0, pixels, pixel_grain(end - begin), [&](int64_t lo, int64_t hi) {
    for (int64_t p = lo; p < hi; ++p) lse[p] = cm::logsumexp_range<T>(x + p * channels, begin, end);
  });
}

template <class T>
void logsumexp_backward(T* dx, const T* dlse, const T* x, const T* lse, int64_t pixels, int64_t channels, int64_t begin,
                        int64_t end, const Backend&) {
  parallel_for(0, pixels, pixel_grain(channels), [&](int64_t lo, int64_t hi) {
    for (int64_t p = lo; p < hi; ++p) {
      int64_t o = p * channels;
      cm::logsumexp_backward_pixel<T>(dx + o, dlse[p], x + o, lse[p], channels, begin, end);
    }
  });
}

#define STRATA_INSTANTIATE(T)                                                                               \
  template void softmax<T>(T*, const T*, int64_t, int64_t, const Backend&);                                 \
  template void softmax_backward<T>(T*, const T*, const T*, int64_t, int64_t, const Backend&);              \
  template void log_softmax<T>(T*, const T*, int64_t, int64_t, const Backend&);                             \
  template void log_softmax_backward<T>(T*, const T*, const T*, int64_t, int64_t, const Backend&);          \
  template void logsumexp<T>(T*, const T*, int64_t, int64_t, int64_t, int64_t, const Backend&);             \
  template void logsumexp_backward<T>(T*, const T*, const T*, const T*, int64_t, int64_t, int64_t, int64_t, \
                                      const Backend&);
STRATA_INSTANTIATE(float)
STRATA_INSTANTIATE(double)
#undef STRATA_INSTANTIATE

}  // namespace strata::kernels::cpu
