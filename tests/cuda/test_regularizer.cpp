// The weight regularisers' ops on CUDA against the CPU reference (engine/ops/regularizer.h): the
// penalty's value and gradient, and several iterations of importance_update for EWC, PI and RW (the
// iteration that only remembers, path updates every third iteration for RW), in f32 and f64. Both
// backends run kernels/common/regularizer.h's functions, whose multiply-adds the CPU build and nvcc
// fuse differently: held to the tolerance of the dtype.
#include <catch2/catch.hpp>

#include "engine/ops/regularizer.h"
#include "tests/cuda/cuda_compare.h"
#include "tests/support/leaves.h"

using namespace strata;

TEST_CASE("cuda weighted_squared_distance matches the CPU, value and gradient", "[cpu]") {
  Generator g(5);
  for (const Shape& shape : {Shape{1}, Shape{300}, Shape{16, 3, 3, 8}}) {
    const Tensor theta = test::leaf(shape, g, 1.0, 0.0, DType::f32);
    const Tensor anchor = Tensor::randn(shape, g);
    const Tensor weight = test::positive_leaf(shape, g, 0.0001, 1.0, DType::f32).detach();
    test::check_cuda_matches_cpu(
        "weighted_squared_distance " + shape_str(shape),
        [](const std::vector<Tensor>& in) { return weighted_squared_distance(in[0], in[1], in[2]); },
        {theta, anchor, weight});
  }
}

TEST_CASE("cuda importance_update matches the CPU over several iterations: EWC, PI, RW", "[cpu]") {
  for (DType dtype : {DType::f32, DType::f64}) {
    for (ImportancePath path : {ImportancePath::none, ImportancePath::path_integral, ImportancePath::riemannian_walk}) {
      INFO(dtype_name(dtype) << ", path kind " << static_cast<int>(path));
      Generator g(17);
      const Shape shape = {5, 7, 3};
      const bool fisher = path != ImportancePath::path_integral;
      Tensor cpu_fisher = Tensor::ones(shape, dtype), cpu_path = Tensor::zeros(shape, dtype),
             cpu_previous = Tensor::zeros(shape, dtype);
      Tensor gpu_fisher = cpu_fisher.to(test::cuda_device()), gpu_path = cpu_path.to(test::cuda_device()),
             gpu_previous = cpu_previous.to(test::cuda_device());
      for (int t = 0; t < 7; ++t) {
        const Tensor theta = Tensor::randn(shape, g, dtype), grad = Tensor::randn(shape, g, dtype);
        const bool path_step = path == ImportancePath::riemannian_walk ? t % 3 == 0 : true;
        ImportanceUpdate u{0.9, fisher, path, path != ImportancePath::none && path_step && t > 0,
                           path != ImportancePath::none && path_step};
        importance_update(cpu_fisher, cpu_path, cpu_previous, theta, grad, u);
        importance_update(gpu_fisher, gpu_path, gpu_previous, theta.to(test::cuda_device()),
                          grad.to(test::cuda_device()), u);
      }
      CHECK_CLOSE(gpu_fisher.to(Device::cpu()), cpu_fisher);
      CHECK_CLOSE(gpu_path.to(Device::cpu()), cpu_path);
      CHECK_CLOSE(gpu_previous.to(Device::cpu()), cpu_previous);
    }
  }
}

TEST_CASE("cuda importance_update_and_penalty matches the CPU: importance, penalty value, penalised gradient",
          "[cpu]") {
  for (DType dtype : {DType::f32, DType::f64}) {
    for (ImportancePath path : {ImportancePath::none, ImportancePath::path_integral, ImportancePath::riemannian_walk}) {
      INFO(dtype_name(dtype) << ", path kind " << static_cast<int>(path));
      Generator g(29);
      const Shape shape = {4, 9};
      const Device gpu = test::cuda_device();
      const Tensor anchor = Tensor::randn(shape, g, dtype), weight = Tensor::uniform(shape, 0.0, 1.0, g, dtype);
      Tensor cpu_fisher = Tensor::ones(shape, dtype), cpu_path = Tensor::zeros(shape, dtype),
             cpu_previous = Tensor::zeros(shape, dtype);
      Tensor gpu_fisher = cpu_fisher.to(gpu), gpu_path = cpu_path.to(gpu), gpu_previous = cpu_previous.to(gpu);
      for (int t = 0; t < 5; ++t) {
        INFO("iteration " << t);
        const Tensor theta = Tensor::randn(shape, g, dtype), grad = Tensor::randn(shape, g, dtype);
        const bool on = path != ImportancePath::none;
        ImportanceUpdate u{0.9, path != ImportancePath::path_integral, path, on && t > 0, on};
        Tensor cpu_grad, gpu_grad;
        const Tensor cpu_value = importance_update_and_penalty(cpu_fisher, cpu_path, cpu_previous, theta, grad, anchor,
                                                               weight, u, 100.0, cpu_grad);
        const Tensor gpu_value =
            importance_update_and_penalty(gpu_fisher, gpu_path, gpu_previous, theta.to(gpu), grad.to(gpu),
                                          anchor.to(gpu), weight.to(gpu), u, 100.0, gpu_grad);
        CHECK_CLOSE(gpu_value.to(Device::cpu()), cpu_value);
        CHECK_CLOSE(gpu_grad.to(Device::cpu()), cpu_grad);
      }
      CHECK_CLOSE(gpu_fisher.to(Device::cpu()), cpu_fisher);
      CHECK_CLOSE(gpu_path.to(Device::cpu()), cpu_path);
      CHECK_CLOSE(gpu_previous.to(Device::cpu()), cpu_previous);
    }
  }
}
