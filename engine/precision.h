// Precision of a run (--precision): how a CUDA device computes the f32 tensors of a model.
//
//   f32   strict fp32 everywhere: cuDNN convolutions under CUDNN_FMA_MATH, cuBLAS GEMMs in
//         CUBLAS_COMPUTE_32F. The CPU's precision, and the CUDA mode that matches it within kF32.
//   tf32  PyTorch's default float behaviour on Ampere and later: convolutions and GEMMs on TF32
//         tensor cores (inputs rounded to TF32's 10-bit mantissa, products accumulated in fp32),
//         every tensor still stored in f32 and every other op computed in f32. The CUDA default.
//   bf16  mixed precision (issue 14 item 1), PyTorch's autocast to bfloat16: convolutions and GEMMs
//         read bf16 operands and accumulate in f32 on the tensor cores, normalisation keeps f32
//         statistics, softmax, losses and reductions compute in f32, master weights, their gradients
//         and momentum stay f32. What exists so far: the policy below, the parsed option, the
//         conv2d and linear ops on bf16 CUDA tensors (bf16 operands, f32 accumulation, bf16
//         outputs, saved operands and gradients; kernels/cuda/conv2d.h, gemm.h) and the
//         differentiable cast (engine/ops/cast.h) that gives an f32 master weight its bf16 copy's
//         gradient in f32. The model forward does not cast to bf16 yet and the norms take no bf16
//         activations, so a model run refuses bf16 (check_model_precision) instead of running
//         something else.
//
// The policy, in one place (as autocast's op lists): the ops of kTensorMathOps compute in the
// precision's tensor math (TF32 for f32 data at tf32; bf16 operands at bf16); every other op (batch
// norm, In-place ABN, activations, softmax, losses, reductions, pooling, interpolation, the
// optimizer) computes in f32 at f32 and tf32, and at bf16 as kBf16Policy says. Names are the ops'
// dispatch names (engine/ops/device_dispatch.h), so an op that starts calling cuBLAS or cuDNN
// computes in strict f32 until it is listed here.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "kernels/cuda/backend.h"

namespace strata {

enum class Precision : uint8_t { f32, tf32, bf16 };

// "bf16", "tf32" or "f32" (and "fp32" for f32). Throws strata::Error naming --precision for anything
// else. The CPU computes f32 only: parse_device refuses a CPU device at bf16 or tf32 (engine/device.h).
Precision parse_precision(const std::string& text);
const char* precision_name(Precision precision);

// What a model run (training, evaluation, benchmarks) checks after parsing: bf16 throws
// strata::Error naming --precision, since the model forward does not cast to bf16 yet; f32 and
// tf32 pass.
void check_model_precision(Precision precision);

// The ops that compute in the precision's tensor math (see the file comment).
inline constexpr std::string_view kTensorMathOps[] = {
    "conv2d",                  // student convolutions, forward
    "conv2d backward data",    // and their two gradients
    "conv2d backward filter",  //
    "conv2d_activation",       // the folded teacher's convolutions with their epilogue
    "linear",                  // cuBLAS GEMMs
    "linear backward",         //
};

// How an op computes at --precision bf16 (autocast's lists: lower_precision_fp, fp32, and the rest).
enum class Bf16Compute : uint8_t {
  bf16_operands,   // reads bf16 operands (f32 ones are cast once), accumulates in f32, writes bf16
  f32_statistics,  // bf16 activations in and out; mean, variance, affine parameters and running
                   // statistics in f32 (batch norm, In-place ABN)
  f32,             // reads bf16 or f32, computes and writes f32 (exp/log and long sums lose too
                   // much in bf16's 8-bit significand: softmax, losses, reductions)
  input_dtype,     // computes in its input's dtype (elementwise ops, pooling, interpolation, copies)
};

struct Bf16OpPolicy {
  std::string_view op;  // dispatch name
  Bf16Compute compute;
};

// The ops with a rule at bf16; an op not listed computes in its input's dtype (Bf16Compute::input_dtype).
inline constexpr Bf16OpPolicy kBf16Policy[] = {
    {"conv2d", Bf16Compute::bf16_operands},
    {"conv2d backward data", Bf16Compute::bf16_operands},
    {"conv2d backward filter", Bf16Compute::bf16_operands},  // the bf16 weight copy's gradient, cast
                                                             // to f32 into the master gradient
    {"conv2d_activation", Bf16Compute::bf16_operands},
    {"linear", Bf16Compute::bf16_operands},
    {"linear backward", Bf16Compute::bf16_operands},
    {"batch_norm", Bf16Compute::f32_statistics},
    {"inplace_abn", Bf16Compute::f32_statistics},
    {"softmax", Bf16Compute::f32},
    {"log_softmax", Bf16Compute::f32},
    {"logsumexp", Bf16Compute::f32},
    {"cross_entropy", Bf16Compute::f32},
    {"nll", Bf16Compute::f32},
    {"bce_with_logits", Bf16Compute::f32},
    {"mse", Bf16Compute::f32},
    {"fused_losses", Bf16Compute::f32},
    {"local_pod_distance", Bf16Compute::f32},
    {"weighted_squared_distance", Bf16Compute::f32},
    {"entropy_pseudo_labels", Bf16Compute::f32},
    {"conv2d backward bias", Bf16Compute::f32},  // a sum of the upstream gradient over pixels
    {"sum", Bf16Compute::f32},
    {"mean", Bf16Compute::f32},
    {"sum_spatial", Bf16Compute::f32},
    {"mean_spatial", Bf16Compute::f32},
    {"sum_channels", Bf16Compute::f32},
    {"mean_channels", Bf16Compute::f32},
    {"reduce_to", Bf16Compute::f32},
    {"adaptive_avg_pool2d", Bf16Compute::f32},
};

// How `op` (a dispatch name) computes at --precision bf16.
Bf16Compute bf16_compute(std::string_view op);

// Whether `op` (a dispatch name) computes in the precision's tensor math.
bool uses_tensor_math(std::string_view op);

// The math a kernel of `op` gets on a device running at `precision` (kernels/cuda/backend.h).
kernels::cuda::FloatMath float_math_for(Precision precision, std::string_view op);

}  // namespace strata
