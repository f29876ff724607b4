// The bf16 kernels of --precision bf16 (engine/precision.h): cuDNN convolutions (forward, backward
// data, backward filter) and cuBLAS GEMMs on bf16 operands with fp32 accumulation, each against the
// CPU's f32 result on the unrounded f32 inputs, as kernels and through the conv2d and linear ops
// (autograd included). Within kBF16, and outside kF32: bf16 rounding (which the emulator applies to
// every bf16 store, as the hardware does) demonstrably reaches the result.
#include <catch2/catch.hpp>
#include <string>

#include "engine/cuda/context.h"
#include "engine/ops/cast.h"
#include "engine/ops/conv2d.h"
#include "engine/ops/device_dispatch.h"
#include "engine/ops/linear.h"
#include "engine/precision.h"
#include "kernels/cuda/conv2d.h"
#include "kernels/cuda/conv_algorithms.h"
#include "kernels/cuda/gemm.h"
#include "tests/support/compare.h"
#include "tests/support/leaves.h"

using namespace strata;
namespace kcu = strata::kernels::cuda;

namespace {

// A bf16 copy of a CPU f32 tensor on `device`.
Tensor bf16_on(const Tensor& t, const Device& device) { return t.detach().to(DType::bf16).to(device); }

// A bf16 tensor of `shape` on `device`, to be overwritten by a kernel.
Tensor bf16_empty(const Shape& shape, const Device& device) { return Tensor::empty(shape, DType::bf16, device); }

// A kernel's bf16 output, back on the CPU in f32, against the CPU's f32 result.
void check_bf16(const std::string& what, const Tensor& actual, const Tensor& expected) {
  REQUIRE(actual.dtype() == DType::bf16);
  const Tensor widened = actual.to(Device::cpu()).to(DType::f32);
  const test::Comparison bf16 = test::compare(widened, expected, test::kBF16);
  const test::Comparison strict = test::compare(widened, expected, test::kF32);
  INFO(what << ": against kBF16: " << bf16.message << "; against kF32: " << strict.message);
  CHECK(bf16.ok);
  CHECK_FALSE(strict.ok);
}

kernels::common::Conv2dShape conv_shape(int64_t N, int64_t H, int64_t W, int64_t C, int64_t K, int64_t R, int64_t pad,
                                        int64_t dilation, int64_t stride) {
  kernels::common::Conv2dShape s{};
  s.N = N, s.H = H, s.W = W, s.C = C, s.K = K, s.R = R, s.S = R;
  s.stride_h = s.stride_w = stride;
  s.dilation_h = s.dilation_w = dilation;
  s.pad_h = s.pad_w = pad;
  s.P = (H + 2 * pad - dilation * (R - 1) - 1) / stride + 1;
  s.Q = (W + 2 * pad - dilation * (R - 1) - 1) / stride + 1;
  return s;
}

// The three passes of one convolution in bf16 on the device against the CPU's f32 autograd.
void check_conv2d(const std::string& what, const kernels::common::Conv2dShape& s) {
  Generator g(41);
  const Tensor x = test::leaf({s.N, s.H, s.W, s.C}, g, 1.0, 0.0, DType::f32);
  const Tensor w = test::leaf({s.K, s.R, s.S, s.C}, g, 1.0, 0.0, DType::f32);
  const Conv2dParams params{s.stride_h, s.stride_w, s.pad_h, s.pad_w, s.dilation_h, s.dilation_w};
  Tensor y = conv2d(x, w, Tensor(), params);
  const Tensor dy = Tensor::randn(y.shape(), g);
  y.backward(dy);

  const Device device = open_cuda_device(0, Precision::bf16);
  TensorScratch scratch(device);
  const Tensor xd = bf16_on(x, device), wd = bf16_on(w, device), dyd = bf16_on(dy, device);
  Tensor yd = bf16_empty(y.shape(), device), dxd = bf16_empty(x.shape(), device), dwd = bf16_empty(w.shape(), device);
  CudaContext& context = cuda_context(device);
  kcu::conv2d_forward(yd.data<bf16>(), xd.data<bf16>(), wd.data<bf16>(), static_cast<const bf16*>(nullptr), s,
                      context.kernel_backend(&scratch, "conv2d"));
  kcu::conv2d_backward_data(dxd.data<bf16>(), dyd.data<bf16>(), wd.data<bf16>(), s,
                            context.kernel_backend(&scratch, "conv2d backward data"));
  kcu::conv2d_backward_filter(dwd.data<bf16>(), dyd.data<bf16>(), xd.data<bf16>(), s,
                              context.kernel_backend(&scratch, "conv2d backward filter"));
  check_bf16(what + ", forward", yd, y.detach());
  check_bf16(what + ", backward data", dxd, x.grad());
  check_bf16(what + ", backward filter", dwd, w.grad());
  // The algorithm cache keeps bf16 choices under their own data type, apart from f32 ones.
  const kcu::ConvAlgorithmKey key = kcu::conv2d_algorithm_key<bf16>(s, kcu::ConvPass::forward);
  CHECK(key.dtype == CUDNN_DATA_BFLOAT16);
  CHECK(context.conv_algorithms().peek(key).has_value());
}

}  // namespace

TEST_CASE("conv2d in bf16 on CUDA is within kBF16 of the CPU's f32", "[cuda]") {
  // Reductions of 3x3x48 = 432 (forward, data gradient) and 2x8x8 = 128 (filter gradient) terms, a
  // dilated 3x3, a strided 3x3 and a pointwise convolution over 128 channels.
  check_conv2d("3x3 conv, 48 -> 16 channels", conv_shape(2, 8, 8, 48, 16, 3, 1, 1, 1));
  check_conv2d("dilated 3x3 conv, 16 -> 8 channels", conv_shape(1, 9, 7, 16, 8, 3, 2, 2, 1));
  check_conv2d("strided 3x3 conv, 8 -> 12 channels", conv_shape(2, 7, 7, 8, 12, 3, 1, 1, 2));
  check_conv2d("pointwise conv, 128 -> 32 channels", conv_shape(2, 4, 4, 128, 32, 1, 0, 1, 1));
}

TEST_CASE("a bf16 convolution with a bias is refused, not computed without it", "[cuda]") {
  const Device device = open_cuda_device(0, Precision::bf16);
  TensorScratch scratch(device);
  const kernels::common::Conv2dShape s = conv_shape(1, 4, 4, 8, 4, 3, 1, 1, 1);
  Generator g(2);
  const Tensor x = bf16_on(Tensor::randn({1, 4, 4, 8}, g), device), w = bf16_on(Tensor::randn({4, 3, 3, 8}, g), device),
               b = bf16_on(Tensor::randn({4}, g), device);
  Tensor y = bf16_empty({1, 4, 4, 4}, device);
  CHECK_THROWS_WITH(kcu::conv2d_forward(y.data<bf16>(), x.data<bf16>(), w.data<bf16>(), b.data<bf16>(), s,
                                        cuda_context(device).kernel_backend(&scratch, "conv2d")),
                    Catch::Contains("a bf16 convolution takes no bias yet"));
}

TEST_CASE("the GEMMs of linear in bf16 on CUDA are within kBF16 of the CPU's f32", "[cuda]") {
  // linear's three products (engine/ops/linear.cpp): y = x W^T, dx = dy W, dW = dy^T x, reducing
  // over 384, 40 and 24 terms.
  const int64_t rows = 24, in = 384, out = 40;
  Generator g(43);
  const Tensor x = test::leaf({rows, in}, g, 1.0, 0.0, DType::f32);
  const Tensor w = test::leaf({out, in}, g, 1.0, 0.0, DType::f32);
  Tensor y = linear(x, w, Tensor());
  const Tensor dy = Tensor::randn(y.shape(), g);
  y.backward(dy);

  const Device device = open_cuda_device(0, Precision::bf16);
  TensorScratch scratch(device);
  const kcu::Backend backend = cuda_context(device).kernel_backend(&scratch, "linear");
  const Tensor xd = bf16_on(x, device), wd = bf16_on(w, device), dyd = bf16_on(dy, device);
  Tensor yd = bf16_empty({rows, out}, device), dxd = bf16_empty({rows, in}, device),
         dwd = bf16_empty({out, in}, device);
  kcu::gemm<bf16>(false, true, rows, out, in, 1.0f, xd.data<bf16>(), in, wd.data<bf16>(), in, 0.0f, yd.data<bf16>(),
                  out, backend);
  kcu::gemm<bf16>(false, false, rows, in, out, 1.0f, dyd.data<bf16>(), out, wd.data<bf16>(), in, 0.0f, dxd.data<bf16>(),
                  in, backend);
  kcu::gemm<bf16>(true, false, out, in, rows, 1.0f, dyd.data<bf16>(), out, xd.data<bf16>(), in, 0.0f, dwd.data<bf16>(),
                  in, backend);
  check_bf16("y = x W^T", yd, y.detach());
  check_bf16("dx = dy W", dxd, x.grad());
  check_bf16("dW = dy^T x", dwd, w.grad());
}

TEST_CASE("the conv2d and linear ops take bf16 tensors on CUDA and keep their gradients bf16", "[cuda]") {
  // The ops as a model calls them, autograd included, against the CPU's f32 autograd: outputs and
  // the gradients of bf16 leaves stay bf16 (saved tensors are the bf16 operands).
  Generator g(47);
  const Device device = open_cuda_device(0, Precision::bf16);
  auto bf16_leaf = [&](const Tensor& t) {
    Tensor d = bf16_on(t, device);
    d.set_requires_grad(true);
    return d;
  };
  SECTION("conv2d") {
    const Tensor x = test::leaf({2, 6, 5, 24}, g, 1.0, 0.0, DType::f32);
    const Tensor w = test::leaf({12, 3, 3, 24}, g, 1.0, 0.0, DType::f32);
    const Conv2dParams params = Conv2dParams::same(1, 2, 2);
    Tensor y = conv2d(x, w, Tensor(), params);
    const Tensor dy = Tensor::randn(y.shape(), g);
    y.backward(dy);
    const Tensor xd = bf16_leaf(x), wd = bf16_leaf(w);
    Tensor yd = conv2d(xd, wd, Tensor(), params);
    yd.backward(bf16_on(dy, device));
    check_bf16("conv2d output", yd, y.detach());
    check_bf16("conv2d gradient of x", xd.grad(), x.grad());
    check_bf16("conv2d gradient of weight", wd.grad(), w.grad());
  }
  SECTION("linear") {
    const Tensor x = test::leaf({3, 8, 96}, g, 1.0, 0.0, DType::f32);
    const Tensor w = test::leaf({20, 96}, g, 1.0, 0.0, DType::f32);
    Tensor y = linear(x, w, Tensor());
    const Tensor dy = Tensor::randn(y.shape(), g);
    y.backward(dy);
    const Tensor xd = bf16_leaf(x), wd = bf16_leaf(w);
    Tensor yd = linear(xd, wd, Tensor());
    yd.backward(bf16_on(dy, device));
    check_bf16("linear output", yd, y.detach());
    check_bf16("linear gradient of x", xd.grad(), x.grad());
    check_bf16("linear gradient of weight", wd.grad(), w.grad());
  }
}

TEST_CASE("bf16 conv2d and linear are refused on the CPU and with a bias, naming the op", "[cuda]") {
  Generator g(5);
  const Tensor x = Tensor::randn({1, 4, 4, 8}, g).to(DType::bf16), w = Tensor::randn({4, 3, 3, 8}, g).to(DType::bf16);
  CHECK_THROWS_WITH(conv2d(x, w, Tensor(), Conv2dParams::same(1, 1)),
                    Catch::Contains("conv2d: expected x in f32 or f64 on the CPU (bf16 computes on CUDA only)"));
  const Device device = open_cuda_device(0, Precision::bf16);
  const Tensor b = Tensor::randn({4}, g).to(DType::bf16).to(device);
  CHECK_THROWS_WITH(conv2d(x.to(device), w.to(device), b, Conv2dParams::same(1, 1)),
                    Catch::Contains("conv2d: a bf16 convolution takes no bias yet"));
  const Tensor xl = Tensor::randn({3, 8}, g).to(DType::bf16), wl = Tensor::randn({4, 8}, g).to(DType::bf16);
  CHECK_THROWS_WITH(linear(xl, wl, Tensor()),
                    Catch::Contains("linear: expected x in f32 or f64 on the CPU (bf16 computes on CUDA only)"));
  CHECK_THROWS_WITH(linear(xl.to(device), wl.to(device), b),
                    Catch::Contains("linear: a bf16 linear takes no bias yet"));
}

TEST_CASE("f32 master weights: a bf16 copy's gradient reaches the f32 weight's .grad()", "[cuda]") {
  // --precision bf16's pattern (engine/precision.h): f32 activations and master weights on the device,
  // cast to bf16 for the convolution; its bf16 gradients arrive cast back to f32.
  Generator g(53);
  const Tensor x = test::leaf({2, 5, 5, 16}, g, 1.0, 0.0, DType::f32);
  const Tensor w = test::leaf({8, 3, 3, 16}, g, 1.0, 0.0, DType::f32);
  Tensor y = conv2d(x, w, Tensor(), Conv2dParams::same(1, 1));
  const Tensor dy = Tensor::randn(y.shape(), g);
  y.backward(dy);

  const Device device = open_cuda_device(0, Precision::bf16);
  Tensor xm = x.detach().to(device), wm = w.detach().to(device);
  xm.set_requires_grad(true);
  wm.set_requires_grad(true);
  Tensor yd = conv2d(cast(xm, DType::bf16), cast(wm, DType::bf16), Tensor(), Conv2dParams::same(1, 1));
  yd.backward(bf16_on(dy, device));
  check_bf16("output", yd, y.detach());
  REQUIRE(wm.grad().dtype() == DType::f32);
  REQUIRE(xm.grad().dtype() == DType::f32);
  // The master gradients hold the bf16 gradients exactly (a widening cast), so they are bf16 values.
  check_bf16("weight gradient, widened", wm.grad().to(DType::bf16), w.grad());
  check_bf16("input gradient, widened", xm.grad().to(DType::bf16), x.grad());
  CHECK(
      test::compare(wm.grad().to(Device::cpu()), wm.grad().to(DType::bf16).to(Device::cpu()).to(DType::f32), test::kF64)
          .ok);
}
