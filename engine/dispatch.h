// dtype dispatch: turns a runtime DType into a compile-time element type for a kernel call.
//   visit_dtype(t.dtype(), [&](auto tag) { using T = decltype(tag); ... });
// visit_floating accepts only the types CPU kernels compute in (f32, f64) and throws otherwise.
#pragma once

#include <cstdint>

#include "engine/dtype.h"
#include "engine/error.h"
#include "kernels/common/convert.h"
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

}  // namespace strata
