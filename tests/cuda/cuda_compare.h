// The CUDA backend against the CPU reference. check_cuda_matches_cpu(f, inputs) runs f on the CPU
// inputs and on copies of them on the CUDA device, compares the outputs (the tolerance of their dtype,
// printing the worst element on failure), backpropagates the same random upstream gradient through
// both, and compares the gradient of every input that requires one. It does so twice when every
// floating input is f32: with the inputs as given (kF32), and with the floating inputs converted to
// f64 (kF64), so each op's f64 kernels are checked on the same cases as its f32 kernels.
#pragma once

#include <catch2/catch.hpp>

#include <functional>
#include <string>
#include <vector>

#include "engine/tensor.h"
#include "tests/cuda/cuda_device.h"
#include "tests/support/compare.h"
#include "tests/support/leaves.h"
#include "tests/support/op_cases.h"

namespace strata::test {

using DeviceFn = std::function<Tensor(const std::vector<Tensor>& inputs)>;

// One comparison of f on `inputs` (CPU) against f on copies of them on the CUDA device.
inline void check_cuda_matches_cpu_in(const DeviceFn& f, const std::vector<Tensor>& inputs, uint64_t seed) {
  std::vector<Tensor> cpu_inputs, gpu_inputs;
  for (const Tensor& t : inputs) {
    Tensor c = t.defined() ? t.detach().clone() : Tensor();
    Tensor g = t.defined() ? t.detach().to(cuda_device()) : Tensor();
    if (t.defined() && t.requires_grad()) {
      c.set_requires_grad(true);
      g.set_requires_grad(true);
    }
    cpu_inputs.push_back(c);
    gpu_inputs.push_back(g);
  }
  Tensor y_cpu = f(cpu_inputs), y_gpu = f(gpu_inputs);
  REQUIRE(y_gpu.device() == cuda_device());
  CHECK_CLOSE(y_gpu.to(Device::cpu()), y_cpu);
  if (!y_cpu.requires_grad()) return;
  Generator generator(seed);
  Tensor grad = Tensor::randn(y_cpu.shape(), generator, y_cpu.dtype());
  y_cpu.backward(grad);
  y_gpu.backward(grad.to(cuda_device()));
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!cpu_inputs[i].defined() || !cpu_inputs[i].requires_grad()) continue;
    INFO("gradient of input " << i);
    REQUIRE(gpu_inputs[i].grad().defined());
    CHECK(gpu_inputs[i].grad().device() == cuda_device());
    CHECK_CLOSE(gpu_inputs[i].grad().to(Device::cpu()), cpu_inputs[i].grad());
  }
}

inline void check_cuda_matches_cpu(const std::string& what, const DeviceFn& f, const std::vector<Tensor>& inputs,
                                   uint64_t seed = 7) {
  bool all_f32 = true, any_floating = false;
  for (const Tensor& t : inputs) {
    if (!t.defined() || !is_floating(t.dtype())) continue;
    any_floating = true;
    all_f32 = all_f32 && t.dtype() == DType::f32;
  }
  {
    INFO(what);
    check_cuda_matches_cpu_in(f, inputs, seed);
  }
  if (!any_floating || !all_f32) return;
  std::vector<Tensor> f64_inputs;
  for (const Tensor& t : inputs) {
    if (!t.defined() || !is_floating(t.dtype())) {
      f64_inputs.push_back(t);
      continue;
    }
    Tensor d = t.detach().to(DType::f64);
    if (t.requires_grad()) d.set_requires_grad(true);
    f64_inputs.push_back(d);
  }
  INFO(what << ", in f64");
  check_cuda_matches_cpu_in(f, f64_inputs, seed);
}

// A float32 leaf with N(0, 1) values that requires grad.
inline Tensor random_leaf(const Shape& shape, Generator& generator) {
  Tensor t = Tensor::randn(shape, generator);
  t.set_requires_grad(true);
  return t;
}

// A case's f64 inputs converted to f32 (leaves stay leaves; other inputs pass unchanged).
inline std::vector<Tensor> cuda_case_inputs(const OpCase& c) {
  std::vector<Tensor> inputs;
  for (const Tensor& t : case_inputs(c)) {
    if (!t.defined() || t.dtype() != DType::f64) {
      inputs.push_back(t);
    } else if (t.requires_grad()) {
      inputs.push_back(as_leaf(t, DType::f32));
    } else {
      inputs.push_back(t.to(DType::f32));
    }
  }
  return inputs;
}

// The seed of the upstream gradient for a case whose inputs come from `seed`: another stream, since a
// gradient drawn from the inputs' own seed repeats their values (for batch norm in training it would
// be an affine function of x, whose x gradient is zero up to rounding: nothing left to compare).
inline uint64_t upstream_gradient_seed(uint64_t seed) { return seed ^ 0x9e3779b97f4a7c15ULL; }

// check_cuda_matches_cpu for every case of an op's table (tests/support/op_cases.h): the case's
// inputs in f32 (cuda_case_inputs), compared in f32 and then in f64.
inline void check_cuda_matches_cpu(const OpCases& cases) {
  for (const OpCase& c : cases) {
    check_cuda_matches_cpu(c.name, c.f, cuda_case_inputs(c), upstream_gradient_seed(c.seed));
  }
}

}  // namespace strata::test
