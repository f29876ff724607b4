// Per-pixel argmax over C contiguous channels, as torch.argmax(x, dim=1) on NCHW: ties go to the
// first maximal channel and a NaN is the maximum (kernels/common/softmax.h, channel_argmax). This is
// how a prediction map is read from NHWC logits.
#include "kernels/cpu/argmax.h"

#include "kernels/common/softmax.h"
#include "kernels/cpu/parallel.h"

namespace strata::kernels::cpu {

template <class T>
void argmax(int64_t* index, const T* x, int64_t pixels, int64_t channels, const Backend&) {
  parallel_for(0, pixels, kElementwiseGrain / channels + 1, [&](int64_t lo, int64_t hi) {
    for (int64_t p = lo; p < hi; ++p) index[p] = common::channel_argmax<T>(x + p * channels, channels);
  });
}

template void argmax<float>(int64_t*, const float*, int64_t, int64_t, const Backend&);
template void argmax<double>(int64_t*, const double*, int64_t, int64_t, const Backend&);

}  // namespace strata::kernels::cpu
