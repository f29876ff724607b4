// bf16 and f16 conversions: exact values, round-to-nearest-even ties, overflow, subnormals, NaN.
// (PyTorch parity of the same conversions is in tests/engine/test_tensor.cpp.)
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "kernels/common/half.h"

using namespace strata;

TEST_CASE("bf16 conversion rounds to nearest even", "[cpu]") {
  CHECK(float_to_bf16(1.0f).bits == 0x3F80);
  CHECK(float_to_bf16(-2.0f).bits == 0xC000);
  // 1 + 2^-8 is exactly halfway between 1 and 1 + 2^-7: ties to the even mantissa (1.0).
  CHECK(float_to_bf16(1.0f + 1.0f / 256).bits == 0x3F80);
  // 1 + 3 * 2^-8 is halfway between 1 + 2^-7 (odd) and 1 + 2^-6 (even): rounds up.
  CHECK(float_to_bf16(1.0f + 3.0f / 256).bits == 0x3F82);
  CHECK(float_to_bf16(1.0f + 1.0f / 256 + 1.0f / 65536).bits == 0x3F81);
  CHECK(bf16_to_float(float_to_bf16(3.140625f)) == 3.140625f);
  CHECK(std::isnan(bf16_to_float(float_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
  CHECK(std::isinf(bf16_to_float(float_to_bf16(std::numeric_limits<float>::max()))));
}

TEST_CASE("f16 conversion: normals, ties, overflow, subnormals", "[cpu]") {
  CHECK(float_to_f16(1.0f).bits == 0x3C00);
  CHECK(float_to_f16(-2.0f).bits == 0xC000);
  CHECK(float_to_f16(65504.0f).bits == 0x7BFF);      // largest finite
  CHECK(float_to_f16(65519.0f).bits == 0x7BFF);      // rounds down to 65504
  CHECK(float_to_f16(65520.0f).bits == 0x7C00);      // rounds up to inf
  CHECK(float_to_f16(1.0f + 1.0f / 2048).bits == 0x3C00);  // tie to even
  CHECK(float_to_f16(1.0f + 3.0f / 2048).bits == 0x3C02);  // tie to even (up)
  CHECK(float_to_f16(std::ldexp(1.0f, -24)).bits == 0x0001);  // smallest subnormal
  CHECK(float_to_f16(std::ldexp(1.0f, -25)).bits == 0x0000);  // exactly half of it: ties to even (0)
  CHECK(float_to_f16(std::ldexp(1.5f, -25)).bits == 0x0001);
  CHECK(float_to_f16(std::ldexp(1.0f, -14)).bits == 0x0400);  // smallest normal
  CHECK(float_to_f16(std::ldexp(1023.5f, -24)).bits == 0x0400);  // subnormal rounding carries into the normal range
  for (uint32_t bits = 0; bits < 0x7C00; ++bits) {  // every finite non-negative f16 round-trips exactly
    f16 h{static_cast<uint16_t>(bits)};
    REQUIRE(float_to_f16(f16_to_float(h)).bits == bits);
  }
  CHECK(std::isnan(f16_to_float(float_to_f16(std::numeric_limits<float>::quiet_NaN()))));
}
