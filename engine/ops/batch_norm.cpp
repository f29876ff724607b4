// batch_norm and inplace_abn: one implementation (the argument checks, the statistics, one forward
// kernel call and one backward kernel call on the backend of x's device), the two ops differing only
// in kernels/common/batch_norm.h's NormActivation: batch norm's plain weight, identity and backward
// from x; In-place ABN's |weight| + eps, leaky ReLU and backward from y.
#include "engine/ops/batch_norm.h"

#include <cmath>
#include <cstring>

#include "engine/autograd.h"
#include "engine/device_context.h"
#include "engine/dispatch.h"
#include "engine/distributed/communicator.h"
#include "engine/ops/device_dispatch.h"
#include "engine/ops/elementwise.h"
#include "engine/profiler.h"
#include "kernels/common/batch_norm.h"
#include "kernels/cpu/batch_norm.h"
#include "kernels/cuda/batch_norm.h"

namespace strata {

namespace {

using kernels::common::NormActivation;
using kernels::common::NormSaved;
using kernels::common::NormWeight;

void check_channel_vector(const char* op, const char* role, const Tensor& t, const Tensor& x, int64_t channels) {
  check_dim(op, role, t, 1, "(C)");
  check(t.size(0) == channels, op, ": expected ", role, " of shape (C) = [", channels, "] for x ", x.describe(),
        ", got ", t.describe());
  check_same_dtype(op, x, "x", t, role);
  check_same_device(op, x, "x", t, role);
}

// x viewed as (rows, channels): rows = N*H*W (N for a rank-2 x).
struct Extent {
  int64_t rows = 0;
  int64_t channels = 0;
};

// The argument checks engine/ops/batch_norm.h and inplace_abn.h document, naming `op`.
Extent check_args(const char* op, const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                  const Tensor& running_var, bool training, double momentum, double eps, double slope) {
  check_floating(op, "x", x);
  check(x.dim() == 4 || x.dim() == 2, op, ": expected x of shape (N,H,W,C) or (N,C), got ", x.describe());
  Extent extent;
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
  check(std::isfinite(slope) && slope > 0.0, op,
        ": negative_slope must be > 0 for leaky_relu (the backward inverts the activation), got ", slope);
  return extent;
}

// Per-channel statistics that normalise x, as f64 (C) tensors on x's device: the batch mean and
// 1/sqrt(var + eps) in training (updating the running statistics in place when defined), copies of
// the running statistics' in eval (so a later in-place update cannot change what a recorded backward
// uses).
struct Statistics {
  Tensor mean;
  Tensor invstd;
};

// Synchronised batch norm's forward: the rank's batch mean and biased variance over its `rows` become
// those of every rank's rows together (returned): from the per-channel sums n mean and n (var + mean^2)
// summed over the ranks, in f64.
int64_t synchronise_statistics(distributed::Communicator& world, Tensor& mean, Tensor& var, int64_t rows) {
  const int64_t channels = mean.size(0);
  const int64_t total_rows = world.all_reduce_sum(rows);
  Tensor sums = Tensor::empty({2 * channels}, DType::f64, mean.device());
  sums.narrow_channels(0, channels).copy_(scale(mean, static_cast<double>(rows)));
  sums.narrow_channels(channels, 2 * channels).copy_(scale(add(var, square(mean)), static_cast<double>(rows)));
  world.all_reduce_sum(sums);
  const double inv_total = 1.0 / static_cast<double>(total_rows);
  Tensor global_mean = scale(sums.narrow_channels(0, channels), inv_total);
  mean.copy_(global_mean);
  var.copy_(sub(scale(sums.narrow_channels(channels, 2 * channels), inv_total), square(global_mean)));
  return total_rows;
}

// NormSync over a communicator: the kernel's sums (on x's device) summed over the ranks through a
// tensor.
struct CommunicatorNormSync final : kernels::common::NormSync {
  CommunicatorNormSync(distributed::Communicator& world_, Device device_, int64_t total_rows)
      : world(world_), device(std::move(device_)) {
    rows = total_rows;
  }
  void sum(double* sums, int64_t count) const override {
    Tensor t = Tensor::empty({count}, DType::f64, device);
    const size_t bytes = static_cast<size_t>(count) * sizeof(double);
    if (device.is_cpu()) {
      std::memcpy(t.raw_data(), sums, bytes);
    } else {
      device.context->copy_on_device(t.raw_data(), sums, bytes);
    }
    world.all_reduce_sum(t);
    if (device.is_cpu()) {
      std::memcpy(sums, t.raw_data(), bytes);
    } else {
      device.context->copy_on_device(sums, t.raw_data(), bytes);
    }
  }
  distributed::Communicator& world;
  Device device;
};

Statistics statistics(const char* op, bool abn, const Tensor& xc, Extent extent, const Tensor& running_mean,
                      const Tensor& running_var, bool training, double momentum, double eps,
                      distributed::Communicator* sync, int64_t& total_rows) {
  const int64_t channels = extent.channels;
  const Device& device = xc.device();
  Statistics stats{Tensor::empty({channels}, DType::f64, device), Tensor::empty({channels}, DType::f64, device)};
  // The running statistics are state the caller hands over to be updated (as PyTorch's buffers):
  // writable handles to the same storage.
  Tensor rm = running_mean, rv = running_var;
  Tensor var = training ? Tensor::empty({channels}, DType::f64, device) : Tensor();
  double* mean = stats.mean.data<double>();
  double* invstd = stats.invstd.data<double>();
  dispatch(op, xc, [&](auto tag, const auto& backend) {
    using T = decltype(tag);
    if (training) {
      batch_norm_stats(mean, var.data<double>(), xc.data<T>(), extent.rows, channels, backend);
      if (sync) total_rows = synchronise_statistics(*sync, stats.mean, var, extent.rows);
      if (rm.defined()) {
        batch_norm_update_running(rm.data<T>(), rv.data<T>(), mean, var.data<double>(), momentum, total_rows, channels,
                                  backend);
      }
      batch_norm_invstd(invstd, var.data<double>(), eps, channels, backend);
    } else {
      batch_norm_invstd(invstd, rv.data<T>(), eps, channels, backend);
    }
  });
  if (!training) stats.mean.copy_(running_mean);
  if (training && rm.defined()) {
    // The in-place update is not an op's output: anomaly mode checks it here. A finite input whose
    // variance overflows the statistics' dtype shows up first in running_var.
    const char* update = abn ? "inplace_abn (running statistics update)" : "batch_norm (running statistics update)";
    autograd::check_forward_anomaly(update, rm, {xc});
    autograd::check_forward_anomaly(update, rv, {xc});
  }
  return stats;
}

// t's elements, or null for an undefined tensor (an optional kernel argument).
template <class T, class TensorRef>
auto data_or_null(TensorRef& t) -> decltype(t.template data<T>()) {
  return t.defined() ? t.template data<T>() : nullptr;
}

}  // namespace

namespace detail {

Tensor batch_norm_or_inplace_abn(NormKind kind, const Tensor& x, const Tensor& weight, const Tensor& bias,
                                 const Tensor& running_mean, const Tensor& running_var, bool training, double momentum,
                                 double eps, double slope, distributed::Communicator* sync) {
  const bool abn = kind == NormKind::inplace_abn;
  const char* op = abn ? "inplace_abn" : "batch_norm";
  profiler::Scope profile_scope(op);
  const Extent extent = check_args(op, x, weight, bias, running_mean, running_var, training, momentum, eps, slope);
  const NormActivation act = abn ? NormActivation{NormWeight::abs_plus_eps, eps, slope, NormSaved::output}
                                 : NormActivation{NormWeight::plain, 0.0, 1.0, NormSaved::input};
  Tensor xc = x.contiguous();
  Tensor wc = weight.defined() ? weight.contiguous() : Tensor();
  Tensor bc = bias.defined() ? bias.contiguous() : Tensor();
  // With `sync` in training, the statistics and the backward's sums are every rank's (SyncBN).
  if (!training) sync = nullptr;
  int64_t total_rows = extent.rows;
  Statistics stats =
      statistics(op, abn, xc, extent, running_mean, running_var, training, momentum, eps, sync, total_rows);
  std::shared_ptr<CommunicatorNormSync> norm_sync =
      sync ? std::make_shared<CommunicatorNormSync>(*sync, x.device(), total_rows) : nullptr;
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  dispatch(op, x, [&](auto tag, const auto& backend) {
    using T = decltype(tag);
    batch_norm_forward(y.data<T>(), xc.data<T>(), stats.mean.data<double>(), stats.invstd.data<double>(),
                       data_or_null<T>(wc), data_or_null<T>(bc), act, extent.rows, extent.channels, backend);
  });
  {
    // Per element: the statistics pass in training (sum, square, add), then normalise, scale, shift,
    // activate.
    const double n = static_cast<double>(extent.rows * extent.channels);
    profiler::count(n * (5 + (training ? 3 : 0)),
                    n * (2 + (training ? 1 : 0)) * static_cast<double>(dtype_size(x.dtype())));
  }
  // What the backward reads. In-place ABN: y, invstd and weight/bias, never x nor the mean (the whole
  // point of the op). Batch norm: x, the mean, invstd and weight; in eval x enters only through weight's
  // gradient, so it is kept only when that is needed.
  Tensor saved = abn ? y : (training || autograd::any_requires_grad({weight})) ? xc : Tensor();
  autograd::record(op, y, {x, weight, bias},
                   [op, extent, training, act, saved = autograd::save(saved), w_saved = autograd::save(wc),
                    b_saved = abn ? autograd::save(bc) : Tensor(), mean = abn ? Tensor() : autograd::save(stats.mean),
                    invstd = autograd::save(stats.invstd), norm_sync](const Tensor& g, const std::vector<bool>& needs) {
                     profiler::Scope backward_scope(op, profiler::Phase::backward);
                     Tensor gc = g.contiguous();
                     Tensor dx = needs[0] ? Tensor::empty(gc.shape(), gc.dtype(), gc.device()) : Tensor();
                     Tensor dw = needs[1] ? Tensor::empty({extent.channels}, gc.dtype(), gc.device()) : Tensor();
                     Tensor db = needs[2] ? Tensor::empty({extent.channels}, gc.dtype(), gc.device()) : Tensor();
                     {
                       // A reduction pass over dy and the saved tensor, then the input gradient's pass.
                       const double n = static_cast<double>(extent.rows * extent.channels);
                       profiler::count(n * (4 + (needs[0] ? 6 : 0)),
                                       n * (2 + (needs[0] ? 3 : 0)) * static_cast<double>(dtype_size(gc.dtype())));
                     }
                     dispatch(op, gc, [&](auto tag, const auto& backend) {
                       using T = decltype(tag);
                       batch_norm_backward(data_or_null<T>(dx), data_or_null<T>(dw), data_or_null<T>(db), gc.data<T>(),
                                           data_or_null<T>(saved), data_or_null<double>(mean), invstd.data<double>(),
                                           data_or_null<T>(w_saved), data_or_null<T>(b_saved), act, training,
                                           extent.rows, extent.channels, backend, norm_sync.get());
                     });
                     return std::vector<Tensor>{dx, dw, db};
                   });
  return y;
}

}  // namespace detail

Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                  const Tensor& running_var, bool training, double momentum, double eps,
                  distributed::Communicator* sync) {
  return detail::batch_norm_or_inplace_abn(detail::NormKind::batch_norm, x, weight, bias, running_mean, running_var,
                                           training, momentum, eps, 1.0, sync);
}

}  // namespace strata
