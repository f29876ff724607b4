// cudaemu: bit-exact conversions between float/double and the 16-bit formats binary16 (__half)
// and bfloat16 (__nv_bfloat16), matching the host paths of CUDA's cuda_fp16.hpp/cuda_bf16.hpp:
// round to nearest even, NaN becomes the canonical 0x7FFF, overflow rounds to infinity, and
// binary16 -> float maps every NaN to 0x7FFFFFFF (the hardware conversion's canonical NaN).
#pragma once

#include <cstdint>
#include <cstring>

namespace cudaemu::detail {

inline std::uint32_t float_bits(float f) {
    std::uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    return u;
}

inline float bits_float(std::uint32_t u) {
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
}

inline std::uint16_t float_to_half_bits(float f) {
    const std::uint32_t x = float_bits(f);
    const std::uint32_t sign = (x >> 16) & 0x8000u;
    const std::uint32_t a = x & 0x7fffffffu;
    if (a >= 0x7f800000u) {
        return static_cast<std::uint16_t>(a == 0x7f800000u ? (sign | 0x7c00u) : 0x7fffu);
    }
    // 65520 = 0x477ff000 is halfway between the largest half (65504) and 2^16: ties go to even,
    // which is infinity, so everything from there up overflows.
    if (a >= 0x477ff000u) {
        return static_cast<std::uint16_t>(sign | 0x7c00u);
    }
    if (a >= 0x38800000u) {  // normal binary16 range, >= 2^-14: rebias the exponent by 127-15
        const std::uint32_t rebiased = a - 0x38000000u;
        std::uint32_t h = rebiased >> 13;
        const std::uint32_t rest = rebiased & 0x1fffu;
        if (rest > 0x1000u || (rest == 0x1000u && (h & 1u) != 0)) {
            ++h;
        }
        return static_cast<std::uint16_t>(sign | h);
    }
    if (a < 0x33000000u) {  // below 2^-25, half of the smallest subnormal: rounds to zero
        return static_cast<std::uint16_t>(sign);
    }
    // Subnormal result: count in units of 2^-24.
    const std::uint32_t exponent = a >> 23;
    const std::uint32_t mantissa = (a & 0x7fffffu) | 0x800000u;
    const std::uint32_t shift = 126u - exponent;
    std::uint32_t h = mantissa >> shift;
    const std::uint32_t rest = mantissa & ((1u << shift) - 1u);
    const std::uint32_t halfway = 1u << (shift - 1u);
    if (rest > halfway || (rest == halfway && (h & 1u) != 0)) {
        ++h;
    }
    return static_cast<std::uint16_t>(sign | h);
}

inline float half_bits_to_float(std::uint16_t h) {
    const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
    const std::uint32_t exponent = (h >> 10) & 0x1fu;
    const std::uint32_t mantissa = h & 0x3ffu;
    if (exponent == 0x1fu) {
        return bits_float(mantissa != 0 ? 0x7fffffffu : (sign | 0x7f800000u));
    }
    if (exponent == 0) {
        const float magnitude = static_cast<float>(mantissa) * 0x1p-24f;  // exact
        return sign != 0 ? -magnitude : magnitude;
    }
    return bits_float(sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

inline std::uint16_t float_to_bfloat16_bits(float f) {
    const std::uint32_t x = float_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) {
        return 0x7fffu;
    }
    const std::uint32_t lsb = (x >> 16) & 1u;
    return static_cast<std::uint16_t>((x + 0x7fffu + lsb) >> 16);
}

inline float bfloat16_bits_to_float(std::uint16_t b) { return bits_float(static_cast<std::uint32_t>(b) << 16); }

// double -> float with round-to-odd: a following round-to-nearest-even to a format with at most
// 24 - 2 significant bits then equals direct rounding from double (no double-rounding error).
inline float double_to_float_round_to_odd(double d) {
    float f = static_cast<float>(d);
    if (f != f || d == static_cast<double>(f)) {
        return f;
    }
    std::uint32_t u = float_bits(f);
    const double back = static_cast<double>(f);
    if ((d > 0.0 && back > d) || (d < 0.0 && back < d)) {
        --u;  // step toward zero: truncate instead of rounding away
    }
    return bits_float(u | 1u);
}

}  // namespace cudaemu::detail
