// An exponential the compiler can vectorise, for the CPU kernels' inner loops over channels.
//
// std::exp is a library call per value, which no loop around it can vectorise without -ffast-math
// (glibc's vector variants are declared only under __FAST_MATH__, which would also drop NaN and
// signed-zero semantics everywhere). vector_exp(float) is branch-free arithmetic instead: with
// n = round(x / ln 2) and r = x − n ln 2 (ln 2 split in two parts so r is exact), exp(x) = 2^n e^r,
// e^r from a degree-6 polynomial on |r| <= ln 2 / 2 (the classic minimax coefficients of Cephes'
// expf), 2^n built in the exponent bits. Relative error about 2^-23 (one or two float ulps); NaN
// stays NaN, arguments are clamped to the normal range (exp(x) for x < −87.3 is the smallest normal
// float instead of a denormal or 0, and exp(x) for x > 88 is exp(88) instead of up to FLT_MAX or
// infinity: the kernels take exponentials of x − max <= 0).
// Doubles use std::exp: f64 is the precision tests are checked in, and it is not on the fast path.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>

namespace strata::kernels::cpu {

inline float vector_exp(float x) {
  x = x < -87.33654f ? -87.33654f : x;  // a NaN compares false and stays
  x = x > 88.0f ? 88.0f : x;
  float n = std::floor(x * 1.44269504088896341f + 0.5f);
  const float r = (x - n * 0.693359375f) + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float e_r = p * r * r + r + 1.0f;
  n = n == n ? n : 0.0f;  // NaN: any finite scale keeps e_r's NaN, and the conversion stays defined
  const float two_n = std::bit_cast<float>((static_cast<int32_t>(n) + 127) << 23);
  return e_r * two_n;
}

inline double vector_exp(double x) { return std::exp(x); }

// The functor form, for kernels/common's templates that take their exponential as a parameter.
struct VectorExp {
  template <class T>
  T operator()(T x) const {
    return vector_exp(x);
  }
};

}  // namespace strata::kernels::cpu
