#include "engine/ops/reduce.h"

#include "engine/autograd.h"
#include "engine/dispatch.h"
#include "engine/ops/device_dispatch.h"
#include "engine/profiler.h"
#include "kernels/cpu/reduce.h"

#if defined(STRATA_HAVE_CUDA)
#include "kernels/cuda/reduce.h"
#endif

namespace strata {

namespace kc = kernels::cpu;
#if defined(STRATA_HAVE_CUDA)
namespace kcu = kernels::cuda;
#endif

namespace {

Tensor reduce_all(const char* op, const Tensor& x, bool average) {
  profiler::Scope profile_scope(op);
  check_floating(op, "x", x);
  Tensor xc = x.contiguous();
  int64_t n = x.numel();
  check(!average || n > 0, op, ": mean of an empty tensor ", x.describe());
  double factor = average ? 1.0 / static_cast<double>(n) : 1.0;
  Tensor y = Tensor::empty({}, x.dtype(), x.device());
  dispatch(op, x,
           [&](auto tag) {
             using T = decltype(tag);
             *y.data<T>() = static_cast<T>(static_cast<double>(kc::sum_all_cpu(xc.data<T>(), n)) * factor);
           }
#if defined(STRATA_HAVE_CUDA)
           ,
           [&](auto tag, const kcu::Stream& stream) {
             using T = decltype(tag);
             Tensor partials = Tensor::empty({kcu::sum_all_partials(n)}, DType::f64, x.device());
             kcu::sum_all_cuda(y.data<T>(), xc.data<T>(), n, factor, partials.data<double>(), stream);
           }
#endif
  );
  autograd::record(op, y, {x}, [op, factor, shape = x.shape()](const Tensor& g, const std::vector<bool>&) {
    profiler::Scope backward_scope(op, profiler::Phase::backward);
    Tensor dx;
    dispatch("reduce_all backward", g,
             [&](auto) { dx = Tensor::full(shape, g.item() * factor, g.dtype(), g.device()); }
#if defined(STRATA_HAVE_CUDA)
             ,
             // Reads the upstream scalar on the device: no host round trip.
             [&](auto tag, const kcu::Stream& stream) {
               using T = decltype(tag);
               Tensor gc = g.contiguous();
               dx = Tensor::empty(shape, g.dtype(), g.device());
               kcu::broadcast_channels_cuda(dx.data<T>(), gc.data<T>(), static_cast<T>(factor), int64_t{1},
                                            dx.numel(), stream);
             }
#endif
    );
    return std::vector<Tensor>{dx};
  });
  return y;
}

Tensor reduce_spatial(const char* op, const Tensor& x, bool average) {
  profiler::Scope profile_scope(op);
  check_dim(op, "x", x, 4, "(N,H,W,C)");
  check_floating(op, "x", x);
  Tensor xc = x.contiguous();
  int64_t batch = x.size(0), pixels = x.size(1) * x.size(2), channels = x.size(3);
  check(!average || pixels > 0, op, ": mean over an empty spatial extent of ", x.describe());
  double factor = average ? 1.0 / static_cast<double>(pixels) : 1.0;
  Tensor y = Tensor::empty({batch, 1, 1, channels}, x.dtype(), x.device());
  dispatch(op, x,
           [&](auto tag) {
             using T = decltype(tag);
             T* yp = y.data<T>();
             for (int64_t n = 0; n < batch; ++n) {
               kc::sum_rows_cpu(yp + n * channels, xc.data<T>() + n * pixels * channels, pixels, channels);
             }
             for (int64_t i = 0; i < batch * channels; ++i) yp[i] = static_cast<T>(yp[i] * factor);
           }
#if defined(STRATA_HAVE_CUDA)
           ,
           [&](auto tag, const kcu::Stream& stream) {
             using T = decltype(tag);
             Tensor partials =
                 Tensor::empty({kcu::sum_spatial_partials(batch, pixels, channels)}, DType::f64, x.device());
             kcu::sum_spatial_cuda(y.data<T>(), xc.data<T>(), batch, pixels, channels, factor, partials.data<double>(),
                                   stream);
           }
#endif
  );
  autograd::record(op, y, {x}, [op, factor, shape = x.shape()](const Tensor& g, const std::vector<bool>&) {
    profiler::Scope backward_scope(op, profiler::Phase::backward);
    Tensor gc = g.contiguous();
    Tensor dx = Tensor::empty(shape, g.dtype(), g.device());
    dispatch("reduce_spatial backward", g,
             [&](auto tag) {
               using T = decltype(tag);
               kc::broadcast_spatial_cpu(dx.data<T>(), gc.data<T>(), static_cast<T>(factor), shape[0],
                                         shape[1] * shape[2], shape[3]);
             }
#if defined(STRATA_HAVE_CUDA)
             ,
             [&](auto tag, const kcu::Stream& stream) {
               using T = decltype(tag);
               kcu::broadcast_spatial_cuda(dx.data<T>(), gc.data<T>(), static_cast<T>(factor), shape[0],
                                           shape[1] * shape[2], shape[3], stream);
             }
#endif
    );
    return std::vector<Tensor>{dx};
  });
  return y;
}

Tensor reduce_channels(const char* op, const Tensor& x, bool average) {
  profiler::Scope profile_scope(op);
  check_floating(op, "x", x);
  check(x.dim() >= 1, op, ": expected x with a channel dimension, got ", x.describe());
  Tensor xc = x.contiguous();
  int64_t channels = x.size(-1);
  check(!average || channels > 0, op, ": mean over zero channels of ", x.describe());
  int64_t rows = channels > 0 ? x.numel() / channels : 0;
  double factor = average ? 1.0 / static_cast<double>(channels) : 1.0;
  Shape out_shape = x.shape();
  out_shape.back() = 1;
  Tensor y = Tensor::empty(out_shape, x.dtype(), x.device());
  dispatch(op, x,
           [&](auto tag) {
             using T = decltype(tag);
             T* yp = y.data<T>();
             kc::sum_channels_cpu(yp, xc.data<T>(), rows, channels);
             for (int64_t i = 0; i < rows; ++i) yp[i] = static_cast<T>(yp[i] * factor);
           }
#if defined(STRATA_HAVE_CUDA)
           ,
           [&](auto tag, const kcu::Stream& stream) {
             using T = decltype(tag);
             kcu::sum_channels_cuda(y.data<T>(), xc.data<T>(), rows, channels, factor, stream);
           }
#endif
  );
  autograd::record(op, y, {x}, [op, factor, shape = x.shape()](const Tensor& g, const std::vector<bool>&) {
    profiler::Scope backward_scope(op, profiler::Phase::backward);
    Tensor gc = g.contiguous();
    Tensor dx = Tensor::empty(shape, g.dtype(), g.device());
    int64_t c = shape.back();
    dispatch("reduce_channels backward", g,
             [&](auto tag) {
               using T = decltype(tag);
               kc::broadcast_channels_cpu(dx.data<T>(), gc.data<T>(), static_cast<T>(factor), gc.numel(), c);
             }
#if defined(STRATA_HAVE_CUDA)
             ,
             [&](auto tag, const kcu::Stream& stream) {
               using T = decltype(tag);
               kcu::broadcast_channels_cuda(dx.data<T>(), gc.data<T>(), static_cast<T>(factor), gc.numel(), c, stream);
             }
#endif
    );
    return std::vector<Tensor>{dx};
  });
  return y;
}

}  // namespace

Tensor sum(const Tensor& x) { return reduce_all("sum", x, false); }
Tensor mean(const Tensor& x) { return reduce_all("mean", x, true); }
Tensor sum_spatial(const Tensor& x) { return reduce_spatial("sum_spatial", x, false); }
Tensor mean_spatial(const Tensor& x) { return reduce_spatial("mean_spatial", x, true); }
Tensor sum_channels(const Tensor& x) { return reduce_channels("sum_channels", x, false); }
Tensor mean_channels(const Tensor& x) { return reduce_channels("mean_channels", x, true); }

}  // namespace strata
