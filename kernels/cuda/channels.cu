// Concatenation along the last (channel) dimension, as torch.cat(dim=1) on NCHW, and its inverse,
// the channel slice x[:, begin:end], on CUDA. Pure copies of column blocks between (rows, C) arrays:
//   dst[r, dst_offset + c] = src[r, src_offset + c]  for c < width
// one thread per copied element (consecutive threads on consecutive channels, so both sides are
// coalesced); concat runs it once per input. The slice's backward writes every element of dx once
// (the slice or zero). Each output element has exactly one writer.
#include <cuda_runtime.h>

#include "kernels/cuda/channels.h"
#include "kernels/cuda/kernel_utils.h"
#include "kernels/cuda/launch.h"

namespace strata::kernels::cuda {

namespace {

constexpr unsigned kThreads = 256;

template <class T>
__global__ void copy_columns_kernel(T* dst, int64_t dst_channels, int64_t dst_offset, const T* src,
                                    int64_t src_channels, int64_t src_offset, int64_t rows, int64_t width) {
  STRATA_FOR_EACH_INDEX(i, rows * width) {
    int64_t r = i / width, c = i % width;
    dst[r * dst_channels + dst_offset + c] = src[r * src_channels + src_offset + c];
  }
}

template <class T>
__global__ void slice_backward_kernel(T* dx, const T* dy, int64_t rows, int64_t channels, int64_t begin,
                                      int64_t end) {
  const int64_t width = end - begin;
  STRATA_FOR_EACH_INDEX(i, rows * channels) {
    int64_t r = i / channels, c = i % channels;
    dx[i] = c >= begin && c < end ? dy[r * width + c - begin] : T(0);
  }
}

template <class T>
void copy_columns(T* dst, int64_t dst_channels, int64_t dst_offset, const T* src, int64_t src_channels,
                  int64_t src_offset, int64_t rows, int64_t width, const Stream& stream) {
  int64_t n = rows * width;
  if (n == 0) return;
  STRATA_LAUNCH((copy_columns_kernel<T>), stream, blocks_for(n, kThreads), kThreads, 0, dst, dst_channels, dst_offset,
                src, src_channels, src_offset, rows, width);
}

}  // namespace

template <class T>
void concat_channels(T* y, const T* const* xs, const int64_t* channels, int64_t count, int64_t rows,
                     const Backend& backend) {
  int64_t total = 0;
  for (int64_t i = 0; i < count; ++i) total += channels[i];
  int64_t offset = 0;
  for (int64_t i = 0; i < count; ++i) {
    copy_columns(y, total, offset, xs[i], channels[i], int64_t{0}, rows, channels[i], backend.stream);
    offset += channels[i];
  }
}

template <class T>
void slice_channels(T* y, const T* x, int64_t rows, int64_t channels, int64_t begin, int64_t end,
                    const Backend& backend) {
  copy_columns(y, end - begin, int64_t{0}, x, channels, begin, rows, end - begin, backend.stream);
}

template <class T>
void slice_channels_backward(T* dx, const T* dy, int64_t rows, int64_t channels, int64_t begin, int64_t end,
                             const Backend& backend) {
  int64_t n = rows * channels;
  if (n == 0) return;
  STRATA_LAUNCH((slice_backward_kernel<T>), backend.stream, blocks_for(n, kThreads), kThreads, 0, dx, dy, rows,
                channels, begin, end);
}

#define STRATA_INSTANTIATE(T)                                                                              \
  template void concat_channels<T>(T*, const T* const*, const int64_t*, int64_t, int64_t, const Backend&); \
  template void slice_channels<T>(T*, const T*, int64_t, int64_t, int64_t, int64_t, const Backend&);       \
  template void slice_channels_backward<T>(T*, const T*, int64_t, int64_t, int64_t, int64_t, const Backend&);
STRATA_INSTANTIATE(float)
STRATA_INSTANTIATE(double)
#undef STRATA_INSTANTIATE

}  // namespace strata::kernels::cuda
