#include "engine/precision.h"

#include <algorithm>

#include "engine/error.h"

namespace strata {

Precision parse_precision(const std::string& text) {
  if (text == "f32" || text == "fp32") return Precision::f32;
  if (text == "tf32") return Precision::tf32;
  if (text == "bf16") {
    throw Error(
        "--precision bf16: bf16 mixed precision is not built yet (bf16 activations and weight copies with f32 "
        "statistics, master weights and losses); use tf32 (TF32 tensor-core convolutions and GEMMs, f32 storage) "
        "or f32");
  }
  throw Error(cat("--precision '", text, "': expected tf32 or f32"));
}

const char* precision_name(Precision precision) { return precision == Precision::tf32 ? "tf32" : "f32"; }

bool uses_tensor_math(std::string_view op) {
  return std::find(std::begin(kTensorMathOps), std::end(kTensorMathOps), op) != std::end(kTensorMathOps);
}

kernels::cuda::FloatMath float_math_for(Precision precision, std::string_view op) {
  return precision == Precision::tf32 && uses_tensor_math(op) ? kernels::cuda::FloatMath::tf32
                                                              : kernels::cuda::FloatMath::strict;
}

}  // namespace strata
