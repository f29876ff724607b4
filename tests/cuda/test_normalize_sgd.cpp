// normalize_image and the SGD update on CUDA against the CPU reference, both written once in
// kernels/common (normalize.h, sgd.h). normalize_image has no multiply-add a compiler could fuse, so
// it is compared bit for bit; the SGD update's multiply-adds are fused differently by the CPU build
// (x86-64-v3 FMA) and by nvcc, so its steps are held to kF32 (kF64 in f64): several steps with
// momentum, dampening, Nesterov and weight decay, a parameter without gradient, and a resumed state,
// in f32 and f64.
#include <catch2/catch.hpp>

#include "engine/ops/normalize.h"
#include "engine/optim/sgd.h"
#include "tests/cuda/cuda_compare.h"

using namespace strata;

TEST_CASE("cuda normalize_image equals the CPU bit for bit", "[cpu]") {
  Generator g(101);
  std::vector<double> u = Tensor::uniform({2, 37, 41, 3}, 0.0, 256.0, g, DType::f64).to_vector<double>();
  std::vector<uint8_t> pixels(u.size());
  for (size_t i = 0; i < u.size(); ++i) pixels[i] = static_cast<uint8_t>(u[i]);
  pixels[0] = 0;
  pixels[1] = 255;
  Tensor images = Tensor::from_vector(pixels, {2, 37, 41, 3});
  Tensor y_gpu = normalize_image(images.to(test::cuda_device()));
  CHECK(y_gpu.device() == test::cuda_device());
  CHECK(y_gpu.dtype() == DType::f32);
  CHECK(y_gpu.to_vector<float>() == normalize_image(images).to_vector<float>());
  const std::array<float, 3> mean = {0.5f, 0.25f, 0.125f}, std = {0.5f, 2.0f, 0.3f};
  CHECK(normalize_image(images.to(test::cuda_device()), mean, std).to_vector<float>() ==
        normalize_image(images, mean, std).to_vector<float>());
}

namespace {

struct Model {
  Tensor conv, bias, frozen;
  nn::NamedTensors named() const { return {{"conv", conv}, {"bias", bias}, {"frozen", frozen}}; }
};

Model make_model(const Device& device, DType dtype) {
  Generator g(102);
  Model m{Tensor::randn({8, 3, 3, 5}, g, dtype).to(device), Tensor::randn({8}, g, dtype).to(device),
          Tensor::randn({4}, g, dtype).to(device)};
  for (Tensor* t : {&m.conv, &m.bias, &m.frozen}) t->set_requires_grad(true);
  return m;
}

// Step t's gradients, the same on both devices; "frozen" never gets one (SGD skips it).
void feed_gradients(Model& m, int t) {
  Generator g(200 + static_cast<uint64_t>(t));
  m.conv.set_grad(Tensor::randn(m.conv.shape(), g, m.conv.dtype()).to(m.conv.device()));
  m.bias.set_grad(Tensor::randn(m.bias.shape(), g, m.bias.dtype()).to(m.bias.device()));
}

void check_same(const Tensor& gpu, const Tensor& cpu) {
  CHECK(gpu.device().is_cuda());
  CHECK_CLOSE(gpu.to(Device::cpu()), cpu);
}

void check_same(const Model& gpu, const Model& cpu) {
  check_same(gpu.conv, cpu.conv);
  check_same(gpu.bias, cpu.bias);
  check_same(gpu.frozen, cpu.frozen);
}

struct SgdSetting {
  const char* name;
  double lr, momentum, weight_decay;
  bool nesterov;
  double dampening;
};

// Four steps of the setting on both devices in `dtype`, then a step of a CUDA optimizer resumed from
// the CPU optimizer's state.
void check_sgd_setting(const SgdSetting& s, DType dtype) {
  INFO(s.name << " in " << dtype_name(dtype));
  Model cpu = make_model(Device::cpu(), dtype), gpu = make_model(test::cuda_device(), dtype);
  auto group = [&](const Model& m) {
    optim::ParamGroup g{"all", m.named(), s.lr, s.momentum, s.weight_decay, s.nesterov, s.dampening};
    return std::vector<optim::ParamGroup>{g};
  };
  optim::SGD sgd_cpu(group(cpu)), sgd_gpu(group(gpu));
  optim::PolyLR poly_cpu(sgd_cpu, 10), poly_gpu(sgd_gpu, 10);
  for (int t = 0; t < 4; ++t) {
    INFO("step " << t);
    feed_gradients(cpu, t);
    feed_gradients(gpu, t);
    sgd_cpu.step();
    sgd_gpu.step();
    poly_cpu.step();
    poly_gpu.step();
    check_same(gpu, cpu);
  }
  // Resume the CUDA optimizer from the CPU optimizer's saved state (buffers move to the device).
  Metadata metadata;
  TensorMap state = sgd_cpu.state_dict(metadata);
  Model resumed = make_model(test::cuda_device(), dtype);
  resumed.conv = gpu.conv.detach().clone();
  resumed.bias = gpu.bias.detach().clone();
  resumed.conv.set_requires_grad(true);
  resumed.bias.set_requires_grad(true);
  optim::SGD sgd_resumed(group(resumed));
  sgd_resumed.load_state_dict(state, metadata);
  for (auto& g : sgd_resumed.groups()) g.lr = sgd_cpu.groups()[0].lr;
  feed_gradients(cpu, 4);
  feed_gradients(resumed, 4);
  sgd_cpu.step();
  sgd_resumed.step();
  check_same(resumed, cpu);
}

}  // namespace

TEST_CASE("cuda SGD steps match the CPU's: momentum, dampening, Nesterov, weight decay, resume", "[cpu]") {
  const std::vector<SgdSetting> settings = {
      {"plain", 0.05, 0, 0, false, 0},
      {"weight decay", 0.05, 0, 1e-2, false, 0},
      {"momentum + dampening", 0.05, 0.5, 0, false, 0.25},
      {"Nesterov + weight decay (MiB)", 0.01, 0.9, 1e-4, true, 0},
  };
  for (DType dtype : {DType::f32, DType::f64}) {
    for (const SgdSetting& s : settings) check_sgd_setting(s, dtype);
  }
}
