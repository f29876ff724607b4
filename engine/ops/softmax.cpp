#include "engine/ops/softmax.h"

#include "engine/autograd.h"
#include "engine/dispatch.h"
#include "engine/ops/device_dispatch.h"
#include "engine/profiler.h"
#include "kernels/cpu/softmax.h"

#if defined(STRATA_HAVE_CUDA)
#include "kernels/cuda/softmax.h"
#endif

namespace strata {

namespace kc = kernels::cpu;
#if defined(STRATA_HAVE_CUDA)
namespace kcu = kernels::cuda;
#endif

namespace {

// Validates x: (..., C) with C >= 1 and returns C.
int64_t check_channels(const char* op, const Tensor& x) {
  check_floating(op, "x", x);
  check(x.dim() >= 1 && x.size(-1) >= 1, op, ": expected x of shape (..., C) with C >= 1 channels, got ", x.describe());
  return x.size(-1);
}

// softmax (kLog false) and log_softmax (kLog true): same shapes, and both backward passes read only
// the output.
template <bool kLog>
Tensor normalize(const char* op, const Tensor& x) {
  profiler::Scope profile_scope(op);
  int64_t channels = check_channels(op, x);
  int64_t pixels = x.numel() / channels;
  Tensor xc = x.contiguous();
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  dispatch(op, x,
           [&](auto tag) {
             using T = decltype(tag);
             if constexpr (kLog) {
               kc::log_softmax_cpu(y.data<T>(), xc.data<T>(), pixels, channels);
             } else {
               kc::softmax_cpu(y.data<T>(), xc.data<T>(), pixels, channels);
             }
           }
#if defined(STRATA_HAVE_CUDA)
           ,
           [&](auto tag, const kcu::Stream& stream) {
             using T = decltype(tag);
             if constexpr (kLog) {
               kcu::log_softmax_cuda(y.data<T>(), xc.data<T>(), pixels, channels, stream);
             } else {
               kcu::softmax_cuda(y.data<T>(), xc.data<T>(), pixels, channels, stream);
             }
           }
#endif
  );
  // Saves the output, not the input: the input can be freed as soon as its producer is done.
  autograd::record(op, y, {x}, [op, pixels, channels, y_saved = autograd::save(y)](const Tensor& g,
                                                                                   const std::vector<bool>&) {
    profiler::Scope backward_scope(op, profiler::Phase::backward);
    Tensor gc = g.contiguous();
    Tensor dx = Tensor::empty(y_saved.shape(), y_saved.dtype(), y_saved.device());
    dispatch(op, y_saved,
             [&](auto tag) {
               using T = decltype(tag);
               if constexpr (kLog) {
                 kc::log_softmax_backward_cpu(dx.data<T>(), gc.data<T>(), y_saved.data<T>(), pixels, channels);
               } else {
                 kc::softmax_backward_cpu(dx.data<T>(), gc.data<T>(), y_saved.data<T>(), pixels, channels);
               }
             }
#if defined(STRATA_HAVE_CUDA)
             ,
             [&](auto tag, const kcu::Stream& stream) {
               using T = decltype(tag);
               if constexpr (kLog) {
                 kcu::log_softmax_backward_cuda(dx.data<T>(), gc.data<T>(), y_saved.data<T>(), pixels, channels,
                                                stream);
               } else {
                 kcu::softmax_backward_cuda(dx.data<T>(), gc.data<T>(), y_saved.data<T>(), pixels, channels, stream);
               }
             }
#endif
    );
    return std::vector<Tensor>{dx};
  });
  return y;
}

}  // namespace

Tensor softmax(const Tensor& x) { return normalize<false>("softmax", x); }

Tensor log_softmax(const Tensor& x) { return normalize<true>("log_softmax", x); }

Tensor logsumexp(const Tensor& x, int64_t begin, int64_t end) {
  const char* op = "logsumexp";
  profiler::Scope profile_scope(op);
  check_floating(op, "x", x);
  check(x.dim() >= 1, op, ": expected x of shape (..., C), got ", x.describe());
  int64_t channels = x.size(-1);
  check(0 <= begin && begin < end && end <= channels, op, ": channel range [", begin, ", ", end, ") of x ",
        x.describe(), " is invalid; expected 0 <= begin < end <= C = ", channels);
  int64_t pixels = x.numel() / channels;
  Tensor xc = x.contiguous();
  Shape out_shape = x.shape();
  out_shape.back() = 1;
  Tensor y = Tensor::empty(out_shape, x.dtype(), x.device());
  dispatch(op, x,
           [&](auto tag) {
             using T = decltype(tag);
             kc::logsumexp_cpu(y.data<T>(), xc.data<T>(), pixels, channels, begin, end);
           }
#if defined(STRATA_HAVE_CUDA)
           ,
           [&](auto tag, const kcu::Stream& stream) {
             using T = decltype(tag);
             kcu::logsumexp_cuda(y.data<T>(), xc.data<T>(), pixels, channels, begin, end, stream);
           }
#endif
  );
  autograd::record(op, y, {x},
                   [begin, end, pixels, channels, x_saved = autograd::save(xc), y_saved = autograd::save(y)](
                       const Tensor& g, const std::vector<bool>&) {
                     profiler::Scope backward_scope("logsumexp", profiler::Phase::backward);
                     Tensor gc = g.contiguous();
                     Tensor dx = Tensor::empty(x_saved.shape(), x_saved.dtype(), x_saved.device());
                     dispatch("logsumexp backward", x_saved,
                              [&](auto tag) {
                                using T = decltype(tag);
                                kc::logsumexp_backward_cpu(dx.data<T>(), gc.data<T>(), x_saved.data<T>(),
                                                           y_saved.data<T>(), pixels, channels, begin, end);
                              }
#if defined(STRATA_HAVE_CUDA)
                              ,
                              [&](auto tag, const kcu::Stream& stream) {
                                using T = decltype(tag);
                                kcu::logsumexp_backward_cuda(dx.data<T>(), gc.data<T>(), x_saved.data<T>(),
                                                             y_saved.data<T>(), pixels, channels, begin, end, stream);
                              }
#endif
                     );
                     return std::vector<Tensor>{dx};
                   });
  return y;
}

}  // namespace strata
