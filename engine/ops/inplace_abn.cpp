#include "engine/ops/inplace_abn.h"

#include <cmath>

#include "engine/autograd.h"
#include "engine/dispatch.h"
#include "engine/ops/batch_norm.h"
#include "engine/ops/device_dispatch.h"
#include "engine/profiler.h"
#include "kernels/cpu/inplace_abn.h"

#if defined(STRATA_HAVE_CUDA)
#include "kernels/cuda/inplace_abn.h"
#endif

namespace strata {

namespace kc = kernels::cpu;
#if defined(STRATA_HAVE_CUDA)
namespace kcu = kernels::cuda;
#endif

Tensor inplace_abn(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                   const Tensor& running_var, bool training, double momentum, double eps, Activation activation,
                   double negative_slope) {
  const char* op = "inplace_abn";
  profiler::Scope profile_scope(op);
  detail::BatchNormExtent extent =
      detail::check_batch_norm_args(op, x, weight, bias, running_mean, running_var, training, momentum, eps);
  check(activation == Activation::identity || (std::isfinite(negative_slope) && negative_slope > 0.0), op,
        ": negative_slope must be > 0 for leaky_relu (the backward inverts the activation), got ", negative_slope);
  // Identity is a leaky ReLU of slope 1, so the kernels handle both.
  const double slope = activation == Activation::identity ? 1.0 : negative_slope;

  Tensor xc = x.contiguous();
  Tensor wc = weight.defined() ? weight.contiguous() : Tensor();
  Tensor bc = bias.defined() ? bias.contiguous() : Tensor();
  detail::BatchNormStatistics stats =
      detail::batch_norm_statistics(op, xc, extent, running_mean, running_var, training, momentum, eps);
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  dispatch(op, x,
           [&](auto tag) {
             using T = decltype(tag);
             kc::inplace_abn_forward_cpu(y.data<T>(), xc.data<T>(), stats.mean.data<double>(),
                                         stats.invstd.data<double>(), wc.defined() ? wc.data<T>() : nullptr,
                                         bc.defined() ? bc.data<T>() : nullptr, eps, slope, extent.rows,
                                         extent.channels);
           }
#if defined(STRATA_HAVE_CUDA)
           ,
           [&](auto tag, const kcu::Stream& stream) {
             using T = decltype(tag);
             Tensor scratch =
                 Tensor::empty({kcu::inplace_abn_scratch_cuda(extent.rows, extent.channels)}, DType::f64, x.device());
             kcu::inplace_abn_forward_cuda(y.data<T>(), xc.data<T>(), stats.mean.data<double>(),
                                           stats.invstd.data<double>(), wc.defined() ? wc.data<T>() : nullptr,
                                           bc.defined() ? bc.data<T>() : nullptr, eps, slope, extent.rows,
                                           extent.channels, scratch.data<double>(), stream);
           }
#endif
  );
  // The whole point of the op: the node keeps y, invstd and weight/bias, and neither x nor the mean.
  autograd::record(op, y, {x, weight, bias},
                   [extent, training, eps, slope, y_saved = autograd::save(y), w_saved = autograd::save(wc),
                    b_saved = autograd::save(bc),
                    invstd = autograd::save(stats.invstd)](const Tensor& g, const std::vector<bool>& needs) {
                     profiler::Scope backward_scope("inplace_abn", profiler::Phase::backward);
                     Tensor gc = g.contiguous();
                     Tensor dx = needs[0] ? Tensor::empty(gc.shape(), gc.dtype(), gc.device()) : Tensor();
                     Tensor dw = needs[1] ? Tensor::empty({extent.channels}, gc.dtype(), gc.device()) : Tensor();
                     Tensor db = needs[2] ? Tensor::empty({extent.channels}, gc.dtype(), gc.device()) : Tensor();
                     dispatch("inplace_abn backward", gc,
                              [&](auto tag) {
                                using T = decltype(tag);
                                kc::inplace_abn_backward_cpu(
                                    dx.defined() ? dx.data<T>() : nullptr, dw.defined() ? dw.data<T>() : nullptr,
                                    db.defined() ? db.data<T>() : nullptr, gc.data<T>(), y_saved.data<T>(),
                                    invstd.data<double>(), w_saved.defined() ? w_saved.data<T>() : nullptr,
                                    b_saved.defined() ? b_saved.data<T>() : nullptr, eps, slope, training,
                                    extent.rows, extent.channels);
                              }
#if defined(STRATA_HAVE_CUDA)
                              ,
                              [&](auto tag, const kcu::Stream& stream) {
                                using T = decltype(tag);
                                Tensor scratch = Tensor::empty(
                                    {kcu::inplace_abn_scratch_cuda(extent.rows, extent.channels)}, DType::f64,
                                    gc.device());
                                kcu::inplace_abn_backward_cuda(
                                    dx.defined() ? dx.data<T>() : nullptr, dw.defined() ? dw.data<T>() : nullptr,
                                    db.defined() ? db.data<T>() : nullptr, gc.data<T>(), y_saved.data<T>(),
                                    invstd.data<double>(), w_saved.defined() ? w_saved.data<T>() : nullptr,
                                    b_saved.defined() ? b_saved.data<T>() : nullptr, eps, slope, training,
                                    extent.rows, extent.channels, scratch.data<double>(), stream);
                              }
#endif
                     );
                     return std::vector<Tensor>{dx, dw, db};
                   });
  return y;
}

}  // namespace strata
