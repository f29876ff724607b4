#include "engine/ops/batch_norm.h"

#include <cmath>

#include "engine/autograd.h"
#include "engine/dispatch.h"
#include "engine/ops/device_dispatch.h"
#include "engine/profiler.h"
#include "kernels/common/batch_norm.h"
#include "kernels/cpu/batch_norm.h"

#if defined(STRATA_HAVE_CUDA)
#include "kernels/cuda/batch_norm.h"
#endif

namespace strata {

namespace kc = kernels::cpu;
#if defined(STRATA_HAVE_CUDA)
namespace kcu = kernels::cuda;
#endif

namespace detail {

namespace {

void check_channel_vector(const char* op, const char* role, const Tensor& t, const Tensor& x, int64_t channels) {
  check_dim(op, role, t, 1, "(C)");
  check(t.size(0) == channels, op, ": expected ", role, " of shape (C) = [", channels, "] for x ", x.describe(),
        ", got ", t.describe());
  check_same_dtype(op, x, "x", t, role);
  check_same_device(op, x, "x", t, role);
}

}  // namespace

BatchNormExtent check_batch_norm_args(const char* op, const Tensor& x, const Tensor& weight, const Tensor& bias,
                                      const Tensor& running_mean, const Tensor& running_var, bool training,
                                      double momentum, double eps) {
  check_floating(op, "x", x);
  check(x.dim() == 4 || x.dim() == 2, op, ": expected x of shape (N,H,W,C) or (N,C), got ", x.describe());
  BatchNormExtent extent;
  extent.channels = x.size(-1);
  extent.rows = extent.channels > 0 ? x.numel() / extent.channels : 0;

  check(weight.defined() == bias.defined(), op, ": weight and bias must both be given or both be undefined, got weight ",
        weight.describe(), " and bias ", bias.describe());
  if (weight.defined()) {
    check_channel_vector(op, "weight", weight, x, extent.channels);
    check_channel_vector(op, "bias", bias, x, extent.channels);
  }
  check(running_mean.defined() == running_var.defined(), op,
        ": running_mean and running_var must both be given or both be undefined, got running_mean ",
        running_mean.describe(), " and running_var ", running_var.describe());
  if (running_mean.defined()) {
    check_channel_vector(op, "running_mean", running_mean, x, extent.channels);
    check_channel_vector(op, "running_var", running_var, x, extent.channels);
    check(running_mean.is_contiguous() && running_var.is_contiguous(), op,
          ": running_mean and running_var are updated in place and must be contiguous, got running_mean ",
          running_mean.describe(), " and running_var ", running_var.describe());
  }
  check(training || running_mean.defined(), op,
        ": eval (training == false) normalises with running_mean and running_var, which are undefined");
  check(!training || extent.rows > 1, op, ": expected more than one value per channel in training (N*H*W > 1), got x ",
        x.describe());
  check(std::isfinite(eps) && eps >= 0.0, op, ": eps must be finite and >= 0, got ", eps);
  check(std::isfinite(momentum), op, ": momentum must be finite, got ", momentum);
  return extent;
}

BatchNormStatistics batch_norm_statistics(const char* op, const Tensor& x_contiguous, BatchNormExtent extent,
                                          const Tensor& running_mean, const Tensor& running_var, bool training,
                                          double momentum, double eps) {
  const int64_t channels = extent.channels;
  const Device& device = x_contiguous.device();
  BatchNormStatistics stats{Tensor::empty({channels}, DType::f64, device),
                            Tensor::empty({channels}, DType::f64, device)};
  double* mean = stats.mean.data<double>();
  double* invstd = stats.invstd.data<double>();
  // The running statistics are state the caller hands over to be updated (as PyTorch's buffers):
  // writable handles to the same storage.
  Tensor rm = running_mean, rv = running_var;
  dispatch(op, x_contiguous,
           [&](auto tag) {
             using T = decltype(tag);
             if (training) {
               Tensor var = Tensor::empty({channels}, DType::f64);
               kc::batch_norm_stats_cpu(mean, var.data<double>(), x_contiguous.data<T>(), extent.rows, channels);
               if (rm.defined()) {
                 kc::batch_norm_update_running_cpu(rm.data<T>(), rv.data<T>(), mean, var.data<double>(), momentum,
                                                   extent.rows, channels);
               }
               const double* v = var.data<double>();
               for (int64_t c = 0; c < channels; ++c) invstd[c] = kernels::common::batch_norm_invstd(v[c], eps);
             } else {
               const T* rmp = rm.data<T>();
               const T* rvp = rv.data<T>();
               for (int64_t c = 0; c < channels; ++c) {
                 mean[c] = static_cast<double>(rmp[c]);
                 invstd[c] = kernels::common::batch_norm_invstd(static_cast<double>(rvp[c]), eps);
               }
             }
           }
#if defined(STRATA_HAVE_CUDA)
           ,
           [&](auto tag, const kcu::Stream& stream) {
             using T = decltype(tag);
             if (training) {
               Tensor var = Tensor::empty({channels}, DType::f64, device);
               Tensor scratch =
                   Tensor::empty({kcu::batch_norm_scratch_cuda(extent.rows, channels)}, DType::f64, device);
               kcu::batch_norm_stats_cuda(mean, var.data<double>(), x_contiguous.data<T>(), extent.rows, channels,
                                          scratch.data<double>(), stream);
               if (rm.defined()) {
                 kcu::batch_norm_update_running_cuda(rm.data<T>(), rv.data<T>(), mean, var.data<double>(), momentum,
                                                     extent.rows, channels, stream);
               }
               kcu::batch_norm_invstd_cuda(invstd, var.data<double>(), eps, channels, stream);
             } else {
               stats.mean.copy_(rm);
               kcu::batch_norm_invstd_cuda(invstd, rv.data<T>(), eps, channels, stream);
             }
           }
#endif
  );
  return stats;
}

}  // namespace detail

Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                  const Tensor& running_var, bool training, double momentum, double eps) {
  const char* op = "batch_norm";
  profiler::Scope profile_scope(op);
  detail::BatchNormExtent extent =
      detail::check_batch_norm_args(op, x, weight, bias, running_mean, running_var, training, momentum, eps);
  Tensor xc = x.contiguous();
  Tensor wc = weight.defined() ? weight.contiguous() : Tensor();
  Tensor bc = bias.defined() ? bias.contiguous() : Tensor();
  detail::BatchNormStatistics stats =
      detail::batch_norm_statistics(op, xc, extent, running_mean, running_var, training, momentum, eps);
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  dispatch(op, x,
           [&](auto tag) {
             using T = decltype(tag);
             kc::batch_norm_forward_cpu(y.data<T>(), xc.data<T>(), stats.mean.data<double>(),
                                        stats.invstd.data<double>(), wc.defined() ? wc.data<T>() : nullptr,
                                        bc.defined() ? bc.data<T>() : nullptr, extent.rows, extent.channels);
           }
#if defined(STRATA_HAVE_CUDA)
           ,
           [&](auto tag, const kcu::Stream& stream) {
             using T = decltype(tag);
             Tensor scratch =
                 Tensor::empty({kcu::batch_norm_scratch_cuda(extent.rows, extent.channels)}, DType::f64, x.device());
             kcu::batch_norm_forward_cuda(y.data<T>(), xc.data<T>(), stats.mean.data<double>(),
                                          stats.invstd.data<double>(), wc.defined() ? wc.data<T>() : nullptr,
                                          bc.defined() ? bc.data<T>() : nullptr, extent.rows, extent.channels,
                                          scratch.data<double>(), stream);
           }
#endif
  );
  // In eval, x enters the backward only through weight's gradient: keep it only when that is needed.
  const bool keep_x = training || autograd::any_requires_grad({weight});
  autograd::record(op, y, {x, weight, bias},
                   [extent, training, x_saved = keep_x ? autograd::save(xc) : Tensor(),
                    w_saved = autograd::save(wc), mean = autograd::save(stats.mean),
                    invstd = autograd::save(stats.invstd)](const Tensor& g, const std::vector<bool>& needs) {
                     profiler::Scope backward_scope("batch_norm", profiler::Phase::backward);
                     Tensor gc = g.contiguous();
                     Tensor dx = needs[0] ? Tensor::empty(gc.shape(), gc.dtype(), gc.device()) : Tensor();
                     Tensor dw = needs[1] ? Tensor::empty({extent.channels}, gc.dtype(), gc.device()) : Tensor();
                     Tensor db = needs[2] ? Tensor::empty({extent.channels}, gc.dtype(), gc.device()) : Tensor();
                     dispatch("batch_norm backward", gc,
                              [&](auto tag) {
                                using T = decltype(tag);
                                kc::batch_norm_backward_cpu(
                                    dx.defined() ? dx.data<T>() : nullptr, dw.defined() ? dw.data<T>() : nullptr,
                                    db.defined() ? db.data<T>() : nullptr, gc.data<T>(),
                                    x_saved.defined() ? x_saved.data<T>() : nullptr, mean.data<double>(),
                                    invstd.data<double>(), w_saved.defined() ? w_saved.data<T>() : nullptr, training,
                                    extent.rows, extent.channels);
                              }
#if defined(STRATA_HAVE_CUDA)
                              ,
                              [&](auto tag, const kcu::Stream& stream) {
                                using T = decltype(tag);
                                Tensor scratch = Tensor::empty(
                                    {kcu::batch_norm_scratch_cuda(extent.rows, extent.channels)}, DType::f64,
                                    gc.device());
                                kcu::batch_norm_backward_cuda(
                                    dx.defined() ? dx.data<T>() : nullptr, dw.defined() ? dw.data<T>() : nullptr,
                                    db.defined() ? db.data<T>() : nullptr, gc.data<T>(),
                                    x_saved.defined() ? x_saved.data<T>() : nullptr, mean.data<double>(),
                                    invstd.data<double>(), w_saved.defined() ? w_saved.data<T>() : nullptr, training,
                                    extent.rows, extent.channels, scratch.data<double>(), stream);
                              }
#endif
                     );
                     return std::vector<Tensor>{dx, dw, db};
                   });
  return y;
}

}  // namespace strata
