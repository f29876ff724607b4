// cast: values rounded to nearest even into bf16, the gradient cast back to the input's dtype (how an
// f32 master weight receives its bf16 copy's gradient), no copy for the same dtype, bad dtypes.
#include <catch2/catch.hpp>
#include <vector>

#include "engine/ops/cast.h"

using namespace strata;

TEST_CASE("cast rounds to bf16 to nearest even and casts the gradient back to the input's dtype", "[cpu]") {
  // 1 + 2^-8 lies halfway between bf16's 1 and 1 + 2^-7 (ties to the even 1); 1 + 3 2^-8 halfway
  // between 1 + 2^-7 and 1 + 2^-6 (ties to the even 1 + 2^-6); 1 + 2^-8 + 2^-16 is just above a tie.
  const std::vector<float> values = {1.0f + 0x1p-8f, 1.0f + 3 * 0x1p-8f, 1.0f + 0x1p-8f + 0x1p-16f, -2.5f};
  const std::vector<float> rounded = {1.0f, 1.0f + 0x1p-6f, 1.0f + 0x1p-7f, -2.5f};
  Tensor x = Tensor::from_vector(values, {4});
  x.set_requires_grad(true);
  Tensor y = cast(x, DType::bf16);
  REQUIRE(y.dtype() == DType::bf16);
  CHECK(y.to_vector<float>() == rounded);

  Tensor z = cast(y, DType::f64);
  z.backward(Tensor::from_vector(std::vector<double>{0.5, -1.0, 3.0, 2.0}, {4}));
  REQUIRE(x.grad().dtype() == DType::f32);
  CHECK(x.grad().to_vector<float>() == std::vector<float>{0.5f, -1.0f, 3.0f, 2.0f});
}

TEST_CASE("cast to the same dtype is x itself, and non-floating dtypes are refused", "[cpu]") {
  const Tensor x = Tensor::zeros({2, 3});
  CHECK(cast(x, DType::f32).raw_data() == x.raw_data());
  CHECK_THROWS_WITH(cast(x, DType::i32), Catch::Contains("cast: casts between f32, f64, bf16 and f16, got x f32"));
  CHECK_THROWS_WITH(cast(Tensor::zeros({2}, DType::u8), DType::f32), Catch::Contains("cast: casts between"));
  CHECK_THROWS_WITH(cast(Tensor(), DType::f32), Catch::Contains("cast"));
}
