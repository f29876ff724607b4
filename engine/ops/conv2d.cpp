// conv2d (engine/ops/conv2d.h): one body per kernel call, on the backend of x's device
// (engine/ops/device_dispatch.h). The kernels take the im2col buffer or cuDNN's workspace from the
// backend's scratch, released when their dispatch returns: each backward pass dispatches alone, so the
// data and filter gradients never hold their workspaces at once.
#include "engine/ops/conv2d.h"

#include "engine/autograd.h"
#include "engine/dispatch.h"
#include "engine/ops/device_dispatch.h"
#include "engine/profiler.h"
#include "kernels/cpu/conv2d.h"
#include "kernels/cpu/reduce.h"
#include "kernels/cuda/conv2d.h"
#include "kernels/cuda/reduce.h"

namespace strata {

int64_t conv2d_output_size(int64_t in, int64_t kernel, int64_t stride, int64_t pad, int64_t dilation) {
  int64_t span = in + 2 * pad - dilation * (kernel - 1) - 1;
  return span < 0 ? 0 : span / stride + 1;
}

namespace {

kernels::common::Conv2dShape conv_shape(const Tensor& x, const Tensor& w, const Conv2dParams& p) {
  kernels::common::Conv2dShape s{};
  s.N = x.size(0);
  s.H = x.size(1);
  s.W = x.size(2);
  s.C = x.size(3);
  s.K = w.size(0);
  s.R = w.size(1);
  s.S = w.size(2);
  s.stride_h = p.stride_h;
  s.stride_w = p.stride_w;
  s.pad_h = p.pad_h;
  s.pad_w = p.pad_w;
  s.dilation_h = p.dilation_h;
  s.dilation_w = p.dilation_w;
  s.P = conv2d_output_size(s.H, s.R, s.stride_h, s.pad_h, s.dilation_h);
  s.Q = conv2d_output_size(s.W, s.S, s.stride_w, s.pad_w, s.dilation_w);
  return s;
}

// The checks conv2d and conv2d_activation share; returns the problem's shape.
kernels::common::Conv2dShape checked_shape(const char* op, const Tensor& x, const Tensor& weight, const Tensor& bias,
                                           const Conv2dParams& params) {
  check_dim(op, "x", x, 4, "(N,H,W,C)");
  check_dim(op, "weight", weight, 4, "(K,R,S,C)");
  check_tensor_math_dtype(op, "x", x);
  check_same_dtype(op, x, "x", weight, "weight");
  check_same_device(op, x, "x", weight, "weight");
  check(weight.size(3) == x.size(3), op, ": weight ", weight.describe(), " expects ", weight.size(3),
        " input channels but x ", x.describe(), " has ", x.size(3));
  if (bias.defined()) {
    check_dim(op, "bias", bias, 1, "(K)");
    check_same_dtype(op, x, "x", bias, "bias");
    check_same_device(op, x, "x", bias, "bias");
    check(bias.size(0) == weight.size(0), op, ": bias ", bias.describe(), " does not match the ", weight.size(0),
          " output channels of weight ", weight.describe());
  }
  check(params.stride_h >= 1 && params.stride_w >= 1 && params.dilation_h >= 1 && params.dilation_w >= 1 &&
            params.pad_h >= 0 && params.pad_w >= 0,
        op, ": stride and dilation must be >= 1 and padding >= 0, got stride (", params.stride_h, ",",
        params.stride_w, "), padding (", params.pad_h, ",", params.pad_w, "), dilation (", params.dilation_h, ",",
        params.dilation_w, ")");
  kernels::common::Conv2dShape s = conv_shape(x, weight, params);
  check(s.P > 0 && s.Q > 0, op, ": kernel ", s.R, "x", s.S, " with dilation (", s.dilation_h, ",", s.dilation_w,
        ") and padding (", s.pad_h, ",", s.pad_w, ") does not fit input ", x.describe());
  return s;
}

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dParams& params) {
  constexpr const char* op = "conv2d";
  profiler::Scope profile_scope(op);
  const kernels::common::Conv2dShape s = checked_shape(op, x, weight, bias, params);

  check(x.dtype() != DType::bf16 || !bias.defined(), op, ": a bf16 convolution takes no bias yet (no bf16 bias ",
        "kernel), got bias ", bias.describe());

  Tensor xc = x.contiguous(), wc = weight.contiguous(), bc = bias.defined() ? bias.contiguous() : Tensor();
  Tensor y = Tensor::empty({s.N, s.P, s.Q, s.K}, x.dtype(), x.device());
  dispatch_tensor_math(op, x, [&](auto tag, const auto& backend) {
    using T = decltype(tag);
    conv2d_forward(y.data<T>(), xc.data<T>(), wc.data<T>(), bc.defined() ? bc.data<T>() : nullptr, s, backend);
  });
  {
    const double item = static_cast<double>(dtype_size(x.dtype()));
    const double macs = static_cast<double>(s.N * s.P * s.Q) * static_cast<double>(s.K * s.R * s.S * s.C);
    const double outputs = static_cast<double>(y.numel());
    profiler::count(2 * macs + (bc.defined() ? outputs : 0),
                    (static_cast<double>(xc.numel() + wc.numel()) + outputs + (bc.defined() ? s.K : 0)) * item);
  }
  autograd::record(op, y, {x, weight, bias},
                   [s, x_saved = autograd::save(xc), w_saved = autograd::save(wc)](
                       const Tensor& grad, const std::vector<bool>& needs) {
                     profiler::Scope backward_scope("conv2d", profiler::Phase::backward);
                     Tensor g = grad.contiguous();
                     // Data and filter gradients: one multiply-add per forward multiply-add each.
                     const double item = static_cast<double>(dtype_size(g.dtype()));
                     const double macs =
                         static_cast<double>(s.N * s.P * s.Q) * static_cast<double>(s.K * s.R * s.S * s.C);
                     const double dy = static_cast<double>(g.numel());
                     const double xs = static_cast<double>(x_saved.numel()), ws = static_cast<double>(w_saved.numel());
                     profiler::count((needs[0] ? 2 * macs : 0) + (needs[1] ? 2 * macs : 0) + (needs[2] ? dy : 0),
                                     ((needs[0] ? dy + ws + xs : 0) + (needs[1] ? dy + xs + ws : 0) +
                                      (needs[2] ? dy + static_cast<double>(s.K) : 0)) *
                                         item);
                     Tensor dx, dw, db;
                     if (needs[0]) {
                       dx = Tensor::empty(x_saved.shape(), g.dtype(), g.device());
                       dispatch_tensor_math("conv2d backward data", g, [&](auto tag, const auto& backend) {
                         using T = decltype(tag);
                         conv2d_backward_data(dx.data<T>(), g.data<T>(), w_saved.data<T>(), s, backend);
                       });
                     }
                     if (needs[1]) {
                       dw = Tensor::empty(w_saved.shape(), g.dtype(), g.device());
                       dispatch_tensor_math("conv2d backward filter", g, [&](auto tag, const auto& backend) {
                         using T = decltype(tag);
                         conv2d_backward_filter(dw.data<T>(), g.data<T>(), x_saved.data<T>(), s, backend);
                       });
                     }
                     if (needs[2]) {
                       // The bias gradient: per-channel sums of dy over the N*P*Q output pixels.
                       db = Tensor::empty({s.K}, g.dtype(), g.device());
                       dispatch("conv2d backward bias", g, [&](auto tag, const auto& backend) {
                         using T = decltype(tag);
                         sum_rows(db.data<T>(), g.data<T>(), s.N * s.P * s.Q, s.K, backend);
                       });
                     }
                     return std::vector<Tensor>{dx, dw, db};
                   });
  return y;
}

Tensor conv2d_activation(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& residual,
                         double negative_slope, const Conv2dParams& params) {
  constexpr const char* op = "conv2d_activation";
  profiler::Scope profile_scope(op);
  const kernels::common::Conv2dShape s = checked_shape(op, x, weight, bias, params);
  check(!autograd::any_requires_grad({x, weight, bias, residual}), op,
        ": records no graph, but an input requires a gradient (frozen models only; train with conv2d)");
  check(negative_slope >= 0 && negative_slope <= 1, op, ": negative_slope must be in [0, 1] (0 ReLU, 1 identity), got ",
        negative_slope);
  bool broadcast = false;
  if (residual.defined()) {
    check_same_dtype(op, x, "x", residual, "residual");
    check_same_device(op, x, "x", residual, "residual");
    broadcast = residual.shape() == Shape{s.N, 1, 1, s.K} && s.P * s.Q != 1;
    check(broadcast || residual.shape() == Shape{s.N, s.P, s.Q, s.K}, op, ": residual ", residual.describe(),
          " must be the output's (N,P,Q,K) = (", s.N, ",", s.P, ",", s.Q, ",", s.K, ") or (N,1,1,K)");
  }

  Tensor xc = x.contiguous(), wc = weight.contiguous();
  Tensor bc = bias.defined() ? bias.contiguous() : Tensor(), rc = residual.defined() ? residual.contiguous() : Tensor();
  Tensor y = Tensor::empty({s.N, s.P, s.Q, s.K}, x.dtype(), x.device());
  dispatch(op, x, [&](auto tag, const auto& backend) {
    using T = decltype(tag);
    kernels::common::ConvEpilogue<T> epilogue;
    epilogue.bias = bc.defined() ? bc.data<T>() : nullptr;
    epilogue.residual = rc.defined() ? rc.data<T>() : nullptr;
    epilogue.residual_broadcast = broadcast;
    epilogue.slope = static_cast<T>(negative_slope);
    conv2d_forward_epilogue(y.data<T>(), xc.data<T>(), wc.data<T>(), epilogue, s, backend);
  });
  {
    // The convolution's multiply-adds, then per output the bias, the residual and the activation;
    // the residual is read once more.
    const double item = static_cast<double>(dtype_size(x.dtype()));
    const double macs = static_cast<double>(s.N * s.P * s.Q) * static_cast<double>(s.K * s.R * s.S * s.C);
    const double outputs = static_cast<double>(y.numel());
    profiler::count(2 * macs + 3 * outputs, (static_cast<double>(xc.numel() + wc.numel()) + outputs +
                                             (bc.defined() ? s.K : 0) + (rc.defined() ? rc.numel() : 0)) *
                                                item);
  }
  autograd::check_forward_anomaly(op, y, {x, weight, bias, residual});
  return y;
}

}  // namespace strata
