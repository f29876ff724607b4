// A kernel skeleton for per-pixel math over a pixel's C contiguous channel values, where one thread
// runs the sequential per-pixel functions of kernels/common (softmax.h) on a whole row, so the math
// is the CPU's, written once. Include from .cu files only.
//
// A block handles tiles of blockDim.x consecutive pixels, one thread per pixel. When the tile's rows
// fit in shared memory (staged_rows in kernel_utils.h: C up to a few hundred channels in f32, half as
// many in f64), the block first copies them in with coalesced loads, each thread works on its row
// there, and row outputs are copied out the same way; otherwise each thread reads and writes its row
// in global memory.
//
// T (float or double) is the element type of the rows. Op is a functor with
//   __device__ void operator()(int64_t p, T* out, const T* a, const T* b) const;
// a (and b when kInputs == 2) are pixel p's input rows; out is its output row (kRowOutput), which
// when staged is the same shared-memory row as a: ops compute out[c] from a[c] in place, and every
// kernels/common function used here reads a[c] before writing out[c] and never after. Per-pixel
// outputs (a logsumexp, an argmax) are written by the op itself.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/kernel_utils.h"
#include "kernels/cuda/launch.h"

namespace strata::kernels::cuda {

constexpr unsigned kUnstagedRowThreads = 128;

template <class T, int kInputs, bool kRowOutput, class Op>
__global__ void pixel_rows_kernel(Op op, T* out, const T* a, const T* b, int64_t pixels, int64_t channels,
                                  unsigned stride, bool staged) {
  STRATA_DYNAMIC_SHARED(T, tile);
  const int64_t tile_pixels = blockDim.x;
  for (int64_t first = blockIdx.x * tile_pixels; first < pixels; first += gridDim.x * tile_pixels) {
    const unsigned rows = static_cast<unsigned>(pixels - first < tile_pixels ? pixels - first : tile_pixels);
    const int64_t p = first + threadIdx.x;
    if (staged) {
      T* tile_a = tile;
      T* tile_b = tile + blockDim.x * stride;
      const unsigned C = static_cast<unsigned>(channels);
      stage_rows(tile_a, stride, a + first * channels, rows, C);
      if constexpr (kInputs == 2) stage_rows(tile_b, stride, b + first * channels, rows, C);
      __syncthreads();
      if (threadIdx.x < rows) {
        T* row = tile_a + threadIdx.x * stride;
        op(p, row, row, kInputs == 2 ? tile_b + threadIdx.x * stride : nullptr);
      }
      __syncthreads();
      if constexpr (kRowOutput) {
        unstage_rows(out + first * channels, tile_a, stride, rows, C);
        __syncthreads();
      }
    } else if (p < pixels) {
      T* out_row = nullptr;
      const T* b_row = nullptr;
      if constexpr (kRowOutput) out_row = out + p * channels;
      if constexpr (kInputs == 2) b_row = b + p * channels;
      op(p, out_row, a + p * channels, b_row);
    }
  }
}

// Launches pixel_rows_kernel over `pixels` rows of `channels` values, staged when they fit.
template <class T, int kInputs, bool kRowOutput, class Op>
void launch_pixel_rows(const Op& op, T* out, const T* a, const T* b, int64_t pixels, int64_t channels,
                       const Stream& stream) {
  if (pixels == 0) return;
  const unsigned rows = staged_rows(channels, kInputs, sizeof(T));
  const unsigned threads = rows ? rows : kUnstagedRowThreads;
  const unsigned stride = rows ? static_cast<unsigned>(staged_stride(channels)) : 0u;
  const size_t shared = rows ? static_cast<size_t>(kInputs) * rows * stride * sizeof(T) : 0;
  STRATA_LAUNCH((pixel_rows_kernel<T, kInputs, kRowOutput, Op>), stream, dim3(blocks_for(pixels, threads)),
                dim3(threads), shared, op, out, a, b, pixels, channels, stride, rows != 0);
}

}  // namespace strata::kernels::cuda
