// 2-D pooling geometry shared by the CPU and CUDA kernels (PyTorch's F.max_pool2d / F.avg_pool2d,
// ATen MaxPoolKernel.cpp / AvgPoolKernel.cpp / Pool.h). Per axis, with kernel k, stride s, pad p,
// dilation d, input size in and output size out:
//   output o taps input indices o s - p + j d, j < k (taps outside [0, in) are padding);
//   average pooling (d = 1) clips the window [o s - p, o s - p + k) to the padded input
//   [-p, in + p) for the count_include_pad divisor and to the input [0, in) for the sum and the
//   other divisor; the 2-D divisor is the product of the two axes' factors.
// Backward passes are gathers: input i receives from the outputs whose windows tap it, found here
// per axis without tables. Adaptive average pooling (F.adaptive_avg_pool2d) has windows of its own
// per output (adaptive_pool_window) and runs the average pooling kernels with Pool2dGeometry::adaptive.
#pragma once

#include <cstdint>

#include "kernels/common/host_device.h"

namespace strata::kernels::common {

// N batch, H x W input, OH x OW output, C channels, and the window parameters per axis. The caller
// validates it (sizes >= 1, pad <= kernel / 2, output sizes from PyTorch's formula).
struct Pool2dGeometry {
  int64_t batch, in_h, in_w, channels;
  int64_t out_h, out_w;
  int64_t kernel_h, kernel_w;
  int64_t stride_h, stride_w;
  int64_t pad_h, pad_w;
  int64_t dilation_h, dilation_w;
  // Average pooling only: the windows of adaptive_pool_window (kernel, stride and pad then only
  // bound the window size: kernel = the largest window, stride 1, pad 0).
  bool adaptive = false;
};

// Average pooling along one axis for output o: the window clipped to the input, [begin, end)
// (empty when begin >= end), and this axis's factor of the divisor.
struct AvgPoolWindow {
  int64_t begin;
  int64_t end;
  int64_t divisor;
};

STRATA_HOST_DEVICE inline AvgPoolWindow avg_pool_window(int64_t o, int64_t in_size, int64_t kernel, int64_t stride,
                                                        int64_t pad, bool count_include_pad) {
  int64_t start = o * stride - pad;
  int64_t stop = start + kernel < in_size + pad ? start + kernel : in_size + pad;
  int64_t begin = start > 0 ? start : 0;
  int64_t end = stop < in_size ? stop : in_size;
  int64_t inside = end > begin ? end - begin : 0;
  return {begin, end, count_include_pad ? stop - start : inside};
}

// The outputs [first, last) whose (dilation 1) windows contain input index i, i.e. the o with
// o s - p <= i < o s - p + k: o in [floor((i + p - k) / s) + 1, floor((i + p) / s)], clipped to
// [0, out). A window that contains an input index is not empty, so its divisor is >= 1.
struct OutputRange {
  int64_t first;
  int64_t last;
};

STRATA_HOST_DEVICE inline OutputRange outputs_containing(int64_t i, int64_t out_size, int64_t kernel, int64_t stride,
                                                         int64_t pad) {
  int64_t low = i + pad - kernel;  // may be negative: floor division by hand
  int64_t first = low >= 0 ? low / stride + 1 : -((-low - 1) / stride);
  int64_t last = (i + pad) / stride + 1;
  if (first < 0) first = 0;
  if (last > out_size) last = out_size;
  if (last < first) last = first;
  return {first, last};
}

// Adaptive average pooling along one axis (PyTorch's adaptive_avg_pool2d): output o averages the
// inputs [floor(o in / out), ceil((o + 1) in / out)); neighbouring windows overlap when out does not
// divide in, and repeat inputs when out > in.
STRATA_HOST_DEVICE inline AvgPoolWindow adaptive_pool_window(int64_t o, int64_t in_size, int64_t out_size) {
  int64_t begin = o * in_size / out_size;
  int64_t end = ((o + 1) * in_size + out_size - 1) / out_size;
  return {begin, end, end - begin};
}

// The outputs [first, last) whose adaptive windows contain input i: end(o) > i exactly when
// o >= floor(i out / in), begin(o) <= i exactly when o < ceil((i + 1) out / in).
STRATA_HOST_DEVICE inline OutputRange adaptive_outputs_containing(int64_t i, int64_t in_size, int64_t out_size) {
  int64_t first = i * out_size / in_size;
  int64_t last = ((i + 1) * out_size + in_size - 1) / in_size;
  if (last > out_size) last = out_size;
  return {first, last};
}

// Average pooling's window of output o along the rows (or columns) of g, adaptive or not.
STRATA_HOST_DEVICE inline AvgPoolWindow average_window(const Pool2dGeometry& g, bool rows, int64_t o,
                                                       bool count_include_pad) {
  if (g.adaptive) return rows ? adaptive_pool_window(o, g.in_h, g.out_h) : adaptive_pool_window(o, g.in_w, g.out_w);
  return rows ? avg_pool_window(o, g.in_h, g.kernel_h, g.stride_h, g.pad_h, count_include_pad)
              : avg_pool_window(o, g.in_w, g.kernel_w, g.stride_w, g.pad_w, count_include_pad);
}

// The outputs whose average pooling windows contain input i along the rows (or columns) of g.
STRATA_HOST_DEVICE inline OutputRange average_outputs_containing(const Pool2dGeometry& g, bool rows, int64_t i) {
  if (g.adaptive) {
    return rows ? adaptive_outputs_containing(i, g.in_h, g.out_h) : adaptive_outputs_containing(i, g.in_w, g.out_w);
  }
  return rows ? outputs_containing(i, g.out_h, g.kernel_h, g.stride_h, g.pad_h)
              : outputs_containing(i, g.out_w, g.kernel_w, g.stride_w, g.pad_w);
}

// Max pooling (any dilation): whether output o taps input i along one axis. The tapping outputs of
// i are o = (i + p - j d) / s for the j < k where that division is exact; walking j downwards
// visits them in increasing o.
STRATA_HOST_DEVICE inline int64_t tapping_output(int64_t i, int64_t j, int64_t out_size, int64_t stride, int64_t pad,
                                                 int64_t dilation) {
  int64_t t = i + pad - j * dilation;
  if (t < 0 || t % stride != 0) return -1;
  int64_t o = t / stride;
  return o < out_size ? o : -1;
}

}  // namespace strata::kernels::common
