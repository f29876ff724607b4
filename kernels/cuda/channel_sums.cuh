// Deterministic per-channel sums in double over an (R, C) NHWC array, for the batch-norm and In-place
// ABN kernels (the CUDA counterpart of kernels/cpu/batch_norm.cpp's channel_sums):
//
//   out[k*C + c] = scale * sum_{r < R} q_k(r, c)     for k < kSums
//
// where Quantity::operator()(r, c, acc) adds row r's kSums contributions for channel c to acc[k].
// Two passes, every sum in a fixed order, so the result does not depend on the schedule:
//   1. block (chunk, channel tile) of kTileChannels x kRowLanes threads: lane y of channel c sums
//      rows begin + y, begin + y + kRowLanes, ... of the chunk's kChunkRows rows; the kRowLanes
//      lane sums are then added in lane order into partials[(k*chunks + chunk)*C + c];
//   2. one thread per (k, c) adds the chunks' partials in chunk order and scales.
// A warp reads 32 consecutive channels of one row (coalesced for C >= 32). Accumulating in double
// matches the CPU reference, which also sums in double, to far below the f32 tolerance.
// Include from .cu files only (kernel syntax).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "kernels/cuda/check.h"
#include "kernels/cuda/launch.h"

namespace strata::kernels::cuda::channel_sums {

constexpr unsigned kTileChannels = 32;
constexpr unsigned kRowLanes = 8;
constexpr int64_t kChunkRows = 256;
constexpr unsigned kCombineThreads = 256;

inline int64_t chunks(int64_t rows) { return (rows + kChunkRows - 1) / kChunkRows; }

template <int kSums, class Quantity>
__global__ void partial_sums_kernel(double* partials, Quantity quantity, int64_t rows, int64_t channels) {
  __shared__ double lane_sums[kSums][kRowLanes][kTileChannels];
  const int64_t c = blockIdx.y * static_cast<int64_t>(kTileChannels) + threadIdx.x;
  const int64_t begin = blockIdx.x * kChunkRows;
  const int64_t end = begin + kChunkRows < rows ? begin + kChunkRows : rows;
  // Fully unrolled, so acc stays in registers.
  double acc[kSums];
#pragma unroll
  for (int k = 0; k < kSums; ++k) acc[k] = 0.0;
  if (c < channels) {
    for (int64_t r = begin + threadIdx.y; r < end; r += kRowLanes) quantity(r, c, acc);
  }
#pragma unroll
  for (int k = 0; k < kSums; ++k) lane_sums[k][threadIdx.y][threadIdx.x] = acc[k];
  __syncthreads();
  if (threadIdx.y == 0 && c < channels) {
    const int64_t chunk_count = gridDim.x;
#pragma unroll
    for (int k = 0; k < kSums; ++k) {
      double s = 0.0;
      for (unsigned lane = 0; lane < kRowLanes; ++lane) s += lane_sums[k][lane][threadIdx.x];
      partials[(k * chunk_count + blockIdx.x) * channels + c] = s;
    }
  }
}

template <int kSums>
__global__ void combine_kernel(double* out, const double* partials, int64_t chunk_count, int64_t channels,
                               double scale) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= kSums * channels) return;
  const int64_t k = i / channels, c = i % channels;
  double s = 0.0;
  for (int64_t chunk = 0; chunk < chunk_count; ++chunk) s += partials[(k * chunk_count + chunk) * channels + c];
  out[i] = s * scale;
}

// out (kSums*C doubles, device) as above; the partial sums take kSums * chunks * C doubles of the
// backend's scratch.
template <int kSums, class Quantity>
void channel_sums(double* out, int64_t rows, int64_t channels, double scale, const Quantity& quantity,
                  const Backend& backend) {
  if (channels == 0) return;
  const int64_t chunk_count = chunks(rows), tiles = (channels + kTileChannels - 1) / kTileChannels;
  if (tiles > 65535 || chunk_count > 0x7fffffff) {
    throw CudaError("channel sums on CUDA: " + std::to_string(rows) + " rows of " + std::to_string(channels) +
                    " channels exceed the launch grid (at most 65535 tiles of " + std::to_string(kTileChannels) +
                    " channels and 2^31 - 1 chunks of " + std::to_string(kChunkRows) + " rows)");
  }
  double* partials = backend.scratch->array<double>(kSums * chunk_count * channels);
  if (chunk_count > 0) {
    const dim3 grid(static_cast<unsigned>(chunk_count), static_cast<unsigned>(tiles));
    STRATA_LAUNCH((partial_sums_kernel<kSums, Quantity>), backend.stream, grid, dim3(kTileChannels, kRowLanes), 0,
                  partials, quantity, rows, channels);
  }
  STRATA_LAUNCH((combine_kernel<kSums>), backend.stream, blocks_for(kSums * channels, kCombineThreads), kCombineThreads,
                0, out, partials, chunk_count, channels, scale);
}

}  // namespace strata::kernels::cuda::channel_sums
