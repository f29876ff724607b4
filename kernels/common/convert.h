// Element conversion between strata's element types, the same on host and device: 16-bit floats go
// through float (round to nearest even), everything else is a static_cast.
#pragma once

#include <cstdint>
#include <type_traits>

#include "kernels/common/half.h"
#include "kernels/common/host_device.h"

namespace strata {

template <class To, class From>
STRATA_HOST_DEVICE inline To convert_scalar(From value) {
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
