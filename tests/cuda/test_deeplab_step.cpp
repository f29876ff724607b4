// The last check of the CUDA backend: one whole DeepLabV3-ResNet-50 training step (torchvision
// head with the aux FCN head, train mode with dropout, cross-entropy with ignored pixels,
// backward, SGD with Nesterov and weight decay) on the CUDA device equals the same step on the
// CPU, on a small odd-sized input. Dropout masks are Philox draws identical on both backends, so
// train mode compares exactly the same computation.
//
// Float64 compares the whole step. The logits, the aux logits, the loss and every buffer (the
// batch-norm running statistics; num_batches_tracked bit for bit) are within kF64 of the CPU's.
// Every gradient and every parameter after SGD is within kF64 too, or else within
// kF64ErrorBudgetVsRounding times the CPU step's own sensitivity to rounding
// (tests/support/tolerances.h): the CPU step is run a second time with its input and initial
// parameters rounded differently (every value moved to a neighbouring double, as if each layer's
// operands had been rounded in another order), and the largest change that makes in any gradient or
// updated parameter, relative to the tensor's largest magnitude, is the yardstick. On this input
// that change is a few 1e-12 (the step's backward amplifies rounding ~10^4-fold at this small size),
// beyond kF64's atol, and the CUDA step's other summation orders (cuDNN and cuBLAS against im2col +
// OpenBLAS) move the gradients by about as much (0.9 to 1.5 times that change on seeds 11 to 13); a
// wrong CUDA kernel is off by orders of magnitude more.
//
// Float32 compares the forward only: the logits, the aux logits, the loss and the buffers (updated
// by the forward). Float32 over ~60 layers accumulates rounding beyond kF32 whichever backend
// computes it, so each must be within kF32 of the CPU's float64 forward, or no further from it than
// kF32ErrorBudgetVsPyTorch times the CPU's own float32 forward is (same precision, different
// summation orders). The float32 gradients (and so the parameters after SGD) are not compared
// whole-model because backward is discontinuous: a ReLU passes the gradient where its
// pre-activation is > 0 and drops it otherwise, and among millions of pre-activations some lie
// within float32 rounding of zero, where the two backends' summation orders can put them on
// different sides. The gradient then differs by its full size there and in everything it reaches:
// with seed 12, the CUDA float32 gradients were 100x closer to float64 than the CPU's float32
// gradients everywhere except one channel of classifier.0.convs.3, where one such pre-activation
// took the other branch. Which element flips is chance, so any whole-network float32-against-float32
// gradient comparison fails on some inputs without a bug. The float64 step checks the whole backward;
// the op tests of this folder (cuda_compare.h) check every op's float32 gradients against the CPU's.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/losses.h"
#include "engine/optim/sgd.h"
#include "kernels/common/philox.h"
#include "models/segmentation_model.h"
#include "tests/cuda/cuda_device.h"
#include "tests/support/compare.h"

using namespace strata;

namespace {

struct StepResult {
  Tensor logits, aux_logits, loss;
  TensorMap gradients, parameters, buffers;  // all on the CPU; gradients and parameters of a full step only
};

// Moves every value of a CPU f64 tensor to one of its two neighbouring doubles, a fixed pseudo-random
// choice per value (bit 0 of Philox word (kRoundingStream, first + i)); returns first + numel.
constexpr uint64_t kRoundingStream = 17;
uint64_t round_differently(Tensor& t, uint64_t first) {
  double* v = t.data<double>();
  for (int64_t i = 0; i < t.numel(); ++i) {
    const bool up = (philox::word(kRoundingStream, first + static_cast<uint64_t>(i)) & 1) != 0;
    v[i] = std::nextafter(v[i], up ? INFINITY : -INFINITY);
  }
  return first + static_cast<uint64_t>(t.numel());
}

// The forward in train mode and, for a full step, the backward and the SGD update, of the model on
// `device` in `dtype`; `rounded_differently` (CPU, f64) first moves every input value and initial
// parameter value to a neighbouring double.
StepResult training_step(const Device& device, DType dtype, const Tensor& images, const Tensor& labels,
                         bool full_step, bool rounded_differently = false) {
  models::ModelConfig config;
  config.flavour = models::Flavour::torchvision;
  config.depth = 50;
  config.output_stride = 8;
  config.classes = {21};
  config.aux = true;
  config.seed = 3;
  models::SegmentationModel model(config);
  model.to(dtype);
  Tensor input = images.to(dtype).clone();
  if (rounded_differently) {
    REQUIRE((device.is_cpu() && dtype == DType::f64));
    uint64_t next = round_differently(input, 0);
    for (auto& [name, p] : model.named_parameters()) {
      Tensor parameter = p;
      next = round_differently(parameter, next);
    }
  }
  model.to(device);
  model.train();
  optim::SGD sgd({{"all", model.named_parameters(), 0.01, 0.9, 1e-4, true}});

  models::ForwardOptions options;
  options.aux_logits = true;
  std::optional<autograd::NoGradGuard> no_grad;
  if (!full_step) no_grad.emplace();
  models::ForwardResult out = model.forward(input.to(device), options);
  Tensor device_labels = labels.to(device);
  Tensor loss = add(cross_entropy(out.logits, device_labels, Reduction::mean_valid),
                    scale(cross_entropy(out.aux_logits.at(0), device_labels, Reduction::mean_valid), 0.5));

  StepResult r{out.logits.detach().to(Device::cpu()),
               out.aux_logits.at(0).detach().to(Device::cpu()),
               loss.detach().to(Device::cpu()),
               {},
               {},
               {}};
  if (full_step) {
    loss.backward();
    for (const auto& [name, p] : model.named_parameters()) r.gradients.emplace(name, p.grad().to(Device::cpu()));
    sgd.step();
    for (const auto& [name, p] : model.named_parameters()) r.parameters.emplace(name, p.to(Device::cpu()));
  }
  for (const auto& [name, b] : model.named_buffers()) r.buffers.emplace(name, b.to(Device::cpu()));
  return r;
}

double max_abs_error(const Tensor& a, const Tensor& reference) {
  std::vector<double> x = a.to_vector<double>(), y = reference.to_vector<double>();
  double worst = 0;
  for (size_t i = 0; i < x.size(); ++i) worst = std::max(worst, std::fabs(x[i] - y[i]));
  return worst;
}

// max |a - reference| / max |reference| (0 when both are all zero).
double relative_error(const Tensor& a, const Tensor& reference) {
  double scale = 0;
  for (double v : reference.to_vector<double>()) scale = std::max(scale, std::fabs(v));
  double error = max_abs_error(a, reference);
  return error == 0 ? 0 : error / scale;
}

// The largest relative_error of a full step's gradients and parameters against the reference's.
double largest_relative_error(const StepResult& a, const StepResult& reference) {
  double worst = 0;
  for (const auto& [name, g] : reference.gradients) worst = std::max(worst, relative_error(a.gradients.at(name), g));
  for (const auto& [name, p] : reference.parameters) worst = std::max(worst, relative_error(a.parameters.at(name), p));
  return worst;
}

// Within kF64 of the CPU's float64 result.
void check_f64(const std::string& what, const Tensor& cuda, const Tensor& cpu) {
  INFO(what);
  REQUIRE(cuda.dtype() == DType::f64);
  CHECK_CLOSE(cuda, cpu, test::kF64);
}

// A gradient or an updated parameter: within kF64 of the CPU's float64 result, or no further from it
// (relative to its largest magnitude) than the budget times the CPU step's sensitivity to rounding.
void check_f64_backward(const std::string& what, const Tensor& cuda, const Tensor& cpu, double sensitivity) {
  INFO(what);
  REQUIRE(cuda.dtype() == DType::f64);
  test::Comparison direct = test::compare(cuda, cpu, test::kF64);
  if (direct.ok) return;
  const double ours = relative_error(cuda, cpu);
  INFO(direct.message << "; CUDA error " << ours << " of the largest magnitude, the CPU step's sensitivity to "
                      << "rounding " << sensitivity);
  CHECK(ours <= test::kF64ErrorBudgetVsRounding * sensitivity);
}

// Within kF32 of the float64 reference, or no further from it than the budget times the CPU's own
// float32 result is.
void check_as_accurate_as_cpu(const std::string& what, const Tensor& cuda, const Tensor& cpu32, const Tensor& cpu64) {
  INFO(what);
  REQUIRE(cuda.dtype() == DType::f32);
  test::Comparison direct = test::compare(cuda, cpu64, test::kF32);
  if (direct.ok) return;
  double ours = max_abs_error(cuda, cpu64), cpu = max_abs_error(cpu32, cpu64);
  INFO(direct.message << "; CPU float32 error " << cpu << ", CUDA float32 error " << ours);
  CHECK(ours <= test::kF32ErrorBudgetVsPyTorch * cpu);
}

// Every buffer: floating ones through check_floating(name), integer ones (num_batches_tracked)
// exactly.
void check_buffers(const TensorMap& cuda, const TensorMap& reference,
                   const std::function<void(const std::string& name)>& check_floating) {
  REQUIRE(cuda.size() == reference.size());
  for (const auto& [name, b] : reference) {
    if (!is_floating(b.dtype())) {
      INFO("buffer " << name);
      CHECK(cuda.at(name).to_vector<int64_t>() == b.to_vector<int64_t>());
      continue;
    }
    check_floating(name);
  }
}

struct StepInputs {
  Tensor images, labels;
};

StepInputs step_inputs() {
  Generator g(11);
  Tensor images = Tensor::randn({2, 33, 41, 3}, g, DType::f64);
  std::vector<uint8_t> label_values(2 * 33 * 41);
  for (size_t i = 0; i < label_values.size(); ++i) {
    uint32_t draw = static_cast<uint32_t>(philox::word(5, i));
    label_values[i] = draw % 10 == 0 ? 255 : static_cast<uint8_t>(draw % 21);  // 10% ignored pixels
  }
  return {images, Tensor::from_vector(label_values, {2, 33, 41})};
}

}  // namespace

TEST_CASE("a DeepLabV3-ResNet-50 training step on CUDA in float64 equals the same step on the CPU", "[cpu]") {
  const StepInputs in = step_inputs();
  StepResult cpu = training_step(Device::cpu(), DType::f64, in.images, in.labels, true);
  StepResult gpu = training_step(test::cuda_device(), DType::f64, in.images, in.labels, true);

  check_f64("logits", gpu.logits, cpu.logits);
  check_f64("aux logits", gpu.aux_logits, cpu.aux_logits);
  check_f64("loss", gpu.loss, cpu.loss);
  check_buffers(gpu.buffers, cpu.buffers, [&](const std::string& name) {
    check_f64("buffer " + name, gpu.buffers.at(name), cpu.buffers.at(name));
  });

  StepResult rounded = training_step(Device::cpu(), DType::f64, in.images, in.labels, true, true);
  const double sensitivity = largest_relative_error(rounded, cpu);
  REQUIRE(gpu.gradients.size() == cpu.gradients.size());
  REQUIRE(gpu.parameters.size() == cpu.parameters.size());
  for (const auto& [name, grad] : cpu.gradients) {
    check_f64_backward("gradient of " + name, gpu.gradients.at(name), grad, sensitivity);
  }
  for (const auto& [name, p] : cpu.parameters) {
    check_f64_backward("after SGD: " + name, gpu.parameters.at(name), p, sensitivity);
  }
}

TEST_CASE("a DeepLabV3-ResNet-50 forward on CUDA in float32 is as accurate as the CPU's", "[cpu]") {
  const StepInputs in = step_inputs();
  StepResult reference = training_step(Device::cpu(), DType::f64, in.images, in.labels, false);
  StepResult cpu = training_step(Device::cpu(), DType::f32, in.images, in.labels, false);
  StepResult gpu = training_step(test::cuda_device(), DType::f32, in.images, in.labels, false);

  check_as_accurate_as_cpu("logits", gpu.logits, cpu.logits, reference.logits);
  check_as_accurate_as_cpu("aux logits", gpu.aux_logits, cpu.aux_logits, reference.aux_logits);
  check_as_accurate_as_cpu("loss", gpu.loss, cpu.loss, reference.loss);
  check_buffers(gpu.buffers, reference.buffers, [&](const std::string& name) {
    check_as_accurate_as_cpu("buffer " + name, gpu.buffers.at(name), cpu.buffers.at(name), reference.buffers.at(name));
  });
}
