// Per-pixel argmax over C contiguous channels on CUDA, as torch.argmax(x, dim=1) on NCHW: ties go to
// the first maximal channel and a NaN is the maximum (kernels/common/softmax.h, channel_argmax, the
// CPU's function). One thread per pixel, rows staged through shared memory (pixel_rows.h).
#include <cuda_runtime.h>

#include "kernels/common/softmax.h"
#include "kernels/cuda/argmax.h"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/pixel_rows.h"

namespace strata::kernels::cuda {

namespace {

template <class T>
struct ArgmaxOp {
  int64_t* index;
  int64_t channels;
  __device__ void operator()(int64_t p, T*, const T* x, const T*) const {
    index[p] = common::channel_argmax<T>(x, channels);
  }
};

}  // namespace

template <class T>
void argmax(int64_t* index, const T* x, int64_t pixels, int64_t channels, const Backend& backend) {
  launch_pixel_rows<T, 1, false>(ArgmaxOp<T>{index, channels}, nullptr, x, nullptr, pixels, channels, backend.stream);
}

template void argmax<float>(int64_t*, const float*, int64_t, int64_t, const Backend&);
template void argmax<double>(int64_t*, const double*, int64_t, int64_t, const Backend&);

}  // namespace strata::kernels::cuda
