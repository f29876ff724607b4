// Device-side building blocks shared by the hand-written kernels (include from .cu files only):
//   - grid-stride loops over elements, and the NHWC thread layout for per-pixel work: threadIdx.x
//     walks a pixel's C contiguous channels (coalesced), threadIdx.y picks the pixel, so index
//     arithmetic and per-pixel geometry are done once per pixel and shared by its channel lanes;
//   - deterministic block reductions: a fixed tree over shared memory, so a sum has the same bits
//     whatever the scheduling (no floating-point atomics anywhere in results);
//   - staging of whole pixel rows (C values each) through shared memory, for kernels that give one
//     thread a whole pixel (the per-pixel math of kernels/common is sequential over channels): the
//     tile is loaded and stored with consecutive threads on consecutive addresses, and the rows sit
//     at an odd stride so the threads reading "their" rows hit 32 different banks (f32; an f64 access
//     is served per half-warp, whose 16 rows hit 16 different bank pairs).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/launch.h"

// for (i in [0, n)) spread over the whole grid (1-D blocks).
#define STRATA_FOR_EACH_INDEX(i, n)                                                         \
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < (n); \
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)

// The NHWC layout of pixel_launch: pixels over (blockIdx.x, threadIdx.y), channels over threadIdx.x.
#define STRATA_FOR_EACH_PIXEL(p, pixels)                                                         \
  for (int64_t p = blockIdx.x * static_cast<int64_t>(blockDim.y) + threadIdx.y; p < (pixels); \
       p += static_cast<int64_t>(gridDim.x) * blockDim.y)
#define STRATA_FOR_EACH_CHANNEL(c, channels) \
  for (int64_t c = threadIdx.x; c < (channels); c += blockDim.x)

namespace strata::kernels::cuda {

constexpr unsigned kPixelBlockThreads = 256;

struct PixelLaunch {
  dim3 grid;
  dim3 block;
};

// Lanes per pixel: the power of two >= C up to a warp, so small C does not idle most of a warp.
inline PixelLaunch pixel_launch(int64_t pixels, int64_t channels) {
  unsigned lanes = 1;
  while (lanes < 32 && static_cast<int64_t>(lanes) < channels) lanes *= 2;
  unsigned rows = kPixelBlockThreads / lanes;
  return {dim3(blocks_for(pixels, rows)), dim3(lanes, rows)};
}

struct SumOp {
  template <class V>
  __device__ V operator()(V a, V b) const {
    return a + b;
  }
};

struct MinOp {
  template <class V>
  __device__ V operator()(V a, V b) const {
    return b < a ? b : a;
  }
};

// Combines one value per thread of a 1-D block (blockDim.x a power of two) in a fixed tree; every
// thread gets the result. `shared` holds blockDim.x values. All threads of the block must call it.
template <class V, class Combine>
__device__ inline V block_reduce(V value, V* shared, Combine combine) {
  const unsigned t = threadIdx.x;
  shared[t] = value;
  __syncthreads();
  for (unsigned half = blockDim.x / 2; half > 0; half /= 2) {
    if (t < half) shared[t] = combine(shared[t], shared[t + half]);
    __syncthreads();
  }
  V result = shared[0];
  __syncthreads();
  return result;
}

// ---- pixel rows staged in shared memory -------------------------------------------------------

constexpr size_t kStagingBytes = 48 * 1024;  // the default dynamic shared memory limit

// The row stride of a staged tile: C rounded up to odd.
inline int64_t staged_stride(int64_t channels) { return channels | 1; }

// Pixels per block when `arrays` tiles of rows of `element_bytes`-byte values are staged (128, 64 or
// 32), or 0 when even 32 rows do not fit: the kernel then reads global memory directly.
inline unsigned staged_rows(int64_t channels, int arrays, size_t element_bytes) {
  for (unsigned rows : {128u, 64u, 32u}) {
    if (static_cast<size_t>(rows) * static_cast<size_t>(arrays) * static_cast<size_t>(staged_stride(channels)) *
            element_bytes <=
        kStagingBytes) {
      return rows;
    }
  }
  return 0;
}

// tile[r * stride + c] = src[r * C + c] for r < rows; all threads of the (1-D) block take part.
// Staged tiles hold at most kStagingBytes, so 32-bit indices suffice.
template <class V, class T>
__device__ inline void stage_rows(V* tile, unsigned stride, const T* src, unsigned rows, unsigned channels) {
  const unsigned n = rows * channels;
  for (unsigned j = threadIdx.x; j < n; j += blockDim.x) {
    tile[(j / channels) * stride + j % channels] = static_cast<V>(src[j]);
  }
}

// dst[r * C + c] = tile[r * stride + c] for r < rows.
template <class T, class V>
__device__ inline void unstage_rows(T* dst, const V* tile, unsigned stride, unsigned rows, unsigned channels) {
  const unsigned n = rows * channels;
  for (unsigned j = threadIdx.x; j < n; j += blockDim.x) {
    dst[j] = static_cast<T>(tile[(j / channels) * stride + j % channels]);
  }
}

}  // namespace strata::kernels::cuda
