// Column sums of a (rows, C) array in two deterministic passes, accumulated in T:
//   1. block (chunk, channel tile): its threads each own one channel of the tile and sum the
//      chunk's kRowsPerChunk rows in order, into partials[chunk, c];
//   2. one thread per channel sums the chunks' partials in order.
// Every sum is taken in a fixed order, so the result is identical run to run. In f64 the chunks and
// their order are those of the CPU's the CPU's sum_rows (which accumulates in double): the same bits.
//
// The reductions of engine/ops/reduce.h accumulate in double, as the CPU kernels do (on sm_80/sm_90
// double adds run at half the f32 rate, which a memory-bound pass does not notice):
//   sum_all: block b sums chunk b (kAllChunk values; each thread a strided subset, then a fixed
//     tree), one block combines the chunk sums the same way;
//   sum_spatial: as sum_rows above but batched over N and in double, so the chunks (256 pixels,
//     each summed in pixel order) and their combination in chunk order are exactly the CPU's
//     the CPU's sum_rows: the same bits;
//   sum_channels: one warp per row, lanes over channels, a fixed xor-shuffle tree (every lane
//     adds the same two values, so all lanes hold the same bits).
#include <cuda_runtime.h>

#include "kernels/cuda/kernel_utils.h"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/reduce.h"

namespace strata::kernels::cuda {

namespace {

constexpr int64_t kRowsPerChunk = 256;
constexpr unsigned kChannelsPerBlock = 128;

int64_t chunks_for(int64_t rows) { return rows == 0 ? 1 : (rows + kRowsPerChunk - 1) / kRowsPerChunk; }

template <class T>
__global__ void partial_sums_kernel(T* partials, const T* x, int64_t rows, int64_t channels) {
  int64_t c = blockIdx.y * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (c >= channels) return;
  int64_t begin = blockIdx.x * kRowsPerChunk;
  int64_t end = begin + kRowsPerChunk < rows ? begin + kRowsPerChunk : rows;
  T s = 0;
  for (int64_t r = begin; r < end; ++r) s += x[r * channels + c];
  partials[blockIdx.x * channels + c] = s;
}

template <class T>
__global__ void combine_kernel(T* out, const T* partials, int64_t chunks, int64_t channels) {
  int64_t c = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (c >= channels) return;
  T s = 0;
  for (int64_t k = 0; k < chunks; ++k) s += partials[k * channels + c];
  out[c] = s;
}

constexpr unsigned kReduceThreads = 256;
constexpr int64_t kAllChunk = 32 * kReduceThreads;

int64_t all_chunks(int64_t n) { return n == 0 ? 1 : (n + kAllChunk - 1) / kAllChunk; }

// The CPU ops round the sum to T before scaling it in double.
template <class T>
__device__ inline T scaled_sum(double sum, double scale) {
  return static_cast<T>(static_cast<double>(static_cast<T>(sum)) * scale);
}

template <class T>
__global__ void sum_all_partials_kernel(double* partials, const T* x, int64_t n) {
  __shared__ double shared[kReduceThreads];
  int64_t begin = blockIdx.x * kAllChunk;
  int64_t end = begin + kAllChunk < n ? begin + kAllChunk : n;
  double s = 0;
  for (int64_t i = begin + threadIdx.x; i < end; i += kReduceThreads) s += static_cast<double>(x[i]);
  s = block_reduce(s, shared, SumOp{});
  if (threadIdx.x == 0) partials[blockIdx.x] = s;
}

template <class T>
__global__ void sum_all_finish_kernel(T* out, const double* partials, int64_t count, double scale) {
  __shared__ double shared[kReduceThreads];
  double s = 0;
  for (int64_t k = threadIdx.x; k < count; k += kReduceThreads) s += partials[k];
  s = block_reduce(s, shared, SumOp{});
  if (threadIdx.x == 0) out[0] = scaled_sum<T>(s, scale);
}

// partials[(b * chunks + chunk) * C + c] = sum of x[b, p, c] over the chunk's pixels, in order.
template <class T>
__global__ void spatial_partials_kernel(double* partials, const T* x, int64_t pixels, int64_t channels) {
  int64_t c = blockIdx.y * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (c >= channels) return;
  int64_t b = blockIdx.z;
  int64_t begin = blockIdx.x * kRowsPerChunk;
  int64_t end = begin + kRowsPerChunk < pixels ? begin + kRowsPerChunk : pixels;
  const T* xb = x + b * pixels * channels;
  double s = 0;
  for (int64_t p = begin; p < end; ++p) s += static_cast<double>(xb[p * channels + c]);
  partials[(b * gridDim.x + blockIdx.x) * channels + c] = s;
}

template <class T>
__global__ void spatial_finish_kernel(T* out, const double* partials, int64_t batch, int64_t chunks,
                                      int64_t channels, double scale) {
  STRATA_FOR_EACH_INDEX(i, batch * channels) {
    int64_t b = i / channels, c = i % channels;
    const double* pb = partials + b * chunks * channels + c;
    double s = 0;
    for (int64_t k = 0; k < chunks; ++k) s += pb[k * channels];
    out[i] = scaled_sum<T>(s, scale);
  }
}

template <class T>
__global__ void sum_channels_kernel(T* out, const T* x, int64_t rows, int64_t channels, double scale) {
  const unsigned lane = threadIdx.x % 32;
  const int64_t warps_per_block = blockDim.x / 32;
  for (int64_t r = blockIdx.x * warps_per_block + threadIdx.x / 32; r < rows; r += gridDim.x * warps_per_block) {
    const T* xr = x + r * channels;
    double s = 0;
    for (int64_t c = lane; c < channels; c += 32) s += static_cast<double>(xr[c]);
    for (int offset = 16; offset > 0; offset /= 2) s += __shfl_xor_sync(0xffffffffu, s, offset);
    if (lane == 0) out[r] = scaled_sum<T>(s, scale);
  }
}

template <class T>
__global__ void broadcast_channels_kernel(T* y, const T* g, T s, int64_t n, int64_t channels) {
  STRATA_FOR_EACH_INDEX(i, n) { y[i] = g[i / channels] * s; }
}

template <class T>
__global__ void broadcast_spatial_kernel(T* y, const T* g, T s, int64_t n, int64_t pixels, int64_t channels) {
  STRATA_FOR_EACH_INDEX(i, n) { y[i] = g[(i / (pixels * channels)) * channels + i % channels] * s; }
}

}  // namespace

template <class T>
void sum_rows(T* out, const T* x, int64_t rows, int64_t channels, const Backend& backend) {
  if (channels == 0) return;
  const Stream& stream = backend.stream;
  int64_t chunks = chunks_for(rows);
  T* partials = backend.scratch->array<T>(chunks * channels);
  unsigned tiles = static_cast<unsigned>((channels + kChannelsPerBlock - 1) / kChannelsPerBlock);
  if (rows == 0) {
    STRATA_CUDA_CHECK(cudaMemsetAsync(partials, 0, sizeof(T) * static_cast<size_t>(channels), stream.handle));
  } else {
    STRATA_LAUNCH((partial_sums_kernel<T>), stream, dim3(static_cast<unsigned>(chunks), tiles), kChannelsPerBlock, 0,
                  partials, x, rows, channels);
  }
  STRATA_LAUNCH((combine_kernel<T>), stream, tiles, kChannelsPerBlock, 0, out, partials, chunks, channels);
}

template <class T>
void sum_all(T* out, const T* x, int64_t n, double scale, const Backend& backend) {
  const Stream& stream = backend.stream;
  int64_t chunks = all_chunks(n);
  double* partials = backend.scratch->array<double>(chunks);
  STRATA_LAUNCH((sum_all_partials_kernel<T>), stream, static_cast<unsigned>(chunks), kReduceThreads, 0, partials, x,
                n);
  STRATA_LAUNCH((sum_all_finish_kernel<T>), stream, 1, kReduceThreads, 0, out, partials, chunks, scale);
}

template <class T>
void sum_spatial(T* out, const T* x, int64_t batch, int64_t pixels, int64_t channels, double scale,
                 const Backend& backend) {
  if (batch == 0 || channels == 0) return;
  const Stream& stream = backend.stream;
  int64_t chunks = chunks_for(pixels);
  double* partials = backend.scratch->array<double>(batch * chunks * channels);
  unsigned tiles = static_cast<unsigned>((channels + kChannelsPerBlock - 1) / kChannelsPerBlock);
  STRATA_LAUNCH((spatial_partials_kernel<T>), stream,
                dim3(static_cast<unsigned>(chunks), tiles, static_cast<unsigned>(batch)), kChannelsPerBlock, 0,
                partials, x, pixels, channels);
  STRATA_LAUNCH((spatial_finish_kernel<T>), stream, blocks_for(batch * channels, kReduceThreads), kReduceThreads, 0,
                out, partials, batch, chunks, channels, scale);
}

template <class T>
void sum_channels(T* out, const T* x, int64_t rows, int64_t channels, double scale, const Backend& backend) {
  if (rows == 0) return;
  STRATA_LAUNCH((sum_channels_kernel<T>), backend.stream, blocks_for(rows, kReduceThreads / 32), kReduceThreads, 0, out,
                x, rows, channels, scale);
}

template <class T>
void broadcast_channels(T* y, const T* g, T s, int64_t rows, int64_t channels, const Backend& backend) {
  int64_t n = rows * channels;
  if (n) {
    STRATA_LAUNCH((broadcast_channels_kernel<T>), backend.stream, blocks_for(n, kReduceThreads), kReduceThreads, 0, y,
                  g, s, n, channels);
  }
}

template <class T>
void broadcast_spatial(T* y, const T* g, T s, int64_t batch, int64_t pixels, int64_t channels, const Backend& backend) {
  int64_t n = batch * pixels * channels;
  if (n) {
    STRATA_LAUNCH((broadcast_spatial_kernel<T>), backend.stream, blocks_for(n, kReduceThreads), kReduceThreads, 0, y, g,
                  s, n, pixels, channels);
  }
}

#define STRATA_INSTANTIATE(T)                                                                    \
  template void sum_rows<T>(T*, const T*, int64_t, int64_t, const Backend&);                     \
  template void sum_all<T>(T*, const T*, int64_t, double, const Backend&);                       \
  template void sum_spatial<T>(T*, const T*, int64_t, int64_t, int64_t, double, const Backend&); \
  template void sum_channels<T>(T*, const T*, int64_t, int64_t, double, const Backend&);         \
  template void broadcast_channels<T>(T*, const T*, T, int64_t, int64_t, const Backend&);        \
  template void broadcast_spatial<T>(T*, const T*, T, int64_t, int64_t, int64_t, const Backend&);
STRATA_INSTANTIATE(float)
STRATA_INSTANTIATE(double)
#undef STRATA_INSTANTIATE

}  // namespace strata::kernels::cuda
