// Batch normalisation with an optional invertible activation: the one computation behind the ops
// batch_norm and inplace_abn, shared by the CPU kernels (kernels/cpu/batch_norm.cpp) and the CUDA
// kernels (kernels/cuda/batch_norm.cu) so both round the same double-precision quantities to T in the
// same way. Definitions: PyTorch's F.batch_norm (Ioffe & Szegedy, ICML 2015) and mapillary/inplace_abn
// v1 (Rota Bulo, Porzi, Kontschieder, "In-Place Activated BatchNorm for Memory-Optimized Training of
// DNNs", CVPR 2018), the version MiB and PLOP use. R = rows (N*H*W pixels), C = channels; per channel:
//
//   statistics: training: mean and the biased var over the R rows, summed in double in two passes
//               (the one-pass E[x^2] - E[x]^2 loses all precision when |mean| >> std); the running
//               statistics move towards them with the unbiased var R/(R-1). eval: the running ones.
//               invstd = 1/sqrt(var + eps)
//   forward:    xhat = (x - mean) invstd,  z = xhat gamma + beta,  y = act(z)
//               gamma = weight (batch norm) or |weight| + eps (In-place ABN: never 0, so invertible),
//               1 without a weight; beta = bias, 0 without one;
//               act = leaky ReLU with slope > 0, the identity for slope 1
//   backward:   dz = dy act'(z),  dbias = sum dz,  dweight = dgamma/dweight sum xhat dz
//               (dgamma/dweight = sign(weight), sign(0) = +1, for |weight| + eps)
//               training dx = (dz - mean(dz) - xhat mean(xhat dz)) gamma invstd  (mean, var depend on x)
//               eval     dx = dz gamma invstd
// Batch norm is {plain weight, slope 1}; In-place ABN is {|weight| + eps, slope}.
//
// The backward reads one saved tensor v: the input x (batch norm; the activation must then be the
// identity) or the output y (In-place ABN: the affine map and the activation are inverted, so the op
// never keeps x). Per element, in one formula for both:
//   z = v sel(v, 1, 1/slope),  dz = dy sel(v, 1, slope),  u = (z - shift) unscale
// with sel(v, a, b) = v > 0 ? a : b (for y, y > 0 exactly when z > 0; at z = 0 the derivative taken is
// the slope, as PyTorch's leaky_relu) and per-channel
//   from x: shift = mean, unscale = 1,          u = x - mean      (z = x, dz = dy: slope 1)
//   from y: shift = beta, unscale = 1/gamma,    u = xhat
// so xhat = u xhat_per_u with xhat_per_u = invstd from x, 1 from y. The sums sum dz and sum u dz are
// taken in double; then dweight = dgamma/dweight xhat_per_u sum u dz and
//   dx = (dz - a - u b) k,   k = invstd gamma,  a = mean(dz),  b = xhat_per_u^2 mean(u dz)   (training)
//   dx = dz k                                                                                 (eval)
// Every expression keeps the operation order the separate batch-norm and In-place ABN kernels had, so
// both ops' results are unchanged (In-place ABN's eval dx was (dz - 0 - u 0) k: equal up to the sign
// of a zero).
#pragma once

#include <cmath>
#include <cstdint>

#if !defined(__CUDA_ARCH__)
#include <bit>
#include <type_traits>
#endif

#include "kernels/common/host_device.h"

namespace strata::kernels::common {

// How the scale gamma is made from the affine weight.
enum class NormWeight {
  plain,        // gamma = weight (batch norm)
  abs_plus_eps  // gamma = |weight| + eps (In-place ABN)
};

// Synchronised batch norm (data-parallel training, SyncBN / InPlaceABNSync): the training backward's
// per-channel sums (sum dz, then sum u dz: 2C doubles on the backend's memory) are summed over every
// rank in place by sum() before the input gradient uses them, with `rows` the rows of all ranks
// together. The weight and bias gradients come from the rank's own sums, before sum(): the data-parallel
// gradient average then makes them the mean over the ranks, as PyTorch's SyncBatchNorm + DDP.
struct NormSync {
  virtual ~NormSync() = default;
  virtual void sum(double* sums, int64_t count) const = 0;
  int64_t rows = 0;
};

// The tensor the backward recovers xhat and act'(z) from.
enum class NormSaved {
  input,  // x: batch norm, identity activation
  output  // y: In-place ABN
};

// What makes a batch-norm layer batch norm or In-place ABN.
struct NormActivation {
  NormWeight weight = NormWeight::plain;
  double eps = 0.0;    // of |weight| + eps
  double slope = 1.0;  // leaky ReLU negative slope > 0; 1 is the identity
  NormSaved saved = NormSaved::input;
};

STRATA_HOST_DEVICE inline double batch_norm_invstd(double var, double eps) { return 1.0 / std::sqrt(var + eps); }

// R / (R - 1): the biased batch variance times this is the unbiased one (R > 1).
STRATA_HOST_DEVICE inline double batch_norm_unbias(int64_t rows) {
  return static_cast<double>(rows) / static_cast<double>(rows - 1);
}

// running = (1 - momentum) running + momentum batch, with the unbiased variance for running_var.
STRATA_HOST_DEVICE inline double batch_norm_running_mean(double running, double mean, double momentum) {
  return (1.0 - momentum) * running + momentum * mean;
}
STRATA_HOST_DEVICE inline double batch_norm_running_var(double running, double var, double unbias, double momentum) {
  return (1.0 - momentum) * running + momentum * var * unbias;
}

// gamma of channel c (1 without a weight).
template <class T>
STRATA_HOST_DEVICE inline double norm_gamma(const T* weight, const NormActivation& act, int64_t c) {
  if (!weight) return 1.0;
  const double w = static_cast<double>(weight[c]);
  return act.weight == NormWeight::plain ? w : std::fabs(w) + act.eps;
}

// The forward before the activation as z = (x - shift) scale + offset per channel:
// shift = mean, scale = invstd gamma, offset = beta.
template <class T>
struct ChannelAffine {
  T shift;
  T scale;
  T offset;
};

template <class T>
STRATA_HOST_DEVICE inline ChannelAffine<T> norm_affine(double mean, double invstd, const T* weight, const T* bias,
                                                       const NormActivation& act, int64_t c) {
  return {static_cast<T>(mean), static_cast<T>(invstd * norm_gamma(weight, act, c)), bias ? bias[c] : T(0)};
}

// sel(v, if_positive, otherwise) of the file comment. On the host it decides on v's bit pattern
// (positive as a signed integer = sign bit clear and not +0): with GCC's default -ftrapping-math a
// floating-point compare inside a loop is never if-converted, so `v > 0 ? a : b` would keep the CPU's
// per-channel loops scalar, and this form vectorises. Same answer as v > 0 for every non-NaN v.
template <class V>
STRATA_HOST_DEVICE inline V select_positive(V v, V if_positive, V otherwise) {
#if defined(__CUDA_ARCH__)
  return v > V(0) ? if_positive : otherwise;
#else
  using Bits = std::conditional_t<sizeof(V) == 4, int32_t, int64_t>;
  Bits mask = -static_cast<Bits>(std::bit_cast<Bits>(v) > 0);
  return std::bit_cast<V>(
      static_cast<Bits>((std::bit_cast<Bits>(if_positive) & mask) | (std::bit_cast<Bits>(otherwise) & ~mask)));
#endif
}

// y = act((x - shift) scale + offset) for one element (the activation a multiplication by 1 or slope).
template <class T>
STRATA_HOST_DEVICE inline T norm_forward(T x, T shift, T scale, T offset, T slope) {
  const T z = (x - shift) * scale + offset;
  return z * select_positive(z, T(1), slope);
}

// z and dz of one element from the saved value v (see the file comment).
template <class V>
STRATA_HOST_DEVICE inline V norm_z(V v, V inv_slope) {
  return v * select_positive(v, V(1), inv_slope);
}
template <class V>
STRATA_HOST_DEVICE inline V norm_dz(V dy, V v, V slope) {
  return dy * select_positive(v, V(1), slope);
}

// The per-channel constants that turn v into u = (z - shift) unscale, in double for the sums.
struct NormRecovery {
  double shift;
  double unscale;
};

// mean may be null when the backward reads the output.
template <class T>
STRATA_HOST_DEVICE inline NormRecovery norm_recovery(const double* mean, const T* weight, const T* bias,
                                                     const NormActivation& act, int64_t c) {
  if (act.saved == NormSaved::input) return {mean[c], 1.0};
  return {bias ? static_cast<double>(bias[c]) : 0.0, 1.0 / norm_gamma(weight, act, c)};
}

// One element's terms of the sums, in double: sum_dz += dz, sum_u_dz += u dz.
STRATA_HOST_DEVICE inline void add_norm_terms(double& sum_dz, double& sum_u_dz, double dy, double v, double shift,
                                              double unscale, double slope, double inv_slope) {
  const double dz = norm_dz(dy, v, slope);
  sum_dz += dz;
  sum_u_dz += (norm_z(v, inv_slope) - shift) * unscale * dz;
}

// xhat per unit of u: invstd from x, 1 from y.
STRATA_HOST_DEVICE inline double xhat_per_u(double invstd, const NormActivation& act) {
  return act.saved == NormSaved::input ? invstd : 1.0;
}

// dweight = dgamma/dweight sum xhat dz from sum_u_dz = sum u dz.
template <class T>
STRATA_HOST_DEVICE inline T norm_dweight(T weight, double sum_u_dz, double invstd, const NormActivation& act) {
  const double dgamma = act.saved == NormSaved::input ? sum_u_dz * invstd : sum_u_dz;
  if (act.weight == NormWeight::plain) return static_cast<T>(dgamma);
  return static_cast<T>(weight >= T(0) ? dgamma : -dgamma);
}

// dx = (dz - a - u b) k per channel, with the recovery constants rounded to T; eval has a = b = 0
// and computes dz k.
template <class T>
struct NormBackwardCoefficients {
  T k;
  T a;
  T b;
  T shift;
  T unscale;
};

template <class T>
STRATA_HOST_DEVICE inline NormBackwardCoefficients<T> norm_backward_coefficients(double sum_dz, double sum_u_dz,
                                                                                 double invstd, double gamma,
                                                                                 const NormRecovery& r,
                                                                                 const NormActivation& act,
                                                                                 bool training, double inv_rows) {
  NormBackwardCoefficients<T> out{static_cast<T>(invstd * gamma), T(0), T(0), static_cast<T>(r.shift),
                                  static_cast<T>(r.unscale)};
  if (training) {
    const double per_u = xhat_per_u(invstd, act);
    out.a = static_cast<T>(sum_dz * inv_rows);
    out.b = static_cast<T>(per_u * per_u * sum_u_dz * inv_rows);
  }
  return out;
}

// dx of one element in training, from the coefficients' values of its channel.
template <class T>
STRATA_HOST_DEVICE inline T norm_backward_dx(T dy, T v, T k, T a, T b, T shift, T unscale, T slope, T inv_slope) {
  const T u = (norm_z(v, inv_slope) - shift) * unscale;
  return (norm_dz(dy, v, slope) - a - u * b) * k;
}

}  // namespace strata::kernels::common
