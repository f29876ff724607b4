// --precision tf32 on the CUDA backend (engine/precision.h): convolutions and GEMMs round their
// inputs to TF32 (the emulator does, as the tensor cores do) and stay within kTF32 of the CPU's f32,
// far enough from it that kF32 fails, so the mode demonstrably reaches cuDNN and cuBLAS; a strict
// (f32) device stays within kF32; ops outside the policy's list get strict math on a tf32 device; the
// convolution algorithm cache keeps TF32 choices apart from strict ones.
#include <algorithm>
#include <catch2/catch.hpp>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/cuda/context.h"
#include "engine/ops/conv2d.h"
#include "engine/ops/device_dispatch.h"
#include "engine/ops/linear.h"
#include "engine/precision.h"
#include "kernels/cuda/conv_algorithms.h"
#include "tests/support/compare.h"
#include "tests/support/leaves.h"

using namespace strata;
namespace kcu = strata::kernels::cuda;

namespace {

struct Outputs {
  Tensor y;
  std::vector<Tensor> grads;  // of every input, in order
};

// f on f32 copies of `inputs` on `device`, then backward with `grad`; everything back on the CPU.
Outputs run_on(const Device& device, const std::function<Tensor(const std::vector<Tensor>&)>& f,
               const std::vector<Tensor>& inputs, const Tensor& grad) {
  std::vector<Tensor> on_device;
  for (const Tensor& t : inputs) {
    Tensor d = t.detach().to(device);
    d.set_requires_grad(true);
    on_device.push_back(d);
  }
  Tensor y = f(on_device);
  y.backward(grad.to(device));
  Outputs out{y.to(Device::cpu()), {}};
  for (const Tensor& t : on_device) out.grads.push_back(t.grad().to(Device::cpu()));
  return out;
}

// The output and every gradient at `precision` against the CPU's f32 ones: within kTF32 and, at tf32,
// outside kF32 (TF32 rounding applied); within kF32 at f32. The gradient of input `bias` (a sum of
// the upstream gradient, no product) is within kF32 at either precision.
void check_precision(const std::string& what, Precision precision,
                     const std::function<Tensor(const std::vector<Tensor>&)>& f, const std::vector<Shape>& shapes,
                     int bias = -1) {
  Generator g(31);
  std::vector<Tensor> inputs;
  for (const Shape& s : shapes) inputs.push_back(test::leaf(s, g, 1.0, 0.0, DType::f32));
  const Tensor probe = f(inputs).detach();
  const Tensor grad = Tensor::randn(probe.shape(), g);
  const Outputs cpu = run_on(Device::cpu(), f, inputs, grad);
  const Outputs gpu = run_on(open_cuda_device(0, precision), f, inputs, grad);
  struct Pair {
    std::string name;
    Tensor actual, expected;
    bool tensor_math;
  };
  std::vector<Pair> pairs = {{"output", gpu.y, cpu.y, true}};
  for (size_t i = 0; i < inputs.size(); ++i) {
    pairs.push_back({cat("gradient ", i), gpu.grads[i], cpu.grads[i], static_cast<int>(i) != bias});
  }
  for (const Pair& p : pairs) {
    INFO(what << " at " << precision_name(precision) << ": " << p.name);
    const test::Comparison strict = test::compare(p.actual, p.expected, test::kF32);
    const test::Comparison tf32 = test::compare(p.actual, p.expected, test::kTF32);
    INFO("against kF32: " << strict.message << "; against kTF32: " << tf32.message);
    if (precision == Precision::tf32 && p.tensor_math) {
      CHECK(tf32.ok);
      CHECK_FALSE(strict.ok);
    } else {
      CHECK(strict.ok);
    }
  }
}

}  // namespace

TEST_CASE("parse_precision and the precision policy", "[cpu]") {
  CHECK(parse_precision("tf32") == Precision::tf32);
  CHECK(parse_precision("f32") == Precision::f32);
  CHECK(parse_precision("fp32") == Precision::f32);
  CHECK(parse_precision("bf16") == Precision::bf16);
  CHECK(std::string(precision_name(Precision::bf16)) == "bf16");
  CHECK_THROWS_WITH(parse_precision("fp16"), "--precision 'fp16': expected bf16, tf32 or f32");
  CHECK_THROWS_WITH(parse_device("cpu", Precision::tf32), Catch::Contains("--precision tf32 is a CUDA math mode"));
  CHECK_THROWS_WITH(parse_device("cpu", Precision::bf16), Catch::Contains("--precision bf16 is a CUDA math mode"));
  // A model run refuses bf16 until the forward casts to it; the other precisions run.
  CHECK_THROWS_WITH(check_model_precision(Precision::bf16),
                    Catch::Contains("--precision bf16: the model forward does not cast to bf16 yet"));
  CHECK_NOTHROW(check_model_precision(Precision::tf32));
  CHECK_NOTHROW(check_model_precision(Precision::f32));
  CHECK(default_precision("cuda:1") == Precision::tf32);
  CHECK(default_precision("cpu") == Precision::f32);
  for (const char* op :
       {"conv2d", "conv2d backward data", "conv2d backward filter", "conv2d_activation", "linear", "linear backward"}) {
    CHECK(uses_tensor_math(op));
  }
  for (const char* op : {"conv2d backward bias", "batch_norm", "softmax", "cross_entropy", ""}) {
    CHECK_FALSE(uses_tensor_math(op));
  }
  // At bf16, the tensor-math ops read bf16 operands, norms keep f32 statistics, softmax, losses and
  // reductions compute in f32, and every other op computes in its input's dtype.
  for (const char* op :
       {"conv2d", "conv2d backward data", "conv2d backward filter", "conv2d_activation", "linear", "linear backward"}) {
    CHECK(bf16_compute(op) == Bf16Compute::bf16_operands);
  }
  for (const char* op : {"batch_norm", "inplace_abn"}) CHECK(bf16_compute(op) == Bf16Compute::f32_statistics);
  for (const char* op :
       {"softmax", "log_softmax", "cross_entropy", "fused_losses", "sum", "mean_spatial", "conv2d backward bias"}) {
    CHECK(bf16_compute(op) == Bf16Compute::f32);
  }
  for (const char* op : {"relu", "upsample_bilinear", "max_pool2d", "concat", ""}) {
    CHECK(bf16_compute(op) == Bf16Compute::input_dtype);
  }
  // One table, no contradictions: the ops reading bf16 operands are exactly the tensor-math ops, and
  // no op has two rules.
  for (const Bf16OpPolicy& rule : kBf16Policy) {
    INFO(rule.op);
    CHECK(uses_tensor_math(rule.op) == (rule.compute == Bf16Compute::bf16_operands));
    CHECK(std::count_if(std::begin(kBf16Policy), std::end(kBf16Policy),
                        [&](const Bf16OpPolicy& other) { return other.op == rule.op; }) == 1);
  }
  for (std::string_view op : kTensorMathOps) CHECK(bf16_compute(op) == Bf16Compute::bf16_operands);
  // What a kernel gets: TF32 only for a listed op on a tf32 device; an f32 tensor reaching a
  // convolution on a bf16 device (not cast) computes in strict f32.
  const Device tf32 = open_cuda_device(0, Precision::tf32), strict = open_cuda_device(0, Precision::f32);
  TensorScratch scratch(tf32);
  CHECK(cuda_context(tf32).kernel_backend(&scratch, "conv2d").float_math == kcu::FloatMath::tf32);
  CHECK(cuda_context(tf32).kernel_backend(&scratch, "batch_norm").float_math == kcu::FloatMath::strict);
  CHECK(cuda_context(strict).kernel_backend(&scratch, "conv2d").float_math == kcu::FloatMath::strict);
  const Device bf16 = open_cuda_device(0, Precision::bf16);
  CHECK(cuda_context(bf16).kernel_backend(&scratch, "conv2d").float_math == kcu::FloatMath::strict);
}

TEST_CASE("conv2d at --precision tf32 computes in TF32, within kTF32 of the CPU", "[cpu]") {
  // Reductions of 3x3x64 = 576 (forward, data gradient) and 2x8x8 = 128 (filter gradient) terms, a
  // dilated 3x3 and a pointwise convolution over 256 channels.
  for (const Precision precision : {Precision::tf32, Precision::f32}) {
    check_precision(
        "3x3 conv, 64 -> 32 channels", precision,
        [](const std::vector<Tensor>& in) { return conv2d(in[0], in[1], in[2], Conv2dParams::same(1, 1, 1)); },
        {{2, 8, 8, 64}, {32, 3, 3, 64}, {32}}, 2);
    check_precision(
        "dilated 3x3 conv, 32 -> 16 channels", precision,
        [](const std::vector<Tensor>& in) { return conv2d(in[0], in[1], Tensor(), Conv2dParams::same(1, 2, 2)); },
        {{1, 9, 7, 32}, {16, 3, 3, 32}});
    check_precision(
        "pointwise conv, 256 -> 64 channels", precision,
        [](const std::vector<Tensor>& in) { return conv2d(in[0], in[1], Tensor(), Conv2dParams::same(1, 0, 1)); },
        {{2, 4, 4, 256}, {64, 1, 1, 256}});
  }
}

TEST_CASE("linear at --precision tf32 computes in TF32, within kTF32 of the CPU", "[cpu]") {
  for (const Precision precision : {Precision::tf32, Precision::f32}) {
    check_precision(
        "linear 512 -> 48", precision, [](const std::vector<Tensor>& in) { return linear(in[0], in[1], in[2]); },
        {{24, 512}, {48, 512}, {48}}, 2);
  }
}

TEST_CASE("conv2d_activation at --precision tf32 computes in TF32 (the folded teacher)", "[cpu]") {
  Generator g(5);
  const Tensor x = Tensor::randn({2, 6, 6, 128}, g), w = Tensor::randn({24, 3, 3, 128}, g), b = Tensor::randn({24}, g);
  auto run = [&](const Device& device) {
    return conv2d_activation(x.to(device), w.to(device), b.to(device), Tensor(), 0.0, Conv2dParams::same(1, 1, 1))
        .to(Device::cpu());
  };
  const Tensor cpu = run(Device::cpu());
  const Tensor tf32 = run(open_cuda_device(0, Precision::tf32)), strict = run(open_cuda_device(0, Precision::f32));
  CHECK(test::compare(tf32, cpu, test::kTF32).ok);
  CHECK_FALSE(test::compare(tf32, cpu, test::kF32).ok);
  CHECK(test::compare(strict, cpu, test::kF32).ok);
}

TEST_CASE("the convolution algorithm cache keeps TF32 and strict choices apart", "[cpu]") {
  const Device device = open_cuda_device(0, Precision::tf32);
  Generator g(3);
  Tensor x = Tensor::randn({1, 5, 5, 8}, g).to(device), w = Tensor::randn({4, 3, 3, 8}, g).to(device);
  conv2d(x, w, Tensor(), Conv2dParams::same(1, 1, 1));
  kernels::common::Conv2dShape s{};
  s.N = 1, s.H = 5, s.W = 5, s.C = 8, s.K = 4, s.R = 3, s.S = 3;
  s.stride_h = s.stride_w = s.dilation_h = s.dilation_w = s.pad_h = s.pad_w = 1;
  s.P = 5, s.Q = 5;
  const kcu::ConvAlgorithmCache& cache = cuda_context(device).conv_algorithms();
  const kcu::ConvAlgorithmKey tf32 = kcu::conv2d_algorithm_key<float>(s, kcu::ConvPass::forward, kcu::FloatMath::tf32);
  const kcu::ConvAlgorithmKey strict = kcu::conv2d_algorithm_key<float>(s, kcu::ConvPass::forward);
  CHECK(tf32.math == CUDNN_DEFAULT_MATH);
  CHECK(strict.math == CUDNN_FMA_MATH);
  CHECK(cache.peek(tf32).has_value());
  CHECK_FALSE(cache.peek(strict).has_value());
}
