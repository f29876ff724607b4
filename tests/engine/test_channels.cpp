// concat and slice along the channel dimension: finite-difference gradients (f64) on the cases of
// tests/engine/channels_cases.h, PyTorch parity (forward and backward, f32) and input validation.
#include <catch2/catch.hpp>
#include <vector>

#include "engine/ops/channels.h"
#include "tests/engine/channels_cases.h"
#include "tests/support/gradcheck.h"
#include "tests/support/torch_reference.h"

using namespace strata;
using strata::test::check_torch_case;
using strata::test::TorchCase;

TEST_CASE("concat gradcheck: NHWC, rank-2 and rank-1 inputs, one without gradient", "[gradcheck]") {
  test::check_gradients(test::concat_cases());
}

TEST_CASE("slice gradcheck: inner, leading, trailing, full and last-channel ranges", "[gradcheck]") {
  test::check_gradients(test::slice_cases());
}

TEST_CASE("concat and slice match PyTorch torch.cat(dim=1) and x[:, begin:end]", "[torch]") {
  check_torch_case("spatial", "concat_nchw", {"a", "b", "c"},
                   [](const std::vector<Tensor>& in, const TorchCase&) { return concat(in); });
  check_torch_case("spatial", "concat_rank2", {"a", "b"},
                   [](const std::vector<Tensor>& in, const TorchCase&) { return concat(in); });
  for (const char* name : {"slice_middle", "slice_all", "slice_last_channel", "slice_rank2"}) {
    check_torch_case("spatial", name, {"x"}, [](const std::vector<Tensor>& in, const TorchCase& c) {
      return slice(in[0], static_cast<int64_t>(c.param("begin")), static_cast<int64_t>(c.param("end")));
    });
  }
}

TEST_CASE("concat gives gradients only to inputs that require them, and an empty slice is allowed", "[cpu]") {
  Tensor a = Tensor::from_vector<double>({1, 2, 3, 4}, {2, 2});
  Tensor b = Tensor::from_vector<double>({5, 6}, {2, 1});
  a.set_requires_grad(true);
  Tensor y = concat({a, b});
  CHECK(y.to_vector<double>() == std::vector<double>{1, 2, 5, 3, 4, 6});
  y.backward(Tensor::from_vector<double>({10, 20, 30, 40, 50, 60}, {2, 3}));
  CHECK(a.grad().to_vector<double>() == std::vector<double>{10, 20, 40, 50});
  CHECK_FALSE(b.grad().defined());

  Tensor x = Tensor::from_vector<double>({1, 2, 3, 4, 5, 6}, {2, 3});
  x.set_requires_grad(true);
  Tensor empty = slice(x, 1, 1);
  CHECK(empty.shape() == Shape{2, 0});
  empty.backward(Tensor::zeros({2, 0}, DType::f64));
  CHECK(x.grad().to_vector<double>() == std::vector<double>(6, 0.0));
}

TEST_CASE("concat and slice reject bad input clearly", "[cpu]") {
  Tensor a = Tensor::zeros({2, 3, 4, 5});
  CHECK_THROWS_WITH(concat({}), Catch::Contains("concat") && Catch::Contains("empty list"));
  CHECK_THROWS_WITH(concat({a, Tensor::zeros({2, 3, 5, 5})}), Catch::Contains("concat") && Catch::Contains("xs[1]") &&
                                                                  Catch::Contains("f32[2,3,5,5]") &&
                                                                  Catch::Contains("all dimensions but the last"));
  CHECK_THROWS_WITH(concat({a, Tensor::zeros({2, 3, 20})}), Catch::Contains("concat") && Catch::Contains("same rank"));
  CHECK_THROWS_WITH(concat({a, Tensor::zeros({2, 3, 4, 5}, DType::f64)}),
                    Catch::Contains("concat") && Catch::Contains("dtypes must match"));
  CHECK_THROWS_WITH(concat({a, Tensor::zeros({2, 3, 4, 5}, DType::i32)}),
                    Catch::Contains("concat") && Catch::Contains("xs[1]") && Catch::Contains("f32 or f64"));
  CHECK_THROWS_WITH(concat({Tensor::scalar(1.0)}), Catch::Contains("concat") && Catch::Contains("channel dimension"));
  CHECK_THROWS_WITH(concat({a, Tensor()}), Catch::Contains("concat") && Catch::Contains("xs[1] is an undefined"));
  CHECK_THROWS_WITH(slice(a, 3, 6),
                    Catch::Contains("slice") && Catch::Contains("[3, 6)") && Catch::Contains("f32[2,3,4,5]"));
  CHECK_THROWS_WITH(slice(a, 3, 2), Catch::Contains("slice") && Catch::Contains("0 <= begin <= end <= C"));
  CHECK_THROWS_WITH(slice(a, -1, 2), Catch::Contains("slice") && Catch::Contains("[-1, 2)"));
  CHECK_THROWS_WITH(slice(Tensor::scalar(1.0), 0, 0), Catch::Contains("slice") && Catch::Contains("channel dimension"));
}
