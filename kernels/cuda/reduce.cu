// Column sums of a (rows, C) array in two deterministic passes:
//   1. block (chunk, channel tile): its threads each own one channel of the tile and sum the
//      chunk's kRowsPerChunk rows in order, into partials[chunk, c];
//   2. one thread per channel sums the chunks' partials in order.
// Every sum is taken in a fixed order, so the result is identical run to run.
#include <cuda_runtime.h>

#include "kernels/cuda/launch.h"
#include "kernels/cuda/reduce.h"

namespace strata::kernels::cuda {

namespace {

constexpr int64_t kRowsPerChunk = 256;
constexpr unsigned kChannelsPerBlock = 128;

int64_t chunks_for(int64_t rows) { return rows == 0 ? 1 : (rows + kRowsPerChunk - 1) / kRowsPerChunk; }

template <class T>
__global__ void partial_sums_kernel(float* partials, const T* x, int64_t rows, int64_t channels) {
  int64_t c = blockIdx.y * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (c >= channels) return;
  int64_t begin = blockIdx.x * kRowsPerChunk;
  int64_t end = begin + kRowsPerChunk < rows ? begin + kRowsPerChunk : rows;
  float s = 0;
  for (int64_t r = begin; r < end; ++r) s += static_cast<float>(x[r * channels + c]);
  partials[blockIdx.x * channels + c] = s;
}

template <class T>
__global__ void combine_kernel(T* out, const float* partials, int64_t chunks, int64_t channels) {
  int64_t c = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (c >= channels) return;
  float s = 0;
  for (int64_t k = 0; k < chunks; ++k) s += partials[k * channels + c];
  out[c] = static_cast<T>(s);
}

}  // namespace

int64_t sum_rows_partials(int64_t rows, int64_t channels) { return chunks_for(rows) * channels; }

template <class T>
void sum_rows_cuda(T* out, const T* x, int64_t rows, int64_t channels, float* partials, const Stream& stream) {
  if (channels == 0) return;
  int64_t chunks = chunks_for(rows);
  unsigned tiles = static_cast<unsigned>((channels + kChannelsPerBlock - 1) / kChannelsPerBlock);
  if (rows == 0) {
    STRATA_CUDA_CHECK(cudaMemsetAsync(partials, 0, sizeof(float) * static_cast<size_t>(channels), stream.handle));
  } else {
    STRATA_LAUNCH((partial_sums_kernel<T>), stream, dim3(static_cast<unsigned>(chunks), tiles), kChannelsPerBlock, 0,
                  partials, x, rows, channels);
  }
  STRATA_LAUNCH((combine_kernel<T>), stream, tiles, kChannelsPerBlock, 0, out, partials, chunks, channels);
}

template void sum_rows_cuda<float>(float*, const float*, int64_t, int64_t, float*, const Stream&);

}  // namespace strata::kernels::cuda
