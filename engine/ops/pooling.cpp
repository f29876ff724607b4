#include "engine/ops/pooling.h"

#include <algorithm>
#include <limits>

#include "engine/autograd.h"
#include "engine/dispatch.h"
#include "engine/ops/device_dispatch.h"
#include "engine/ops/reduce.h"
#include "engine/profiler.h"
#include "kernels/cpu/pooling.h"
#include "kernels/cuda/pooling.h"

namespace strata {

namespace {

// Floor division (PyTorch's div_rtn): the numerator can be negative for a too-large kernel.
int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

// PyTorch's pooling_output_shape, including its ceil-mode rule that the last window must start
// inside the input or the left padding.
int64_t pooled_size(int64_t in, int64_t kernel, int64_t stride, int64_t pad, int64_t dilation, bool ceil_mode) {
  int64_t out = floor_div(in + 2 * pad - dilation * (kernel - 1) - 1 + (ceil_mode ? stride - 1 : 0), stride) + 1;
  if (ceil_mode && (out - 1) * stride >= in + pad) --out;
  return out;
}

kernels::common::Pool2dGeometry pool_geometry(const char* op, const Tensor& x, const Pool2dParams& p, bool average) {
  check_dim(op, "x", x, 4, "(N,H,W,C)");
  check_floating(op, "x", x);
  check(x.size(1) >= 1 && x.size(2) >= 1, op, ": expected x with at least one pixel, got ", x.describe());
  check(p.kernel_h >= 1 && p.kernel_w >= 1, op, ": kernel must be >= 1, got ", p.kernel_h, "x", p.kernel_w);
  check(p.stride_h >= 1 && p.stride_w >= 1, op, ": stride must be >= 1, got ", p.stride_h, "x", p.stride_w);
  check(p.dilation_h >= 1 && p.dilation_w >= 1, op, ": dilation must be >= 1, got ", p.dilation_h, "x", p.dilation_w);
  check(!average || (p.dilation_h == 1 && p.dilation_w == 1), op, ": dilation must be 1, got ", p.dilation_h, "x",
        p.dilation_w);
  check(p.pad_h >= 0 && p.pad_w >= 0 && p.pad_h <= p.kernel_h / 2 && p.pad_w <= p.kernel_w / 2, op,
        ": pad must be between 0 and half the kernel size, got pad ", p.pad_h, "x", p.pad_w, " for kernel ", p.kernel_h,
        "x", p.kernel_w);
  kernels::common::Pool2dGeometry g{};
  g.batch = x.size(0);
  g.in_h = x.size(1);
  g.in_w = x.size(2);
  g.channels = x.size(3);
  g.kernel_h = p.kernel_h;
  g.kernel_w = p.kernel_w;
  g.stride_h = p.stride_h;
  g.stride_w = p.stride_w;
  g.pad_h = p.pad_h;
  g.pad_w = p.pad_w;
  g.dilation_h = p.dilation_h;
  g.dilation_w = p.dilation_w;
  g.out_h = pooled_size(g.in_h, p.kernel_h, p.stride_h, p.pad_h, p.dilation_h, p.ceil_mode);
  g.out_w = pooled_size(g.in_w, p.kernel_w, p.stride_w, p.pad_w, p.dilation_w, p.ceil_mode);
  check(g.out_h >= 1 && g.out_w >= 1, op, ": output size ", g.out_h, "x", g.out_w, " is too small for x ", x.describe(),
        " with kernel ", p.kernel_h, "x", p.kernel_w, ", stride ", p.stride_h, "x", p.stride_w, ", pad ", p.pad_h, "x",
        p.pad_w, ", dilation ", p.dilation_h, "x", p.dilation_w);
  check(g.in_h * g.in_w <= std::numeric_limits<int32_t>::max(), op, ": H * W of x ", x.describe(),
        " exceeds the int32 argmax index range");
  return g;
}

// One operation per window tap and output; x read and y written once, plus `index_bytes` per output
// (max pooling's argmax).
void count_pooling(const kernels::common::Pool2dGeometry& g, const Tensor& x, size_t index_bytes) {
  const double outputs = static_cast<double>(g.batch * g.out_h * g.out_w * g.channels);
  profiler::count(outputs * static_cast<double>(g.kernel_h * g.kernel_w),
                  (static_cast<double>(x.numel()) + outputs) * static_cast<double>(dtype_size(x.dtype())) +
                      outputs * static_cast<double>(index_bytes));
}

}  // namespace

Tensor max_pool2d(const Tensor& x, const Pool2dParams& params) {
  profiler::Scope profile_scope("max_pool2d");
  kernels::common::Pool2dGeometry g = pool_geometry("max_pool2d", x, params, false);
  Tensor xc = x.contiguous();
  Tensor y = Tensor::empty({g.batch, g.out_h, g.out_w, g.channels}, x.dtype(), x.device());
  bool needs_grad = autograd::any_requires_grad({x});
  Tensor argmax = needs_grad ? Tensor::empty(y.shape(), DType::i32, x.device()) : Tensor();
  int32_t* argmax_data = needs_grad ? argmax.data<int32_t>() : nullptr;
  dispatch("max_pool2d", x, [&](auto tag, const auto& backend) {
    using T = decltype(tag);
    max_pool2d(y.data<T>(), argmax_data, xc.data<T>(), g, backend);
  });
  count_pooling(g, xc, needs_grad ? sizeof(int32_t) : 0);
  if (!needs_grad) return y;
  autograd::record("max_pool2d", y, {x},
                   [g, argmax_saved = autograd::save(argmax)](const Tensor& grad, const std::vector<bool>&) {
                     profiler::Scope backward_scope("max_pool2d", profiler::Phase::backward);
                     Tensor gc = grad.contiguous();
                     Tensor dx = Tensor::empty({g.batch, g.in_h, g.in_w, g.channels}, gc.dtype(), gc.device());
                     dispatch("max_pool2d backward", gc, [&](auto tag, const auto& backend) {
                       using T = decltype(tag);
                       max_pool2d_backward(dx.data<T>(), gc.data<T>(), argmax_saved.data<int32_t>(), g, backend);
                     });
                     // dx zeroed, then each dy element added at its argmax.
                     const double outputs = static_cast<double>(gc.numel()), inputs = static_cast<double>(dx.numel());
                     profiler::count(outputs, (inputs + 2 * outputs) * static_cast<double>(dtype_size(gc.dtype())) +
                                                  outputs * sizeof(int32_t));
                     return std::vector<Tensor>{dx};
                   });
  return y;
}

namespace {

// Average pooling of the checked geometry g (adaptive or not), recorded as op `op`.
Tensor average_pool(const char* op, const Tensor& x, const kernels::common::Pool2dGeometry& g, bool include_pad) {
  Tensor xc = x.contiguous();
  Tensor y = Tensor::empty({g.batch, g.out_h, g.out_w, g.channels}, x.dtype(), x.device());
  dispatch(op, x, [&](auto tag, const auto& backend) {
    using T = decltype(tag);
    avg_pool2d(y.data<T>(), xc.data<T>(), g, include_pad, backend);
  });
  count_pooling(g, xc, 0);
  autograd::record(op, y, {x}, [op, g, include_pad](const Tensor& grad, const std::vector<bool>&) {
    profiler::Scope backward_scope(op, profiler::Phase::backward);
    Tensor gc = grad.contiguous();
    Tensor dx = Tensor::empty({g.batch, g.in_h, g.in_w, g.channels}, gc.dtype(), gc.device());
    dispatch(op, gc, [&](auto tag, const auto& backend) {
      using T = decltype(tag);
      avg_pool2d_backward(dx.data<T>(), gc.data<T>(), g, include_pad, backend);
    });
    count_pooling(g, dx, 0);
    return std::vector<Tensor>{dx};
  });
  return y;
}

// The largest adaptive window along an axis of `in` inputs and `out` outputs.
int64_t largest_adaptive_window(int64_t in, int64_t out) {
  int64_t largest = 0;
  for (int64_t o = 0; o < out; ++o)
    largest = std::max(largest, kernels::common::adaptive_pool_window(o, in, out).divisor);
  return largest;
}

}  // namespace

Tensor avg_pool2d(const Tensor& x, const Pool2dParams& params) {
  profiler::Scope profile_scope("avg_pool2d");
  return average_pool("avg_pool2d", x, pool_geometry("avg_pool2d", x, params, true), params.count_include_pad);
}

Tensor adaptive_avg_pool2d(const Tensor& x, int64_t out_h, int64_t out_w) {
  constexpr const char* kOp = "adaptive_avg_pool2d";
  profiler::Scope profile_scope(kOp);
  check_dim(kOp, "x", x, 4, "(N,H,W,C)");
  check_floating(kOp, "x", x);
  check(x.size(1) >= 1 && x.size(2) >= 1, kOp, ": expected x with at least one pixel, got ", x.describe());
  check(out_h >= 1 && out_w >= 1, kOp, ": the output size must be >= 1, got ", out_h, "x", out_w);
  kernels::common::Pool2dGeometry g{};
  g.batch = x.size(0);
  g.in_h = x.size(1);
  g.in_w = x.size(2);
  g.channels = x.size(3);
  g.out_h = out_h;
  g.out_w = out_w;
  g.kernel_h = largest_adaptive_window(g.in_h, out_h);
  g.kernel_w = largest_adaptive_window(g.in_w, out_w);
  g.stride_h = g.stride_w = g.dilation_h = g.dilation_w = 1;
  g.adaptive = true;
  return average_pool(kOp, x, g, false);
}

Tensor global_avg_pool(const Tensor& x) {
  profiler::Scope profile_scope("global_avg_pool");
  check_dim("global_avg_pool", "x", x, 4, "(N,H,W,C)");
  check_floating("global_avg_pool", "x", x);
  check(x.size(1) * x.size(2) > 0, "global_avg_pool: x ", x.describe(), " has no pixels to average");
  return mean_spatial(x);
}

}  // namespace strata
