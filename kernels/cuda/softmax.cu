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

struct SoftmaxOp {
  int64_t channels;
  __device__ void operator()(int64_t, float* y, const float* x, const float*) const {
    cm::softmax_pixel<float>(y, x, channels);
  }
};

struct LogSoftmaxOp {
  int64_t channels;
  __device__ void operator()(int64_t, float* y, const float* x, const float*) const {
    cm::log_softmax_pixel<float>(y, x, channels);
  }
};

// a = dy, b = y
struct SoftmaxBackwardOp {
  int64_t channels;
  __device__ void operator()(int64_t, float* dx, const float* dy, const float* y) const {
    cm::softmax_backward_pixel<float>(dx, dy, y, channels);
  }
};

struct LogSoftmaxBackwardOp {
  int64_t channels;
  __device__ void operator()(int64_t, float* dx, const float* dy, const float* y) const {
    cm::log_softmax_backward_pixel<float>(dx, dy, y, channels);
  }
};

struct LogsumexpOp {
  float* lse;
  int64_t begin, end;
  __device__ void operator()(int64_t p, float*, const float* x, const float*) const {
    lse[p] = cm::logsumexp_range<float>(x, begin, end);
  }
};

struct LogsumexpBackwardOp {
  const float* dlse;
  const float* lse;
  int64_t channels, begin, end;
  __device__ void operator()(int64_t p, float* dx, const float* x, const float*) const {
    cm::logsumexp_backward_pixel<float>(dx, dlse[p], x, lse[p], channels, begin, end);
  }
};

}  // namespace

template <class T>
void softmax_cuda(T* y, const T* x, int64_t pixels, int64_t channels, const Stream& stream) {
  launch_pixel_rows<SoftmaxOp, 1, true>(SoftmaxOp{channels}, y, x, nullptr, pixels, channels, stream);
}

template <class T>
void softmax_backward_cuda(T* dx, const T* dy, const T* y, int64_t pixels, int64_t channels, const Stream& stream) {
  launch_pixel_rows<SoftmaxBackwardOp, 2, true>(SoftmaxBackwardOp{channels}, dx, dy, y, pixels, channels, stream);
}

template <class T>
void log_softmax_cuda(T* y, const T* x, int64_t pixels, int64_t channels, const Stream& stream) {
  launch_pixel_rows<LogSoftmaxOp, 1, true>(LogSoftmaxOp{channels}, y, x, nullptr, pixels, channels, stream);
}

template <class T>
void log_softmax_backward_cuda(T* dx, const T* dy, const T* y, int64_t pixels, int64_t channels,
                               const Stream& stream) {
  launch_pixel_rows<LogSoftmaxBackwardOp, 2, true>(LogSoftmaxBackwardOp{channels}, dx, dy, y, pixels, channels,
                                                   stream);
}

template <class T>
void logsumexp_cuda(T* lse, const T* x, int64_t pixels, int64_t channels, int64_t begin, int64_t end,
                    const Stream& stream) {
  launch_pixel_rows<LogsumexpOp, 1, false>(LogsumexpOp{lse, begin, end}, nullptr, x, nullptr, pixels, channels,
                                           stream);
}

template <class T>
void logsumexp_backward_cuda(T* dx, const T* dlse, const T* x, const T* lse, int64_t pixels, int64_t channels,
                             int64_t begin, int64_t end, const Stream& stream) {
  launch_pixel_rows<LogsumexpBackwardOp, 1, true>(LogsumexpBackwardOp{dlse, lse, channels, begin, end}, dx, x,
                                                  nullptr, pixels, channels, stream);
}

template void softmax_cuda<float>(float*, const float*, int64_t, int64_t, const Stream&);
template void softmax_backward_cuda<float>(float*, const float*, const float*, int64_t, int64_t, const Stream&);
template void log_softmax_cuda<float>(float*, const float*, int64_t, int64_t, const Stream&);
template void log_softmax_backward_cuda<float>(float*, const float*, const float*, int64_t, int64_t, const Stream&);
template void logsumexp_cuda<float>(float*, const float*, int64_t, int64_t, int64_t, int64_t, const Stream&);
template void logsumexp_backward_cuda<float>(float*, const float*, const float*, const float*, int64_t, int64_t,
                                             int64_t, int64_t, const Stream&);

}  // namespace strata::kernels::cuda
