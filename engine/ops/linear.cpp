#include "engine/ops/linear.h"

#include "engine/autograd.h"
#include "engine/dispatch.h"
#include "engine/profiler.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/reduce.h"

namespace strata {

namespace kc = kernels::cpu;

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  constexpr const char* op = "linear";
  profiler::Scope profile_scope(op);
  check_floating(op, "x", x);
  check(x.dim() >= 1, op, ": x ", x.describe(), " needs a feature dimension");
  check_dim(op, "weight", weight, 2, "(out, in)");
  check_same_dtype(op, x, "x", weight, "weight");
  check_same_device(op, x, "x", weight, "weight");
  check_cpu(op, x);
  int64_t in = x.size(-1), out = weight.size(0);
  check(weight.size(1) == in, op, ": weight ", weight.describe(), " expects ", weight.size(1),
        " input features but x ", x.describe(), " has ", in);
  if (bias.defined()) {
    check_dim(op, "bias", bias, 1, "(out)");
    check_same_dtype(op, x, "x", bias, "bias");
    check(bias.size(0) == out, op, ": bias ", bias.describe(), " does not match the ", out,
          " outputs of weight ", weight.describe());
  }
  int64_t rows = in > 0 ? x.numel() / in : 0;
  Shape out_shape = x.shape();
  out_shape.back() = out;
  Tensor xc = x.contiguous(), wc = weight.contiguous(), bc = bias.defined() ? bias.contiguous() : Tensor();
  Tensor y = Tensor::empty(out_shape, x.dtype(), x.device());
  visit_floating(op, x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    kc::gemm_cpu<T>(false, true, rows, out, in, T(1), xc.data<T>(), in, wc.data<T>(), in, T(0), y.data<T>(), out);
    if (bc.defined()) kc::add_channel_cpu<T>(y.data<T>(), y.data<T>(), bc.data<T>(), rows, out);
  });
  autograd::record(op, y, {x, weight, bias},
                   [rows, in, out, x_saved = autograd::save(xc), w_saved = autograd::save(wc)](
                       const Tensor& grad, const std::vector<bool>& needs) {
                     profiler::Scope backward_scope("linear", profiler::Phase::backward);
                     Tensor g = grad.contiguous();
                     Tensor dx, dw, db;
                     visit_floating("linear backward", g.dtype(), [&](auto tag) {
                       using T = decltype(tag);
                       if (needs[0]) {
                         dx = Tensor::empty(x_saved.shape(), g.dtype(), g.device());
                         kc::gemm_cpu<T>(false, false, rows, in, out, T(1), g.data<T>(), out, w_saved.data<T>(), in,
                                         T(0), dx.data<T>(), in);
                       }
                       if (needs[1]) {
                         dw = Tensor::empty({out, in}, g.dtype(), g.device());
                         kc::gemm_cpu<T>(true, false, out, in, rows, T(1), g.data<T>(), out, x_saved.data<T>(), in,
                                         T(0), dw.data<T>(), in);
                       }
                       if (needs[2]) {
                         db = Tensor::empty({out}, g.dtype(), g.device());
                         kc::sum_rows_cpu<T>(db.data<T>(), g.data<T>(), rows, out);
                       }
                     });
                     return std::vector<Tensor>{dx, dw, db};
                   });
  return y;
}

}  // namespace strata
