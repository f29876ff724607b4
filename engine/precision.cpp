#include "engine/precision.h"

#include <algorithm>

#include "engine/error.h"

namespace strata {

Precision parse_precision(const std::string& text) {
  if (text == "f32" || text == "fp32") return Precision::f32;
  if (text == "tf32") return Precision::tf32;
  if (text == "bf16") return Precision::bf16;
  throw Error(cat("--precision '", text, "': expected bf16, tf32 or f32"));
}

const char* precision_name(Precision precision) {
  switch (precision) {
    case Precision::f32: return "f32";
    case Precision::tf32: return "tf32";
    case Precision::bf16: return "bf16";
  }
  return "f32";
}

void check_model_precision(Precision precision) {
  check(precision != Precision::bf16,
        "--precision bf16: the model forward does not cast to bf16 yet (bf16 activations and weight copies with f32 "
        "statistics, master weights and losses); use tf32 or f32");
}

Bf16Compute bf16_compute(std::string_view op) {
  for (const Bf16OpPolicy& rule : kBf16Policy) {
    if (rule.op == op) return rule.compute;
  }
  return Bf16Compute::input_dtype;
}

bool uses_tensor_math(std::string_view op) {
  return std::find(std::begin(kTensorMathOps), std::end(kTensorMathOps), op) != std::end(kTensorMathOps);
}

// bf16 data computes with bf16 operands and f32 accumulation whatever the FloatMath (kernels/cuda/conv2d.h,
// gemm.h); an f32 tensor reaching a convolution at bf16 has not been cast, and computes in strict f32.
kernels::cuda::FloatMath float_math_for(Precision precision, std::string_view op) {
  return precision == Precision::tf32 && uses_tensor_math(op) ? kernels::cuda::FloatMath::tf32
                                                              : kernels::cuda::FloatMath::strict;
}

}  // namespace strata
