// The Adam update on CUDA against the CPU reference, both written once in kernels/common/adam.h, on
// the settings of tests/engine/adam_cases.h in f32 and f64: five steps with a second parameter that
// gets a gradient only every other step (its bias correction runs behind), then a step of a CUDA
// optimizer resumed from the CPU optimizer's state. The multiply-adds and the square root are
// compiled differently by the CPU build (x86-64-v3 FMA) and by nvcc, so steps are held to kF32 (kF64
// in f64), not to the bit.
#include <catch2/catch.hpp>

#include "engine/optim/adam.h"
#include "tests/cuda/cuda_compare.h"
#include "tests/engine/adam_cases.h"
#include "tests/engine/sgd_cases.h"

using namespace strata;

namespace {

struct Params {
  Tensor w, u;
  nn::NamedTensors named() const { return {{"w", w}, {"u", u}}; }
};

Params make_params(const Device& device, DType dtype) {
  Generator g(103);
  Params p{Tensor::randn({7, 3, 3, 5}, g, dtype).to(device), Tensor::randn({6}, g, dtype).to(device)};
  p.w.set_requires_grad(true);
  p.u.set_requires_grad(true);
  return p;
}

// Step t's gradients, the same on both devices; u has none at odd steps (Adam skips it).
void feed_gradients(Params& p, int t) {
  p.w.set_grad(test::sgd_gradient(p.w.shape(), p.w.dtype(), t, 0).to(p.w.device()));
  p.u.set_grad(t % 2 == 0 ? test::sgd_gradient(p.u.shape(), p.u.dtype(), t, 1).to(p.u.device()) : Tensor());
}

void check_same(const Params& gpu, const Params& cpu) {
  for (auto [g, c] : {std::pair{&gpu.w, &cpu.w}, std::pair{&gpu.u, &cpu.u}}) {
    CHECK(g->device().is_cuda());
    CHECK_CLOSE(g->to(Device::cpu()), *c);
  }
}

void check_adam_setting(const test::AdamSetting& s, DType dtype) {
  INFO(s.name << " in " << dtype_name(dtype));
  Params cpu = make_params(Device::cpu(), dtype), gpu = make_params(test::cuda_device(), dtype);
  optim::Adam adam_cpu(s.groups(cpu.named())), adam_gpu(s.groups(gpu.named()));
  for (int t = 0; t < 5; ++t) {
    INFO("step " << t);
    feed_gradients(cpu, t);
    feed_gradients(gpu, t);
    adam_cpu.step();
    adam_gpu.step();
    check_same(gpu, cpu);
  }
  // Resume a CUDA optimizer from the CPU optimizer's saved state (the moments move to the device).
  Metadata metadata;
  TensorMap state = adam_cpu.state_dict(metadata);
  Params resumed{gpu.w.detach().clone(), gpu.u.detach().clone()};
  resumed.w.set_requires_grad(true);
  resumed.u.set_requires_grad(true);
  optim::Adam adam_resumed(s.groups(resumed.named()));
  adam_resumed.load_state_dict(state, metadata);
  feed_gradients(cpu, 6);
  feed_gradients(resumed, 6);
  adam_cpu.step();
  adam_resumed.step();
  check_same(resumed, cpu);
}

}  // namespace

TEST_CASE("cuda Adam steps match the CPU's: betas, eps, weight decay, AMSGrad, skipped steps, resume", "[cpu]") {
  for (DType dtype : {DType::f32, DType::f64}) {
    for (const test::AdamSetting& s : test::adam_settings()) check_adam_setting(s, dtype);
  }
}
