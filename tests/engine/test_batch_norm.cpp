// batch_norm: finite-difference gradients (f64) on every case of the table it shares with inplace_abn
// (tests/engine/batch_norm_cases.h, both ops' cases), PyTorch parity of outputs, gradients and updated
// running statistics (f32), determinism across thread counts, and bad input.
#include <omp.h>

#include <catch2/catch.hpp>

#include "engine/ops/batch_norm.h"
#include "tests/engine/batch_norm_cases.h"
#include "tests/support/gradcheck.h"

using namespace strata;
using strata::test::TorchCase;

TEST_CASE("batch_norm and inplace_abn gradcheck: every case of their shared table", "[gradcheck]") {
  test::check_gradients(test::normalization_cases());
}

TEST_CASE("batch_norm matches PyTorch: outputs, gradients and running statistics", "[torch]") {
  for (const char* name : {"batch_norm_train", "batch_norm_train_momentum", "batch_norm_train_no_affine",
                           "batch_norm_train_no_running", "batch_norm_train_rank2", "batch_norm_eval",
                           "batch_norm_eval_rank2", "batch_norm_eval_no_affine"}) {
    SECTION(name) {
      test::check_normalization_torch_case(name, [](const std::vector<Tensor>& in, const TorchCase& c) {
        return batch_norm(in[0], in[1], in[2], in[3], in[4], c.param("training") != 0, c.param("momentum"),
                          c.param("eps"));
      });
    }
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
