// batch_norm and inplace_abn on CUDA against the CPU reference on every case of their shared table
// (tests/engine/batch_norm_cases.h): outputs, gradients of x, weight and bias, and the running
// statistics after the step; on shapes spanning many rows and channel tiles; a zero weight (In-place
// ABN's sign(0) = +1); In-place ABN's memory property on the device.
#include <catch2/catch.hpp>
#include <vector>

#include "engine/ops/batch_norm.h"
#include "engine/ops/inplace_abn.h"
#include "tests/cuda/cuda_compare.h"
#include "tests/engine/batch_norm_cases.h"

using namespace strata;
using test::check_cuda_matches_cpu;
using test::cuda_device;

namespace {

// check_cuda_matches_cpu on the case (in f32 and in f64), then the running statistics each backend
// updated in place: equal to kF32/kF64, changed by training, untouched by eval. The upstream gradient
// comes from another stream than the inputs (test::upstream_gradient_seed).
void check_norm_case(const test::NormCase& c) {
  const std::vector<Tensor> inputs = test::cuda_case_inputs(c.op);
  const Tensor& running_mean = inputs[3];
  // The running statistics each call received: CPU then CUDA, in f32 then in f64.
  std::vector<Tensor> seen;
  check_cuda_matches_cpu(
      c.op.name,
      [&](const std::vector<Tensor>& in) {
        seen.push_back(in[3]);
        seen.push_back(in[4]);
        return c.op.f(in);
      },
      inputs, test::upstream_gradient_seed(c.op.seed));
  if (!running_mean.defined()) return;
  REQUIRE(seen.size() == 8);
  for (size_t pass = 0; pass < seen.size(); pass += 4) {
    const Tensor &cpu_mean = seen[pass], &cpu_var = seen[pass + 1];
    const Tensor &gpu_mean = seen[pass + 2], &gpu_var = seen[pass + 3];
    INFO(c.op.name << ": running statistics after the step in " << dtype_name(cpu_mean.dtype()));
    CHECK(gpu_mean.device() == cuda_device());
    CHECK(gpu_mean.dtype() == cpu_mean.dtype());
    CHECK_CLOSE(gpu_mean.to(Device::cpu()), cpu_mean);
    CHECK_CLOSE(gpu_var.to(Device::cpu()), cpu_var);
    const std::vector<double> initial = running_mean.to(cpu_mean.dtype()).to_vector<double>();
    if (!c.training) {
      CHECK(cpu_mean.to_vector<double>() == initial);
      CHECK(gpu_mean.to_vector<double>() == initial);
    } else {
      CHECK(gpu_mean.to_vector<double>() != initial);
    }
  }
}

}  // namespace

TEST_CASE("cuda batch_norm and inplace_abn match the CPU on every case of their table", "[cpu]") {
  for (const test::NormCase& c : test::norm_cases()) check_norm_case(c);
}

TEST_CASE("cuda batch_norm and inplace_abn match the CPU over many rows and channel tiles", "[cpu]") {
  // 3*17*19 = 969 rows: several chunks of 256 rows; 70 channels: three tiles of 32.
  const test::NormSetting many{
      "train, affine, running stats, many rows and channel tiles", {3, 17, 19, 70}, true, true, true};
  for (const test::NamedNormLayer& layer :
       {test::batch_norm_layer(), test::inplace_abn_layer(Activation::leaky_relu, 0.01),
        test::inplace_abn_layer(Activation::identity, 0.0)}) {
    check_norm_case(test::norm_case(layer, many, 31));
  }
}

TEST_CASE("cuda inplace_abn takes sign(0) = +1 for a zero weight, as the CPU", "[cpu]") {
  for (bool training : {true, false}) {
    Generator g(32);
    Tensor x = test::leaf({2, 9, 7, 5}, g, 3.0, 5.0, DType::f32);
    std::vector<float> w = Tensor::uniform({5}, -1.5, 1.5, g).to_vector<float>();
    w[0] = 0.0f;
    Tensor weight = Tensor::from_vector(w, {5}).set_requires_grad(true);
    Tensor bias = test::leaf({5}, g, 0.5, 0.0, DType::f32);
    Tensor running_mean = Tensor::randn({5}, g), running_var = Tensor::uniform({5}, 0.5, 2.0, g);
    check_cuda_matches_cpu(training ? "train" : "eval",
                           [training](const auto& in) {
                             return inplace_abn(in[0], in[1], in[2], in[3], in[4], training, 0.1, 1e-5,
                                                Activation::leaky_relu, 0.01);
                           },
                           {x, weight, bias, running_mean, running_var});
  }
}

TEST_CASE("cuda batch_norm and inplace_abn reject bad input as on the CPU", "[cpu]") {
  const Device& gpu = cuda_device();
  Tensor x = Tensor::zeros({2, 3, 4, 5}, DType::f32, gpu);
  Tensor c5 = Tensor::ones({5}, DType::f32, gpu);
  CHECK_THROWS_WITH(batch_norm(x, c5, c5, Tensor(), Tensor(), false), Catch::Contains("eval"));
  CHECK_THROWS_WITH(batch_norm(x, Tensor::ones({5}), c5, c5, c5, true), Catch::Contains("devices must match"));
  CHECK_THROWS_WITH(batch_norm(Tensor::zeros({1, 5}, DType::f32, gpu), c5, c5, c5, c5, true),
                    Catch::Contains("more than one value per channel"));
  CHECK_THROWS_WITH(batch_norm(x.to(DType::f16), Tensor(), Tensor(), Tensor(), Tensor(), true),
                    Catch::Contains("batch_norm") && Catch::Contains("f32 or f64"));
  CHECK_THROWS_WITH(inplace_abn(x, c5, c5, c5, c5, true, 0.1, 1e-5, Activation::leaky_relu, 0.0),
                    Catch::Contains("negative_slope"));
}

TEST_CASE("cuda inplace_abn holds one activation less than batch_norm + leaky_relu on the device", "[cpu]") {
  // Beyond whole activations only per-channel statistics remain (a few C-sized vectors, each in a
  // 512-byte block of the caching allocator).
  test::check_inplace_abn_holds_one_activation_less(cuda_device(), 8, 4 * 512);
}
