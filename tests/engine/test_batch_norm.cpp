// batch_norm: finite-difference gradients (f64), PyTorch parity of outputs, gradients and updated
// running statistics (f32), determinism across thread counts, and bad input.
#include <catch2/catch.hpp>

#include <omp.h>

#include "engine/ops/batch_norm.h"
#include "tests/support/compare.h"
#include "tests/support/gradcheck.h"
#include "tests/support/torch_reference.h"

using namespace strata;
using strata::test::check_torch_case;
using strata::test::TorchCase;

namespace {

Tensor leaf(const Shape& shape, Generator& g, double scale_by = 1.0, double shift = 0.0) {
  std::vector<double> v = Tensor::randn(shape, g, DType::f64).to_vector<double>();
  for (double& e : v) e = e * scale_by + shift;
  Tensor t = Tensor::from_vector(v, shape);
  t.set_requires_grad(true);
  return t;
}

// Runs the PyTorch case `name` of group normalization through batch_norm, reading which optional
// tensors exist and the op parameters from the case, then checks the updated running statistics.
void check_batch_norm_case(const std::string& name) {
  TorchCase c("normalization", name);
  const bool affine = c.param("affine") != 0, running = c.param("running") != 0;
  std::vector<std::string> inputs{"x"};
  if (affine) inputs.insert(inputs.end(), {"weight", "bias"});
  if (running) inputs.insert(inputs.end(), {"running_mean", "running_var"});
  Tensor running_mean, running_var;
  check_torch_case("normalization", name, inputs, [&](const std::vector<Tensor>& in, const TorchCase& tc) {
    size_t k = 1;
    Tensor weight, bias;
    if (affine) {
      weight = in[k++];
      bias = in[k++];
    }
    if (running) {
      running_mean = in[k++];
      running_var = in[k++];
    }
    return batch_norm(in[0], weight, bias, running_mean, running_var, tc.param("training") != 0,
                      tc.param("momentum"), tc.param("eps"));
  });
  if (running) {
    INFO("PyTorch reference " << c.path());
    CHECK_CLOSE(running_mean, c["running_mean_after"]);
    CHECK_CLOSE(running_var, c["running_var_after"]);
  }
}

}  // namespace

TEST_CASE("batch_norm gradcheck in training: x, weight, bias", "[gradcheck]") {
  Generator g(21);
  Tensor x = leaf({2, 3, 4, 5}, g, 1.5, 0.4);
  Tensor weight = leaf({5}, g), bias = leaf({5}, g);
  Tensor running_mean = Tensor::zeros({5}, DType::f64), running_var = Tensor::ones({5}, DType::f64);
  CHECK_GRADCHECK(
      [](const std::vector<Tensor>& in) { return batch_norm(in[0], in[1], in[2], in[3], in[4], true); },
      {x, weight, bias, running_mean, running_var});
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return batch_norm(in[0], in[1], in[2], Tensor(), Tensor(), true); },
                  {leaf({7, 5}, g), weight, bias});
  CHECK_GRADCHECK(
      [](const std::vector<Tensor>& in) { return batch_norm(in[0], Tensor(), Tensor(), Tensor(), Tensor(), true); },
      {x});
}

TEST_CASE("batch_norm gradcheck in eval: x, weight, bias", "[gradcheck]") {
  Generator g(22);
  Tensor x = leaf({2, 3, 4, 5}, g, 1.5, 0.4);
  Tensor weight = leaf({5}, g), bias = leaf({5}, g);
  Tensor running_mean = Tensor::randn({5}, g, DType::f64);
  Tensor running_var = Tensor::uniform({5}, 0.5, 2.0, g, DType::f64);
  CHECK_GRADCHECK(
      [](const std::vector<Tensor>& in) { return batch_norm(in[0], in[1], in[2], in[3], in[4], false, 0.1, 1e-3); },
      {x, weight, bias, running_mean, running_var});
}

TEST_CASE("batch_norm matches PyTorch: outputs, gradients and running statistics", "[torch]") {
  for (const char* name : {"batch_norm_train", "batch_norm_train_momentum", "batch_norm_train_no_affine",
                           "batch_norm_train_no_running", "batch_norm_train_rank2", "batch_norm_eval",
                           "batch_norm_eval_rank2", "batch_norm_eval_no_affine"}) {
    SECTION(name) { check_batch_norm_case(name); }
  }
}

TEST_CASE("batch_norm statistics and gradients do not depend on the thread count", "[cpu]") {
  // 2*64*64 = 8192 rows of 4 channels: several reduction chunks, so threads really split the sums.
  Generator g(23);
  Tensor x = Tensor::randn({2, 64, 64, 4}, g);
  Tensor weight = Tensor::uniform({4}, 0.5, 1.5, g), bias = Tensor::randn({4}, g);
  Tensor grad_out = Tensor::randn(x.shape(), g);
  auto run = [&](int threads) {
    int previous = omp_get_max_threads();
    omp_set_num_threads(threads);
    Tensor xl = x.clone(), wl = weight.clone();
    xl.set_requires_grad(true);
    wl.set_requires_grad(true);
    Tensor running_mean = Tensor::zeros({4}), running_var = Tensor::ones({4});
    Tensor y = batch_norm(xl, wl, bias, running_mean, running_var, true);
    y.backward(grad_out);
    omp_set_num_threads(previous);
    return std::vector<std::vector<float>>{y.to_vector<float>(), xl.grad().to_vector<float>(),
                                           wl.grad().to_vector<float>(), running_var.to_vector<float>()};
  };
  CHECK(run(1) == run(2));
}

TEST_CASE("batch_norm rejects bad input clearly", "[cpu]") {
  Tensor x = Tensor::zeros({2, 3, 4, 5});
  Tensor c5 = Tensor::zeros({5}), ones5 = Tensor::ones({5});
  CHECK_THROWS_WITH(batch_norm(Tensor::zeros({2, 3, 5}), c5, c5, c5, ones5, true),
                    Catch::Contains("batch_norm") && Catch::Contains("(N,H,W,C) or (N,C)") &&
                        Catch::Contains("f32[2,3,5]"));
  CHECK_THROWS_WITH(batch_norm(x.to(DType::i32), c5, c5, c5, ones5, true),
                    Catch::Contains("batch_norm") && Catch::Contains("f32 or f64"));
  CHECK_THROWS_WITH(batch_norm(x, Tensor::ones({4}), c5, c5, ones5, true),
                    Catch::Contains("batch_norm") && Catch::Contains("weight") && Catch::Contains("[5]") &&
                        Catch::Contains("f32[4]"));
  CHECK_THROWS_WITH(batch_norm(x, c5, Tensor(), c5, ones5, true),
                    Catch::Contains("weight and bias must both be given"));
  CHECK_THROWS_WITH(batch_norm(x, c5, c5, c5, Tensor(), true),
                    Catch::Contains("running_mean and running_var must both be given"));
  CHECK_THROWS_WITH(batch_norm(x, c5, c5, Tensor::zeros({5}, DType::f64), Tensor::ones({5}, DType::f64), true),
                    Catch::Contains("running_mean") && Catch::Contains("dtypes must match"));
  CHECK_THROWS_WITH(batch_norm(x, c5, c5, Tensor(), Tensor(), false),
                    Catch::Contains("batch_norm") && Catch::Contains("eval") && Catch::Contains("running_mean"));
  CHECK_THROWS_WITH(batch_norm(Tensor::zeros({1, 1, 1, 5}), c5, c5, c5, ones5, true),
                    Catch::Contains("more than one value per channel") && Catch::Contains("f32[1,1,1,5]"));
  CHECK_THROWS_WITH(batch_norm(x, c5, c5, c5, ones5, true, 0.1, -1.0), Catch::Contains("eps"));
  CHECK_THROWS_WITH(batch_norm(Tensor(), c5, c5, c5, ones5, true), Catch::Contains("undefined"));
}
