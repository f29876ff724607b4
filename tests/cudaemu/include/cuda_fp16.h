// cudaemu: the binary16 type `__half` of CUDA's cuda_fp16.h for host compilation: storage, the
// conversions with the real rounding (round to nearest even, bit-exact with cuda_fp16.hpp), the
// arithmetic operators (computed in float and rounded once, which is exact for + - * / because
// float has at least 2*11+2 significant bits), warp shuffles and atomicAdd.
#pragma once

#include <cstdint>

#include "cudaemu/float16_bits.h"
#include "cudaemu/kernel_lang.h"
#include "vector_types.h"

struct __half_raw {
    unsigned short x;
};

struct __half2_raw {
    unsigned short x;
    unsigned short y;
};

struct alignas(2) __half {
protected:
    unsigned short __x;

public:
    __half() = default;
    constexpr __half(const __half_raw& raw) : __x(raw.x) {}
    __half& operator=(const __half_raw& raw) {
        __x = raw.x;
        return *this;
    }
    constexpr operator __half_raw() const { return __half_raw{__x}; }

    __half(float f) : __x(cudaemu::detail::float_to_half_bits(f)) {}
    __half(double d) : __x(cudaemu::detail::float_to_half_bits(cudaemu::detail::double_to_float_round_to_odd(d))) {}
    __half(int i) : __half(static_cast<double>(i)) {}
    __half(unsigned int i) : __half(static_cast<double>(i)) {}
    __half(short i) : __half(static_cast<double>(i)) {}
    __half(unsigned short i) : __half(static_cast<double>(i)) {}
    __half(long long i) : __half(static_cast<double>(i)) {}
    __half(unsigned long long i) : __half(static_cast<double>(i)) {}

    operator float() const { return cudaemu::detail::half_bits_to_float(__x); }
};

struct alignas(4) __half2 {
    __half x;
    __half y;
    __half2() = default;
    constexpr __half2(const __half& a, const __half& b) : x(a), y(b) {}
    __half2(const __half2_raw& raw) : x(__half_raw{raw.x}), y(__half_raw{raw.y}) {}
    operator __half2_raw() const {
        return __half2_raw{static_cast<__half_raw>(x).x, static_cast<__half_raw>(y).x};
    }
};

typedef __half half;
typedef __half2 half2;

inline __half __float2half(float a) { return __half(a); }
inline __half __float2half_rn(float a) { return __half(a); }
inline __half __double2half(double a) { return __half(a); }
inline float __half2float(__half a) { return static_cast<float>(a); }
inline unsigned short __half_as_ushort(__half h) { return static_cast<__half_raw>(h).x; }
inline __half __ushort_as_half(unsigned short u) { return __half(__half_raw{u}); }

inline __half2 __halves2half2(__half lo, __half hi) { return __half2(lo, hi); }
inline __half2 __floats2half2_rn(float lo, float hi) { return __half2(__half(lo), __half(hi)); }
inline __half2 __float2half2_rn(float a) { return __half2(__half(a), __half(a)); }
inline __half2 __float22half2_rn(float2 a) { return __half2(__half(a.x), __half(a.y)); }
inline float2 __half22float2(__half2 a) { return float2{static_cast<float>(a.x), static_cast<float>(a.y)}; }
inline float __low2float(__half2 a) { return static_cast<float>(a.x); }
inline float __high2float(__half2 a) { return static_cast<float>(a.y); }
inline __half __low2half(__half2 a) { return a.x; }
inline __half __high2half(__half2 a) { return a.y; }

inline __half __hadd(__half a, __half b) { return __half(static_cast<float>(a) + static_cast<float>(b)); }
inline __half __hsub(__half a, __half b) { return __half(static_cast<float>(a) - static_cast<float>(b)); }
inline __half __hmul(__half a, __half b) { return __half(static_cast<float>(a) * static_cast<float>(b)); }
inline __half __hdiv(__half a, __half b) { return __half(static_cast<float>(a) / static_cast<float>(b)); }
inline __half __hneg(__half a) { return __ushort_as_half(static_cast<unsigned short>(__half_as_ushort(a) ^ 0x8000u)); }
inline __half __habs(__half a) { return __ushort_as_half(static_cast<unsigned short>(__half_as_ushort(a) & 0x7fffu)); }
inline __half __hmax(__half a, __half b) { return __half(std::fmax(static_cast<float>(a), static_cast<float>(b))); }
inline __half __hmin(__half a, __half b) { return __half(std::fmin(static_cast<float>(a), static_cast<float>(b))); }
inline bool __hisnan(__half a) { return (__half_as_ushort(a) & 0x7fffu) > 0x7c00u; }
inline int __hisinf(__half a) {
    const unsigned short u = __half_as_ushort(a);
    return u == 0x7c00u ? 1 : (u == 0xfc00u ? -1 : 0);
}

inline __half operator+(const __half& a, const __half& b) { return __hadd(a, b); }
inline __half operator-(const __half& a, const __half& b) { return __hsub(a, b); }
inline __half operator*(const __half& a, const __half& b) { return __hmul(a, b); }
inline __half operator/(const __half& a, const __half& b) { return __hdiv(a, b); }
inline __half operator-(const __half& a) { return __hneg(a); }
inline __half operator+(const __half& a) { return a; }
inline __half& operator+=(__half& a, const __half& b) { return a = __hadd(a, b); }
inline __half& operator-=(__half& a, const __half& b) { return a = __hsub(a, b); }
inline __half& operator*=(__half& a, const __half& b) { return a = __hmul(a, b); }
inline __half& operator/=(__half& a, const __half& b) { return a = __hdiv(a, b); }
inline bool operator==(const __half& a, const __half& b) { return static_cast<float>(a) == static_cast<float>(b); }
inline bool operator!=(const __half& a, const __half& b) { return static_cast<float>(a) != static_cast<float>(b); }
inline bool operator<(const __half& a, const __half& b) { return static_cast<float>(a) < static_cast<float>(b); }
inline bool operator>(const __half& a, const __half& b) { return static_cast<float>(a) > static_cast<float>(b); }
inline bool operator<=(const __half& a, const __half& b) { return static_cast<float>(a) <= static_cast<float>(b); }
inline bool operator>=(const __half& a, const __half& b) { return static_cast<float>(a) >= static_cast<float>(b); }

CUDAEMU_DEFINE_SHUFFLES(__half)
CUDAEMU_DEFINE_SHUFFLES(__half2)

inline __half atomicAdd(__half* address, __half val) {
    auto* word = reinterpret_cast<unsigned short*>(address);
    unsigned short old = *word;
    for (;;) {
        const unsigned short updated = __half_as_ushort(__ushort_as_half(old) + val);
        const unsigned short seen = atomicCAS(word, old, updated);
        if (seen == old) {
            return __ushort_as_half(old);
        }
        old = seen;
    }
}
