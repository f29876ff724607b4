// 16-bit floating-point storage types and their conversions, round-to-nearest-even, identical on
// host and device (the same results as CUDA's __float2bfloat16_rn / __float2half_rn).
//   bf16: 1 sign, 8 exponent, 7 mantissa bits (the top half of an IEEE float)
//   f16 : 1 sign, 5 exponent, 10 mantissa bits (IEEE 754 binary16)
// Arithmetic is never done in these types: values are widened to float, computed, and narrowed.
#pragma once

#include <cstdint>
#include <cstring>

#include "kernels/common/host_device.h"

namespace strata {

STRATA_HOST_DEVICE inline uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

STRATA_HOST_DEVICE inline float bits_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

struct bf16 {
  uint16_t bits = 0;
};

struct f16 {
  uint16_t bits = 0;
};

STRATA_HOST_DEVICE inline bf16 float_to_bf16(float f) {
  uint32_t u = float_bits(f);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return bf16{static_cast<uint16_t>((u >> 16) | 0x0040u)};  // quiet NaN
  u += 0x7FFFu + ((u >> 16) & 1u);
  return bf16{static_cast<uint16_t>(u >> 16)};
}

STRATA_HOST_DEVICE inline float bf16_to_float(bf16 h) { return bits_float(static_cast<uint32_t>(h.bits) << 16); }

STRATA_HOST_DEVICE inline f16 float_to_f16(float f) {
  uint32_t u = float_bits(f);
  uint32_t sign = (u >> 16) & 0x8000u;
  uint32_t abs = u & 0x7FFFFFFFu;
  if (abs > 0x7F800000u) return f16{static_cast<uint16_t>(sign | 0x7E00u)};  // NaN
  if (abs >= 0x477FF000u) return f16{static_cast<uint16_t>(sign | 0x7C00u)};  // rounds to >= 65520: inf
  if (abs < 0x38800000u) {
    // Result is subnormal or zero: value = m * 2^-24 with m = round(|f| * 2^24).
    if (abs < 0x33000000u) return f16{static_cast<uint16_t>(sign)};  // below half of the smallest subnormal
    uint32_t exp = abs >> 23;
    uint32_t mant = (abs & 0x7FFFFFu) | 0x800000u;
    uint32_t shift = 126u - exp;  // 14 + (127 - exp) - 1 ... mantissa has 24 bits
    // |f| = mant * 2^(exp-150); in units of 2^-24: mant * 2^(exp-126) = mant >> (126 - exp)
    uint32_t q = mant >> shift;
    uint32_t rem = mant & ((1u << shift) - 1u);
    uint32_t halfway = 1u << (shift - 1u);
    if (rem > halfway || (rem == halfway && (q & 1u))) ++q;
    return f16{static_cast<uint16_t>(sign | q)};
  }
  // Normal: rebias exponent (127 -> 15) and round the 13 dropped mantissa bits to nearest even.
  uint32_t r = abs - 0x38000000u;  // exponent - 112
  r += 0x0FFFu + ((r >> 13) & 1u);
  return f16{static_cast<uint16_t>(sign | (r >> 13))};
}

STRATA_HOST_DEVICE inline float f16_to_float(f16 h) {
  uint32_t sign = (static_cast<uint32_t>(h.bits) & 0x8000u) << 16;
  uint32_t exp = (h.bits >> 10) & 0x1Fu;
  uint32_t mant = h.bits & 0x3FFu;
  if (exp == 0x1Fu) return bits_float(sign | 0x7F800000u | (mant << 13));  // inf / NaN
  if (exp == 0) {
    // Zero or subnormal: mant * 2^-24.
    float v = static_cast<float>(mant) * (1.0f / 16777216.0f);
    return sign ? -v : v;
  }
  return bits_float(sign | ((exp + 112u) << 23) | (mant << 13));
}

}  // namespace strata
