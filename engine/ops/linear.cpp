// y = x W^T + b as one row-major GEMM over rows = the product of x's leading dimensions, and its
// backward dx = dy W, dW = dy^T x, db = column sums of dy. One body per pass makes the same three
// gemm(trans_a, trans_b, M, N, K, A, lda, B, ldb, C, ldc, backend) calls on either backend (row-major,
// kernels/cpu/gemm.h and kernels/cuda/gemm.h):
//   y (rows,out)  = x (rows,in) . W^T        gemm(no, T,  rows, out, in,   x, in,   W, in,  y, out)
//   dx (rows,in)  = dy (rows,out) . W        gemm(no, no, rows, in,  out,  dy, out, W, in,  dx, in)
//   dW (out,in)   = dy^T (out,rows) . x      gemm(T,  no, out,  in,  rows, dy, out, x, in,  dW, in)
// On CUDA, gemm turns each into column-major cuBLAS by computing the transpose, C^T = op(B)^T
// op(A)^T, with the operands swapped and each keeping its own flag (a row-major buffer already is
// its matrix's transpose to cuBLAS). Concretely cublasGemmEx(opB, opA, m, n, k, B, ldb, A, lda, C, ldc):
//   y:  (T, N, m = out, n = rows, k = in):   y^T (out,rows)  = W (out,in) . x^T (in,rows)
//   dx: (N, N, m = in,  n = rows, k = out):  dx^T (in,rows)  = W^T (in,out) . dy^T (out,rows)
//   dW: (N, T, m = in,  n = out,  k = rows): dW^T (in,out)   = x^T (in,rows) . dy (rows,out)
// Strict fp32 on CUDA (CUBLAS_COMPUTE_32F, default math); bf16 on CUDA in CUBLAS_COMPUTE_32F. The bias is added after
// the product and its gradient is a deterministic column sum, on both backends.
#include "engine/ops/linear.h"

#include <type_traits>

#include "engine/autograd.h"
#include "engine/dispatch.h"
#include "engine/ops/device_dispatch.h"
#include "engine/profiler.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/reduce.h"
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/reduce.h"

namespace strata {

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  constexpr const char* op = "linear";
  profiler::Scope profile_scope(op);
  check_tensor_math_dtype(op, "x", x);
  check(x.dim() >= 1, op, ": x ", x.describe(), " needs a feature dimension");
  check_dim(op, "weight", weight, 2, "(out, in)");
  check_same_dtype(op, x, "x", weight, "weight");
  check_same_device(op, x, "x", weight, "weight");
  int64_t in = x.size(-1), out = weight.size(0);
  check(weight.size(1) == in, op, ": weight ", weight.describe(), " expects ", weight.size(1),
        " input features but x ", x.describe(), " has ", in);
  if (bias.defined()) {
    check_dim(op, "bias", bias, 1, "(out)");
    check_same_dtype(op, x, "x", bias, "bias");
    check_same_device(op, x, "x", bias, "bias");
    check(bias.size(0) == out, op, ": bias ", bias.describe(), " does not match the ", out,
          " outputs of weight ", weight.describe());
  }
  check(x.dtype() != DType::bf16 || !bias.defined(), op, ": a bf16 linear takes no bias yet (no bf16 bias kernel), ",
        "got bias ", bias.describe());
  int64_t rows = in > 0 ? x.numel() / in : 0;
  Shape out_shape = x.shape();
  out_shape.back() = out;
  Tensor xc = x.contiguous(), wc = weight.contiguous(), bc = bias.defined() ? bias.contiguous() : Tensor();
  Tensor y = Tensor::empty(out_shape, x.dtype(), x.device());
  dispatch_tensor_math(op, x, [&](auto tag, const auto& backend) {
    using T = decltype(tag);
    using Scale = kernels::cuda::GemmScale<T>;  // T for float and double, float for bf16 (CUDA only)
    gemm(false, true, rows, out, in, Scale(1), xc.data<T>(), in, wc.data<T>(), in, Scale(0), y.data<T>(), out, backend);
    if constexpr (!std::is_same_v<T, bf16>) {
      if (bc.defined()) add_channel(y.data<T>(), y.data<T>(), bc.data<T>(), rows, out, backend);
    }
  });
  {
    const double item = static_cast<double>(dtype_size(x.dtype()));
    const double outputs = static_cast<double>(rows * out);
    profiler::count(2 * outputs * static_cast<double>(in) + (bc.defined() ? outputs : 0),
                    (static_cast<double>(rows * in + out * in) + outputs + (bc.defined() ? 2 * outputs : 0)) * item);
  }
  autograd::record(op, y, {x, weight, bias},
                   [rows, in, out, x_saved = autograd::save(xc), w_saved = autograd::save(wc)](
                       const Tensor& grad, const std::vector<bool>& needs) {
                     profiler::Scope backward_scope("linear", profiler::Phase::backward);
                     Tensor g = grad.contiguous();
                     Tensor dx = needs[0] ? Tensor::empty(x_saved.shape(), g.dtype(), g.device()) : Tensor();
                     Tensor dw = needs[1] ? Tensor::empty({out, in}, g.dtype(), g.device()) : Tensor();
                     Tensor db = needs[2] ? Tensor::empty({out}, g.dtype(), g.device()) : Tensor();
                     const double item = static_cast<double>(dtype_size(g.dtype()));
                     const double macs = static_cast<double>(rows * out) * static_cast<double>(in);
                     const double dy = static_cast<double>(rows * out), xs = static_cast<double>(rows * in),
                                  ws = static_cast<double>(out * in);
                     profiler::count((needs[0] ? 2 * macs : 0) + (needs[1] ? 2 * macs : 0) + (needs[2] ? dy : 0),
                                     ((needs[0] ? dy + ws + xs : 0) + (needs[1] ? dy + xs + ws : 0) +
                                      (needs[2] ? dy + static_cast<double>(out) : 0)) *
                                         item);
                     dispatch_tensor_math("linear backward", g, [&](auto tag, const auto& backend) {
                       using T = decltype(tag);
                       using Scale = kernels::cuda::GemmScale<T>;
                       if (needs[0]) {
                         gemm(false, false, rows, in, out, Scale(1), g.data<T>(), out, w_saved.data<T>(), in, Scale(0),
                              dx.data<T>(), in, backend);
                       }
                       if (needs[1]) {
                         gemm(true, false, out, in, rows, Scale(1), g.data<T>(), out, x_saved.data<T>(), in, Scale(0),
                              dw.data<T>(), in, backend);
                       }
                       if constexpr (!std::is_same_v<T, bf16>) {
                         if (needs[2]) sum_rows(db.data<T>(), g.data<T>(), rows, out, backend);
                       }
                     });
                     return std::vector<Tensor>{dx, dw, db};
                   });
  return y;
}

}  // namespace strata
