// dtype dispatch: turns a runtime DType into a compile-time element type for a kernel call.
//   visit_dtype(t.dtype(), [&](auto tag) { using T = decltype(tag); ... });
// visit_floating accepts only the types CPU kernels compute in (f32, f64) and throws otherwise.
#pragma once

#include <cstdint>

#include "engine/dtype.h"
#include "engine/error.h"
#include "kernels/common/half.h"

namespace strata {

template <class F>
decltype(auto) visit_dtype(DType dtype, F&& f) {
  switch (dtype) {
    case DType::f32: return f(float{});
    case DType::f64: return f(double{});
    case DType::bf16: return f(bf16{});
    case DType::f16: return f(f16{});
    case DType::u8: return f(uint8_t{});
    case DType::i32: return f(int32_t{});
    case DType::i64: return f(int64_t{});
  }
  throw Error("visit_dtype: invalid dtype");
}

template <class F>
decltype(auto) visit_floating(const char* op, DType dtype, F&& f) {
  switch (dtype) {
    case DType::f32: return f(float{});
    case DType::f64: return f(double{});
    default: break;
  }
  throw Error(cat(op, ": CPU kernels compute in f32 or f64, got ", dtype_name(dtype)));
}

// Scalar conversion between any two element types; 16-bit floats go through float.
template <class To, class From>
To convert_scalar(From value) {
  if constexpr (std::is_same_v<From, bf16>) {
    return convert_scalar<To>(bf16_to_float(value));
  } else if constexpr (std::is_same_v<From, f16>) {
    return convert_scalar<To>(f16_to_float(value));
  } else if constexpr (std::is_same_v<To, bf16>) {
    return float_to_bf16(static_cast<float>(value));
  } else if constexpr (std::is_same_v<To, f16>) {
    return float_to_f16(static_cast<float>(value));
  } else {
    return static_cast<To>(value);
  }
}

}  // namespace strata
