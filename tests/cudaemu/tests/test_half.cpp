// Tests of the 16-bit float conversions against independent references: binary16 against GCC's
// _Float16 (IEEE round to nearest even in the compiler and libgcc), bfloat16 against a
// nearest-neighbour search done in double. NaN handling is the CUDA-specific part: the canonical
// NaN 0x7FFF in both directions as cuda_fp16.hpp/cuda_bf16.hpp produce it.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "cuda_bf16.h"
#include "cuda_fp16.h"

namespace {

std::uint32_t bits_of(float f) {
    std::uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    return u;
}

float float_of(std::uint32_t u) {
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
}

std::uint16_t reference_half_bits(float f) {
    const _Float16 h = static_cast<_Float16>(f);
    std::uint16_t u;
    std::memcpy(&u, &h, sizeof u);
    return u;
}

float reference_half_to_float(std::uint16_t u) {
    _Float16 h;
    std::memcpy(&h, &u, sizeof h);
    return static_cast<float>(h);
}

// The bfloat16 value nearest to f (ties to the even pattern), overflow to infinity: bfloat16
// values are floats with the low 16 bits zero, so the candidates are truncation and the next one.
std::uint16_t reference_bfloat16_bits(float f) {
    const std::uint32_t u = bits_of(f);
    if (std::isinf(f)) {
        return static_cast<std::uint16_t>(u >> 16);
    }
    const std::uint32_t down = u & 0xffff0000u;
    const std::uint32_t up = down + 0x10000u;
    const double x = f;
    const double lo = float_of(down);
    const double hi = (up & 0x7f800000u) == 0x7f800000u ? std::copysign(std::ldexp(1.0, 128), x) : float_of(up);
    const double d_lo = std::fabs(x - lo);
    const double d_hi = std::fabs(hi - x);
    if (d_lo < d_hi || (d_lo == d_hi && ((down >> 16) & 1u) == 0)) {
        return static_cast<std::uint16_t>(down >> 16);
    }
    return static_cast<std::uint16_t>(up >> 16);
}

std::vector<float> interesting_floats() {
    std::vector<float> values = {0.0f, -0.0f, 1.0f, -1.0f, 65504.0f, 65519.0f, 65520.0f, 65536.0f, -65520.0f,
                                 6.1035156e-05f, 5.9604645e-08f, 2.9802322e-08f, 2.9802326e-08f, 1e-10f,
                                 std::numeric_limits<float>::max(), std::numeric_limits<float>::denorm_min(),
                                 std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                                 1.0009765625f, 1.00048828125f, 1.00146484375f, 3.3895314e38f, 3.3961776e38f};
    std::mt19937 rng(7);
    for (int i = 0; i < 1'000'000; ++i) {
        float f = float_of(static_cast<std::uint32_t>(rng()));
        if (!std::isnan(f)) {
            values.push_back(f);
        }
    }
    // Values around every binary16 rounding boundary.
    for (std::uint32_t h = 0; h < 0x7c00u; ++h) {
        const float a = reference_half_to_float(static_cast<std::uint16_t>(h));
        const float b = reference_half_to_float(static_cast<std::uint16_t>(h + 1));
        const float mid = static_cast<float>((static_cast<double>(a) + b) / 2);
        values.push_back(mid);
        values.push_back(std::nextafter(mid, 0.0f));
        values.push_back(std::nextafter(mid, 1e30f));
    }
    return values;
}

}  // namespace

TEST_CASE("float -> __half rounds to nearest even like IEEE binary16", "[cudaemu][half]") {
    for (float f : interesting_floats()) {
        INFO("f = " << f << " bits 0x" << std::hex << bits_of(f));
        REQUIRE(__half_as_ushort(__float2half_rn(f)) == reference_half_bits(f));
        REQUIRE(__half_as_ushort(__float2half(-f)) == reference_half_bits(-f));
    }
    CHECK(__half_as_ushort(__float2half(std::numeric_limits<float>::quiet_NaN())) == 0x7fff);
    CHECK(__half_as_ushort(__float2half(-std::numeric_limits<float>::quiet_NaN())) == 0x7fff);
}

TEST_CASE("__half -> float is exact for every pattern", "[cudaemu][half]") {
    for (std::uint32_t u = 0; u <= 0xffffu; ++u) {
        const auto h = static_cast<std::uint16_t>(u);
        const float got = __half2float(__ushort_as_half(h));
        const float expected = reference_half_to_float(h);
        if (std::isnan(expected)) {
            REQUIRE(bits_of(got) == 0x7fffffffu);
        } else {
            REQUIRE(bits_of(got) == bits_of(expected));
        }
    }
}

TEST_CASE("float -> __nv_bfloat16 rounds to the nearest bfloat16, ties to even", "[cudaemu][half]") {
    for (float f : interesting_floats()) {
        INFO("f = " << f << " bits 0x" << std::hex << bits_of(f));
        REQUIRE(__bfloat16_as_ushort(__float2bfloat16_rn(f)) == reference_bfloat16_bits(f));
        REQUIRE(__bfloat16_as_ushort(__float2bfloat16(-f)) == reference_bfloat16_bits(-f));
    }
    CHECK(__bfloat16_as_ushort(__float2bfloat16(std::numeric_limits<float>::quiet_NaN())) == 0x7fff);
    for (std::uint32_t u = 0; u <= 0xffffu; ++u) {
        const float back = __bfloat162float(__ushort_as_bfloat16(static_cast<std::uint16_t>(u)));
        REQUIRE(bits_of(back) == u << 16);
    }
}

TEST_CASE("double -> 16-bit conversions round once", "[cudaemu][half]") {
    // 1 + 2^-8 + 2^-30 lies just above a bfloat16 tie; rounding through float first would create
    // an exact tie and round down to 1.
    const double above_tie = 1.0 + std::ldexp(1.0, -8) + std::ldexp(1.0, -30);
    CHECK(__bfloat162float(__double2bfloat16(above_tie)) == 1.0f + 0.0078125f);
    const double half_above_tie = 1.0 + std::ldexp(1.0, -11) + std::ldexp(1.0, -40);
    CHECK(__half2float(__double2half(half_above_tie)) == 1.0f + 0.0009765625f);
    CHECK(__half2float(__double2half(1e10)) == std::numeric_limits<float>::infinity());
}

TEST_CASE("16-bit arithmetic rounds the float result", "[cudaemu][half]") {
    const __half a = __float2half(1.0f);
    const __half b = __float2half(0.0004882812f);  // 2^-11: a tie for 1 + b
    CHECK(__half2float(a + b) == 1.0f);
    CHECK(__half2float(__hmul(__float2half(3.0f), __float2half(0.5f))) == 1.5f);
    const __nv_bfloat16 c = __float2bfloat16(1.0f);
    const __nv_bfloat16 d = __float2bfloat16(0.01f);
    CHECK(__bfloat162float(c + d) == __bfloat162float(__float2bfloat16(1.0f + __bfloat162float(d))));
    CHECK(__hisnan(__ushort_as_half(0x7e00)));
    CHECK(__hisinf(__float2half(-1e6f)) == -1);
    const __nv_bfloat162 pair = __floats2bfloat162_rn(1.5f, -2.0f);
    CHECK(__low2float(pair) == 1.5f);
    CHECK(__high2float(pair) == -2.0f);
}
