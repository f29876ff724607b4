// batch_norm and inplace_abn on CUDA against the CPU reference: outputs, gradients of x, weight and
// bias, and the running statistics after the step, in training and eval, with and without the
// affine parameters, for (N,H,W,C) and (N,C) inputs; In-place ABN's memory property on the device.
#include <catch2/catch.hpp>

#include <functional>
#include <string>
#include <vector>

#include "engine/ops/batch_norm.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/inplace_abn.h"
#include "tests/cuda/cuda_compare.h"

using namespace strata;
using test::check_cuda_matches_cpu;
using test::cuda_device;
using test::random_leaf;

namespace {

struct NormCase {
  std::string name;
  Shape shape;
  bool training;
  bool affine;
  bool running;  // running statistics given
  bool weight_grad = true;
};

// x shifted and scaled away from N(0, 1), as activations are: the two-pass statistics must hold.
Tensor activation_leaf(const Shape& shape, Generator& g) {
  std::vector<float> v = Tensor::randn(shape, g).to_vector<float>();
  for (float& e : v) e = 3.0f * e + 5.0f;
  Tensor t = Tensor::from_vector(v, shape);
  t.set_requires_grad(true);
  return t;
}

// Runs `layer(x, weight, bias, running_mean, running_var)` through check_cuda_matches_cpu (in f32 and
// in f64) and then compares the running statistics each backend updated in place.
void check_norm_case(const NormCase& c, Generator& g,
                     const std::function<Tensor(const std::vector<Tensor>&)>& layer) {
  const int64_t channels = c.shape.back();
  Tensor weight, bias, running_mean, running_var;
  if (c.affine) {
    // Weights of both signs (In-place ABN uses |w|) and one exactly zero.
    std::vector<float> w = Tensor::uniform({channels}, -1.5, 1.5, g).to_vector<float>();
    w[0] = 0.0f;
    weight = Tensor::from_vector(w, {channels});
    weight.set_requires_grad(c.weight_grad);
    bias = random_leaf({channels}, g);
  }
  if (c.running) {
    running_mean = Tensor::randn({channels}, g);
    running_var = Tensor::uniform({channels}, 0.5, 2.0, g);
  }
  // The running statistics each call received: CPU then CUDA, in f32 then in f64.
  std::vector<Tensor> seen;
  check_cuda_matches_cpu(
      c.name,
      [&](const std::vector<Tensor>& in) {
        seen.push_back(in[3]);
        seen.push_back(in[4]);
        return layer(in);
      },
      {activation_leaf(c.shape, g), weight, bias, running_mean, running_var});
  if (!c.running) return;
  REQUIRE(seen.size() == 8);
  for (size_t pass = 0; pass < seen.size(); pass += 4) {
    const Tensor &cpu_mean = seen[pass], &cpu_var = seen[pass + 1];
    const Tensor &gpu_mean = seen[pass + 2], &gpu_var = seen[pass + 3];
    INFO(c.name << ": running statistics after the step in " << dtype_name(cpu_mean.dtype()));
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

std::vector<NormCase> norm_cases() {
  return {
      {"train, affine, running stats, NHWC", {2, 9, 7, 5}, true, true, true},
      {"train, no affine, running stats, NHWC", {2, 9, 7, 5}, true, false, true},
      {"train, affine, no running stats, NHWC", {3, 5, 4, 6}, true, true, false},
      {"train, affine, running stats, many rows and channel tiles", {3, 17, 19, 70}, true, true, true},
      {"train, affine, running stats, (N,C)", {12, 37}, true, true, true},
      {"train, no affine, no running stats, (N,C)", {5, 3}, true, false, false},
      {"eval, affine, NHWC", {2, 9, 7, 5}, false, true, true},
      {"eval, no affine, NHWC", {2, 6, 5, 40}, false, false, true},
      {"eval, affine, weight without grad (x not kept)", {2, 9, 7, 5}, false, true, true, false},
      {"eval, affine, (N,C)", {4, 33}, false, true, true},
  };
}

}  // namespace

TEST_CASE("cuda batch_norm matches the CPU: outputs, gradients and running statistics", "[cpu]") {
  Generator g(31);
  for (const NormCase& c : norm_cases()) {
    check_norm_case(c, g, [&c](const std::vector<Tensor>& in) {
      return batch_norm(in[0], in[1], in[2], in[3], in[4], c.training, 0.1, 1e-5);
    });
  }
}

TEST_CASE("cuda inplace_abn matches the CPU: leaky ReLU and identity, training and eval", "[cpu]") {
  Generator g(32);
  for (Activation activation : {Activation::leaky_relu, Activation::identity}) {
    for (NormCase c : norm_cases()) {
      c.name += activation == Activation::leaky_relu ? ", leaky_relu" : ", identity";
      check_norm_case(c, g, [&c, activation](const std::vector<Tensor>& in) {
        return inplace_abn(in[0], in[1], in[2], in[3], in[4], c.training, 0.1, 1e-5, activation, 0.01);
      });
    }
  }
  // A large slope, so the inverse of the activation matters as much as its forward.
  NormCase steep{"train, slope 0.5", {2, 8, 6, 9}, true, true, true};
  check_norm_case(steep, g, [](const std::vector<Tensor>& in) {
    return inplace_abn(in[0], in[1], in[2], in[3], in[4], true, 0.1, 1e-5, Activation::leaky_relu, 0.5);
  });
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
  const Device& gpu = cuda_device();
  Generator g(33);
  const int64_t channels = 8;
  Tensor input = Tensor::randn({2, 16, 16, channels}, g).to(gpu);
  input.set_requires_grad(true);
  Tensor weight = Tensor::uniform({channels}, 0.5, 1.5, g).to(gpu), bias = Tensor::randn({channels}, g).to(gpu);
  weight.set_requires_grad(true);
  bias.set_requires_grad(true);
  Tensor running_mean = Tensor::zeros({channels}, DType::f32, gpu);
  Tensor running_var = Tensor::ones({channels}, DType::f32, gpu);
  const int64_t activation = static_cast<int64_t>(input.nbytes());

  // Device bytes still allocated after the layer returns and the caller has dropped its input x (a
  // non-leaf activation, as a convolution's output is), while the layer's output and graph live.
  auto bytes_held = [&](const std::function<Tensor(const Tensor&)>& layer) {
    int64_t before = memory_stats(gpu).allocated_bytes;
    Tensor y;
    {
      Tensor x = scale(input, 1.0);
      y = layer(x);
    }
    int64_t held = memory_stats(gpu).allocated_bytes - before;
    y.backward(Tensor::ones(y.shape(), DType::f32, gpu));
    CHECK(input.grad().defined());
    input.set_grad(Tensor());
    return held;
  };
  int64_t held_abn = bytes_held([&](const Tensor& x) {
    return inplace_abn(x, weight, bias, running_mean, running_var, true, 0.1, 1e-5, Activation::leaky_relu, 0.01);
  });
  int64_t held_composed = bytes_held([&](const Tensor& x) {
    return leaky_relu(batch_norm(x, weight, bias, running_mean, running_var, true), 0.01);
  });
  INFO("activation " << activation << " bytes; held on the device: inplace_abn " << held_abn
                     << ", batch_norm + leaky_relu " << held_composed);
  // Beyond whole activations only per-channel statistics remain (a few C-sized vectors, each in a
  // 512-byte block of the caching allocator).
  const int64_t per_channel_slack = 4 * 512;
  CHECK(held_abn >= activation);
  CHECK(held_abn < activation + per_channel_slack);
  CHECK(held_composed - held_abn >= activation);
  CHECK(held_composed - held_abn < activation + per_channel_slack);
}
