// Precision of a run (--precision): how a CUDA device computes the f32 tensors of a model.
//
//   f32   strict fp32 everywhere: cuDNN convolutions under CUDNN_FMA_MATH, cuBLAS GEMMs in
//         CUBLAS_COMPUTE_32F. The CPU's precision, and the CUDA mode that matches it within kF32.
//   tf32  PyTorch's default float behaviour on Ampere and later: convolutions and GEMMs on TF32
//         tensor cores (inputs rounded to TF32's 10-bit mantissa, products accumulated in fp32),
//         every tensor still stored in f32 and every other op computed in f32. The CUDA default.
//
// bf16 mixed precision (bf16 activations and weight copies, f32 statistics, master weights and
// losses) is not built yet: parse_precision says so instead of running something else.
//
// The policy, in one place (as autocast's op lists): the ops of kTensorMathOps compute in the
// precision's tensor math; every other op (batch norm, In-place ABN, activations, softmax, losses,
// reductions, pooling, interpolation, the optimizer) computes in f32 whatever the precision. Names
// are the ops' dispatch names (engine/ops/device_dispatch.h), so an op that starts calling cuBLAS or
// cuDNN computes in strict f32 until it is listed here.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "kernels/cuda/backend.h"

namespace strata {

enum class Precision : uint8_t { f32, tf32 };

// "f32" or "tf32" (and "fp32" for f32). Throws strata::Error naming --precision for anything else,
// and for "bf16" with what is missing.
Precision parse_precision(const std::string& text);
const char* precision_name(Precision precision);

// The ops that compute in the precision's tensor math (see the file comment).
inline constexpr std::string_view kTensorMathOps[] = {
    "conv2d",                  // student convolutions, forward
    "conv2d backward data",    // and their two gradients
    "conv2d backward filter",  //
    "conv2d_activation",       // the folded teacher's convolutions with their epilogue
    "linear",                  // cuBLAS GEMMs
    "linear backward",         //
};

// Whether `op` (a dispatch name) computes in the precision's tensor math.
bool uses_tensor_math(std::string_view op);

// The math a kernel of `op` gets on a device running at `precision` (kernels/cuda/backend.h).
kernels::cuda::FloatMath float_math_for(Precision precision, std::string_view op);

}  // namespace strata
