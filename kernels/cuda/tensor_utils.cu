// Fill and strided copy with type conversion (see tensor_utils.h). One thread per output element,
// grid-stride loops; the strided index is decomposed from the row-major output index.
#include <cuda_runtime.h>

#include "kernels/common/convert.h"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/tensor_utils.h"

namespace strata::kernels::cuda {

namespace {

constexpr unsigned kThreads = 256;

template <class T>
__global__ void fill_kernel(T* dst, T value, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    dst[i] = value;
  }
}

template <class To, class From>
__global__ void copy_strided_kernel(To* dst, const From* src, StridedView view, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t rest = i, offset = view.offset;
    for (int d = view.rank - 1; d >= 0; --d) {
      int64_t index = rest % view.shape[d];
      rest /= view.shape[d];
      offset += index * view.strides[d];
    }
    dst[i] = convert_scalar<To>(src[offset]);
  }
}

int64_t view_elements(const StridedView& view) {
  int64_t n = 1;
  for (int d = 0; d < view.rank; ++d) n *= view.shape[d];
  return n;
}

}  // namespace

template <class T>
void fill_cuda(T* dst, T value, int64_t n, const Stream& stream) {
  if (n == 0) return;
  STRATA_LAUNCH((fill_kernel<T>), stream, blocks_for(n, kThreads), kThreads, 0, dst, value, n);
}

template <class To, class From>
void copy_strided_cuda(To* dst, const From* src, const StridedView& view, const Stream& stream) {
  int64_t n = view_elements(view);
  if (n == 0) return;
  STRATA_LAUNCH((copy_strided_kernel<To, From>), stream, blocks_for(n, kThreads), kThreads, 0, dst, src, view, n);
}

#define STRATA_INSTANTIATE_FILL(T) template void fill_cuda<T>(T*, T, int64_t, const Stream&);
#define STRATA_INSTANTIATE_COPY(To, From) \
  template void copy_strided_cuda<To, From>(To*, const From*, const StridedView&, const Stream&);
#define STRATA_INSTANTIATE_FROM(To)                                                                        \
  STRATA_INSTANTIATE_COPY(To, float) STRATA_INSTANTIATE_COPY(To, double) STRATA_INSTANTIATE_COPY(To, bf16) \
  STRATA_INSTANTIATE_COPY(To, f16) STRATA_INSTANTIATE_COPY(To, uint8_t) STRATA_INSTANTIATE_COPY(To, int32_t) \
  STRATA_INSTANTIATE_COPY(To, int64_t)
STRATA_INSTANTIATE_FILL(float)
STRATA_INSTANTIATE_FILL(double)
STRATA_INSTANTIATE_FILL(bf16)
STRATA_INSTANTIATE_FILL(f16)
STRATA_INSTANTIATE_FILL(uint8_t)
STRATA_INSTANTIATE_FILL(int32_t)
STRATA_INSTANTIATE_FILL(int64_t)
STRATA_INSTANTIATE_FROM(float)
STRATA_INSTANTIATE_FROM(double)
STRATA_INSTANTIATE_FROM(bf16)
STRATA_INSTANTIATE_FROM(f16)
STRATA_INSTANTIATE_FROM(uint8_t)
STRATA_INSTANTIATE_FROM(int32_t)
STRATA_INSTANTIATE_FROM(int64_t)

}  // namespace strata::kernels::cuda
