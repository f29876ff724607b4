// Softmax, log-softmax and logsumexp over a channel range, per NHWC pixel, and their backward passes
// on CUDA: the definitions (PyTorch's torch.softmax / log_softmax / logsumexp over dim=1 of NCHW) and
// the numerically stable forms are kernels/common/softmax.h, called here exactly as the CPU kernels
// call them. Threads: one per pixel, rows staged through shared memory (pixel_rows.h), so the
// channel loops of one pixel run in the CPU's order and give its results. Rows are independent:
// every output element has one writer.
#include <cuda_runtime.h>

#include "kernels/common/softmax.h"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/pixel_rows.h"
#include "kernels/cuda/softmax.h"

namespace strata::kernels::cuda {

namespace cm = strata::kernels::common;

namespace {

template <class T>
struct SoftmaxOp {
  int64_t channels;
  __device__ void operator()(int64_t, T* y, const T* x, const T*) const { cm::softmax_pixel<T>(y, x, channels); }
};

template <class T>
struct LogSoftmaxOp {
  int64_t channels;
  __device__ void operator()(int64_t, T* y, const T* x, const T*) const { cm::log_softmax_pixel<T>(y, x, channels); }
};

// a = dy, b = y
template <class T>
struct SoftmaxBackwardOp {
  int64_t channels;
  __device__ void operator()(int64_t, T* dx, const T* dy, const T* y) const {
    cm::softmax_backward_pixel<T>(dx, dy, y, channels);
  }
};

template <class T>
struct LogSoftmaxBackwardOp {
  int64_t channels;
  __device__ void operator()(int64_t, T* dx, const T* dy, const T* y) const {
    cm::log_softmax_backward_pixel<T>(dx, dy, y, channels);
  }
};

template <class T>
struct LogsumexpOp {
  T* lse;
  int64_t begin, end;
  __device__ void operator()(int64_t p, T*, const T* x, const T*) const {
    lse[p] = cm::logsumexp_range<T>(x, begin, end);
  }
};

template <class T>
struct LogsumexpBackwardOp {
  const T* dlse;
  const T* lse;
  int64_t channels, begin, end;
  __device__ void operator()(int64_t p, T* dx, const T* x, const T*) const {
    cm::logsumexp_backward_pixel<T>(dx, dlse[p], x, lse[p], channels, begin, end);
  }
};

}  // namespace

template <class T>
void softmax(T* y, const T* x, int64_t pixels, int64_t channels, const Backend& backend) {
  launch_pixel_rows<T, 1, true>(SoftmaxOp<T>{channels}, y, x, nullptr, pixels, channels, backend.stream);
}

template <class T>
void softmax_backward(T* dx, const T* dy, const T* y, int64_t pixels, int64_t channels, const Backend& backend) {
  launch_pixel_rows<T, 2, true>(SoftmaxBackwardOp<T>{channels}, dx, dy, y, pixels, channels, backend.stream);
}

template <class T>
void log_softmax(T* y, const T* x, int64_t pixels, int64_t channels, const Backend& backend) {
  launch_pixel_rows<T, 1, true>(LogSoftmaxOp<T>{channels}, y, x, nullptr, pixels, channels, backend.stream);
}

template <class T>
void log_softmax_backward(T* dx, const T* dy, const T* y, int64_t pixels, int64_t channels, const Backend& backend) {
  launch_pixel_rows<T, 2, true>(LogSoftmaxBackwardOp<T>{channels}, dx, dy, y, pixels, channels, backend.stream);
}

template <class T>
void logsumexp(T* lse, const T* x, int64_t pixels, int64_t channels, int64_t begin, int64_t end,
               const Backend& backend) {
  launch_pixel_rows<T, 1, false>(LogsumexpOp<T>{lse, begin, end}, nullptr, x, nullptr, pixels, channels,
                                 backend.stream);
}

template <class T>
void logsumexp_backward(T* dx, const T* dlse, const T* x, const T* lse, int64_t pixels, int64_t channels, int64_t begin,
                        int64_t end, const Backend& backend) {
  launch_pixel_rows<T, 1, true>(LogsumexpBackwardOp<T>{dlse, lse, channels, begin, end}, dx, x, nullptr, pixels,
                                channels, backend.stream);
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

}  // namespace strata::kernels::cuda
