// inplace_abn: parity with a PyTorch composition of the same formula (f32), the memory it saves over
// batch_norm + leaky_relu, and bad input. Its finite-difference gradients (f64, through the backward
// that recomputes from the output) are checked on the table it shares with batch_norm
// (tests/engine/batch_norm_cases.h), by tests/engine/test_batch_norm.cpp.
#include <catch2/catch.hpp>

#include "engine/ops/batch_norm.h"
#include "engine/ops/inplace_abn.h"
#include "tests/engine/batch_norm_cases.h"

using namespace strata;
using strata::test::TorchCase;

TEST_CASE("inplace_abn matches PyTorch: outputs, gradients and running statistics", "[torch]") {
  for (const char* name : {"inplace_abn_train_leaky", "inplace_abn_train_leaky_slope", "inplace_abn_train_identity",
                           "inplace_abn_train_no_affine", "inplace_abn_train_no_running", "inplace_abn_train_rank2",
                           "inplace_abn_eval_leaky", "inplace_abn_eval_identity"}) {
    SECTION(name) {
      test::check_normalization_torch_case(name, [](const std::vector<Tensor>& in, const TorchCase& c) {
        const Activation activation =
            c.text("activation") == "identity" ? Activation::identity : Activation::leaky_relu;
        return inplace_abn(in[0], in[1], in[2], in[3], in[4], c.param("training") != 0, c.param("momentum"),
                           c.param("eps"), activation, c.param("slope"));
      });
    }
  }
}

TEST_CASE("inplace_abn holds one activation less than batch_norm + leaky_relu", "[cpu]") {
  // Beyond whole activations only per-channel statistics remain (a few C-sized vectors).
  const int64_t channels = 8;
  test::check_inplace_abn_holds_one_activation_less(Device::cpu(), channels,
                                                    16 * channels * static_cast<int64_t>(sizeof(double)));
}

TEST_CASE("inplace_abn rejects bad input clearly", "[cpu]") {
  Tensor x = Tensor::zeros({2, 3, 4, 5});
  Tensor c5 = Tensor::ones({5});
  CHECK_THROWS_WITH(inplace_abn(x, c5, c5, c5, c5, true, 0.1, 1e-5, Activation::leaky_relu, 0.0),
                    Catch::Contains("inplace_abn") && Catch::Contains("negative_slope must be > 0"));
  CHECK_THROWS_WITH(inplace_abn(x, c5, c5, c5, c5, true, 0.1, 1e-5, Activation::leaky_relu, -0.01),
                    Catch::Contains("negative_slope"));
  CHECK_NOTHROW(inplace_abn(x, c5, c5, c5, c5, true, 0.1, 1e-5, Activation::identity, 0.0));
  CHECK_THROWS_WITH(inplace_abn(Tensor::zeros({2, 5, 1}), c5, c5, c5, c5, true),
                    Catch::Contains("inplace_abn") && Catch::Contains("(N,H,W,C) or (N,C)"));
  CHECK_THROWS_WITH(inplace_abn(x, Tensor::ones({5}, DType::f64), Tensor::ones({5}, DType::f64), c5, c5, true),
                    Catch::Contains("inplace_abn") && Catch::Contains("weight") && Catch::Contains("dtypes must match"));
  CHECK_THROWS_WITH(inplace_abn(x, c5, c5, Tensor(), Tensor(), false),
                    Catch::Contains("inplace_abn") && Catch::Contains("running_mean"));
  CHECK_THROWS_WITH(inplace_abn(Tensor::zeros({1, 5}), c5, c5, c5, c5, true),
                    Catch::Contains("inplace_abn") && Catch::Contains("more than one value per channel"));
  CHECK_THROWS_WITH(inplace_abn(x, c5, c5, Tensor::ones({3}), c5, true),
                    Catch::Contains("running_mean") && Catch::Contains("f32[3]"));
}
