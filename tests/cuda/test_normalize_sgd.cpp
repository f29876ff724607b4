// normalize_image and the SGD update on CUDA against the CPU reference, both written once in
// kernels/common (normalize.h, sgd.h), on the cases of tests/engine/normalize_cases.h and the
// settings of tests/engine/sgd_cases.h. normalize_image has no multiply-add a compiler could fuse, so
// it is compared bit for bit; the SGD update's multiply-adds are fused differently by the CPU build
// (x86-64-v3 FMA) and by nvcc, so its steps are held to kF32 (kF64 in f64): several steps with
// momentum, dampening, Nesterov and weight decay, a parameter without gradient, and a resumed state,
// in f32 and f64.
#include <catch2/catch.hpp>

#include "engine/ops/normalize.h"
#include "engine/optim/sgd.h"
#include "tests/cuda/cuda_compare.h"
#include "tests/engine/normalize_cases.h"
#include "tests/engine/sgd_cases.h"

using namespace strata;

TEST_CASE("cuda normalize_image equals the CPU bit for bit", "[cpu]") {
  for (const test::NormalizeCase& c : test::normalize_cases()) {
    INFO(c.name);
    Tensor y_gpu = normalize_image(c.images.to(test::cuda_device()), c.mean, c.std);
    CHECK(y_gpu.device() == test::cuda_device());
    CHECK(y_gpu.dtype() == DType::f32);
    CHECK(y_gpu.to_vector<float>() == normalize_image(c.images, c.mean, c.std).to_vector<float>());
  }
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
  m.conv.set_grad(test::sgd_gradient(m.conv.shape(), m.conv.dtype(), t, 0).to(m.conv.device()));
  m.bias.set_grad(test::sgd_gradient(m.bias.shape(), m.bias.dtype(), t, 1).to(m.bias.device()));
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

// Four steps of the setting on both devices in `dtype`, then a step of a CUDA optimizer resumed from
// the CPU optimizer's state.
void check_sgd_setting(const test::SgdSetting& s, DType dtype) {
  INFO(s.name << " in " << dtype_name(dtype));
  Model cpu = make_model(Device::cpu(), dtype), gpu = make_model(test::cuda_device(), dtype);
  auto group = [&](const Model& m) { return s.groups(m.named()); };
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
  for (DType dtype : {DType::f32, DType::f64}) {
    for (const test::SgdSetting& s : test::sgd_settings()) check_sgd_setting(s, dtype);
  }
}
