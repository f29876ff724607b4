// Element types. f32 is the default; f64 exists for CPU gradient checks; bf16/f16 are CUDA compute
// types (CPU stores and converts them, it does not compute in them); u8/i32/i64 are labels, indices
// and counters.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "kernels/common/half.h"

namespace strata {

enum class DType : uint8_t { f32, f64, bf16, f16, u8, i32, i64 };

size_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);  // "f32", "f64", ...
bool is_floating(DType dtype);

template <class T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = DType::f32; };
template <> struct dtype_of<double> { static constexpr DType value = DType::f64; };
template <> struct dtype_of<bf16> { static constexpr DType value = DType::bf16; };
template <> struct dtype_of<f16> { static constexpr DType value = DType::f16; };
template <> struct dtype_of<uint8_t> { static constexpr DType value = DType::u8; };
template <> struct dtype_of<int32_t> { static constexpr DType value = DType::i32; };
template <> struct dtype_of<int64_t> { static constexpr DType value = DType::i64; };
template <class T> inline constexpr DType dtype_v = dtype_of<T>::value;

}  // namespace strata
