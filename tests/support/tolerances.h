// Tolerances, set once per precision for the whole test suite. Never loosen one to make a test
// pass: a failure means the op (or the reference) is wrong.
//
// A value a passes against a reference b when
//     |a - b| <= rtol * |b| + atol * max|reference|
// The second term scales with the reference's magnitude, so elements that cancel to near zero in
// a large sum are judged relative to the size of the quantity, not to their own tiny value.
#pragma once

#include <catch2/catch.hpp>

#include "engine/dtype.h"

namespace strata::test {

struct Tolerance {
  double rtol;
  double atol;  // relative to the largest reference magnitude
};

// f32 results against PyTorch's f32 results (or our f64 results), and f64 against f64.
inline constexpr Tolerance kF32 = {1e-4, 1e-5};
inline constexpr Tolerance kF64 = {1e-10, 1e-12};

inline Tolerance tolerance_for(DType dtype) { return dtype == DType::f64 ? kF64 : kF32; }

// A TF32 convolution or GEMM (--precision tf32, engine/precision.h) against the f32 CPU result.
// TF32 rounds both inputs of every product to a 10-bit mantissa (unit roundoff u = 2^-11 = 4.9e-4),
// so each product carries a relative error of up to 2u, and fp32 accumulation adds nothing
// comparable. Summed over a reduction of K terms of random sign, the errors add as a random walk:
// about u sqrt(K) times a term's magnitude, while the output's largest magnitude is several times
// sqrt(K) times it. 4u relative to that largest magnitude (atol), and 4u of an element's own value
// (rtol: a product with no cancellation, K = 1), leave a margin of over ten standard deviations for
// the reductions of the tests (K = 9 to 2,304); a strict fp32 kernel is within kF32, 20x tighter.
inline constexpr Tolerance kTF32 = {2e-3, 2e-3};

// A bf16 convolution or GEMM (--precision bf16, engine/precision.h: bf16 operands, fp32 accumulation,
// bf16 output) against the f32 CPU result on the unrounded f32 inputs. bf16 keeps an 8-bit
// significand (unit roundoff u = 2^-8 = 3.9e-3). Rounding both inputs gives each product a relative
// error of up to 2u; over a reduction of K terms of random sign these add as a random walk, about
// u sqrt(K) times a term's magnitude, against an output whose largest magnitude is several times
// sqrt(K) times it, so they stay under u of that largest magnitude; fp32 accumulation adds nothing
// comparable. The store then rounds each output once to bf16: up to u of its own value. 4u relative
// to the largest magnitude (atol) and 4u of an element's own value (rtol, which covers the store's
// rounding and a product with no cancellation, K = 1) are kTF32's rule at bf16's u; the largest error
// of tests/cuda/test_bf16.cpp (reductions of K = 24 to 432, 27 outputs) is 1.14u of the largest
// magnitude, under a third of the bound. kTF32 is 8x tighter, kF32 over 100x.
inline constexpr Tolerance kBF16 = {1.6e-2, 1.6e-2};

// Whole networks (tens of layers) accumulate float32 rounding: PyTorch's own float32 logits of a
// DeepLabV3-ResNet-50 differ from its float64 logits by more than kF32 allows. Model parity is
// therefore checked in float64 against PyTorch's float64 results with the kF32 tolerance, and a
// float32 forward is held to this many times PyTorch's own float32 error (largest absolute error
// against the float64 result; same precision, different summation orders).
inline constexpr double kF32ErrorBudgetVsPyTorch = 2.0;

// A whole network's backward amplifies rounding even in float64: moving every input and parameter
// value of a DeepLabV3-ResNet-50 training step to a neighbouring double changes its float64
// gradients by a few 1e-12 of their largest magnitude, beyond kF64's atol. Two float64
// implementations of a whole step (different summation orders, e.g. CUDA and the CPU) therefore hold
// each gradient and updated parameter to kF64 or, failing that, to this many times the reference's
// own sensitivity measured that way in the same run (errors relative to each tensor's largest
// magnitude; the sensitivity is the largest such change over all gradients and parameters).
inline constexpr double kF64ErrorBudgetVsRounding = 2.0;

// Finite-difference gradient checks (f64, central differences with step kGradcheckStep).
inline constexpr double kGradcheckStep = 1e-6;
// The step for a whole network (a model's output w.r.t. its input): its forward sums thousands of
// rounded products per output, so at h = 1e-6 the central difference of a tiny DeepLabV3 (ResNet-14 of
// width 4) carried up to 5e-9 of roundoff, ~1e-6 of the largest derivative, where h = 1e-3 and 1e-4
// agreed with the analytic gradient to 1e-10 (measured on three elements, tests/models/
// test_input_gradient.cpp). The larger step trades that roundoff for a truncation error of order h^2.
inline constexpr double kGradcheckNetworkStep = 1e-4;
inline constexpr Tolerance kGradcheck = {1e-6, 1e-8};

// Scalars against a value the test computes itself:
//   kF32Scalar  a float32 result of a short closed formula (a few roundings of 2^-24 each, no long
//               sums) against the formula evaluated in double
//   kF64Scalar  a float64 result against the same formula in double, or a float64 sum against the
//               same terms summed in another order or scaled once more (n terms of one sign differ
//               by at most n 2^-53 of the sum: below 1e-12 up to 4,500 terms)
inline constexpr Tolerance kF32Scalar = {1e-6, 0};
inline constexpr Tolerance kF64Scalar = {1e-12, 0};

// A sample standard deviation of n independent draws against its distribution's: the relative
// standard error is about 1/sqrt(2n) (0.18% for the 147,456 weights of a 3x3 convolution from 64 to
// 256 channels), so 2% is more than ten standard errors. A wrong scale (a factor of sqrt(2), the
// other fan) fails; chance does not.
inline constexpr Tolerance kSampleStddev = {0.02, 0};

// `strata profile` (apps/strata/profile.h): the time its phase scopes cover against the wall time of
// the same iterations. What no scope covers (normalisation, zero_grad, the profiler's own
// bookkeeping) is a few percent of a tiny step; an uncovered phase (a missing scope) is far more.
inline constexpr double kProfileUncoveredWallShare = 0.10;

// `strata summary --memory` (apps/strata/memory_prediction.h): a step's predicted peak memory
// against the peak measured at that size. The prediction extends each row of the peak affinely in
// batch x pixels from two small probes; what is not affine (per-image pooled tensors, a workspace
// chosen per shape, the caching allocator's 512-byte rounding) stays within 10% (issue 14's bound).
inline constexpr double kMemoryPredictionShare = 0.10;

// A scalar checked against `expected` with a tolerance of this file: CHECK(x == approx(b, kF32)).
// For one value the largest reference magnitude is |b| itself, so the rule above reads
// |a - b| <= (rtol + atol) * |b|. kF64 where the compared values are computed in double, kF32
// where one of them is computed in float, the Scalar ones for the closed formulas above. An
// expected 0 takes an exact 0.
inline Catch::Detail::Approx approx(double expected, Tolerance tolerance = kF64) {
  return Catch::Detail::Approx(expected).epsilon(tolerance.rtol + tolerance.atol).margin(0.0);
}

}  // namespace strata::test
