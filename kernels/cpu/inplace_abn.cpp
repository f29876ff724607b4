// In-place Activated Batch Normalisation (Rota Bulo, Porzi, Kontschieder, "In-Place Activated
// BatchNorm for Memory-Optimized Training of DNNs", CVPR 2018), as mapillary/inplace_abn v1, the
// version MiB and PLOP use. R = rows (N*H*W pixels), C = channels (contiguous, innermost).
//   forward : z = (x - mean) invstd gamma + beta,  gamma = |w| + eps,  y = act(z)
//             act = leaky ReLU with slope > 0 (identity = slope 1)
//   backward: both act and the affine map are invertible (slope > 0, gamma > 0), so everything the
//             gradient needs is recomputed from y instead of keeping x:
//             z = act^-1(y), dz = dy act'(z), xhat = (z - beta) / gamma
//             dbeta = sum dz,  dw = sign(w) sum xhat dz
//             training dx = (dz - mean(dz) - xhat mean(xhat dz)) gamma invstd
//             eval     dx = dz gamma invstd
// y > 0 exactly when z > 0 (slope > 0), so the branch on y is the branch on z; at z = 0 the
// derivative taken is the slope, as PyTorch's leaky_relu.
#include "kernels/cpu/inplace_abn.h"

#include <bit>
#include <cstddef>
#include <type_traits>
#include <vector>

#include "kernels/common/batch_norm.h"
#include "kernels/cpu/batch_norm.h"
#include "kernels/cpu/parallel.h"

namespace strata::kernels::cpu {

namespace {

int64_t row_grain(int64_t channels) { return channels > 0 ? kElementwiseGrain / channels + 1 : 1; }

// `if_positive` where v > 0, else `otherwise`, decided on v's bit pattern (positive as a signed
// integer = sign bit clear and not +0). With GCC's default -ftrapping-math a floating-point compare
// inside a loop is never if-converted, so `v > 0 ? a : b` keeps the per-channel loops scalar; this
// form vectorises. Same answer as v > 0 for every non-NaN v (and a NaN v yields NaN either way).
template <class T>
inline T select_positive(T v, T if_positive, T otherwise) {
  using Bits = std::conditional_t<sizeof(T) == 4, int32_t, int64_t>;
  Bits mask = -static_cast<Bits>(std::bit_cast<Bits>(v) > 0);
  return std::bit_cast<T>(static_cast<Bits>((std::bit_cast<Bits>(if_positive) & mask) |
                                            (std::bit_cast<Bits>(otherwise) & ~mask)));
}

// gamma = |w| + eps per channel (1 without a weight).
template <class T>
std::vector<double> gammas(const T* weight, double eps, int64_t channels) {
  std::vector<double> out(static_cast<size_t>(channels));
  for (int64_t c = 0; c < channels; ++c) out[static_cast<size_t>(c)] = common::inplace_abn_gamma(weight, eps, c);
  return out;
}

}  // namespace

template <class T>
void inplace_abn_forward_cpu(T* y, const T* x, const double* mean, const double* invstd, const T* weight,
                             const T* bias, double eps, double slope, int64_t rows, int64_t channels) {
  const size_t width = static_cast<size_t>(channels);
  std::vector<double> gamma = gammas(weight, eps, channels);
  std::vector<T> shift(width), scale(width), offset(width);
  for (int64_t c = 0; c < channels; ++c) {
    size_t u = static_cast<size_t>(c);
    common::ChannelAffine<T> affine = common::inplace_abn_affine(mean[c], invstd[c], gamma[u], bias, c);
    shift[u] = affine.shift;
    scale[u] = affine.scale;
    offset[u] = affine.offset;
  }
  const T* m = shift.data();
  const T* s = scale.data();
  const T* b = offset.data();
  const T k = static_cast<T>(slope);
  // Scalars are captured by value: by reference, a store to y might alias them as far as the
  // compiler knows, which also keeps the loop scalar.
  parallel_for(0, rows, row_grain(channels), [&, k](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const T* xr = x + r * channels;
      T* yr = y + r * channels;
      for (int64_t c = 0; c < channels; ++c) {
        T z = (xr[c] - m[c]) * s[c] + b[c];
        yr[c] = z * select_positive(z, T(1), k);
      }
    }
  });
}

template <class T>
void inplace_abn_backward_cpu(T* dx, T* dweight, T* dbias, const T* dy, const T* y, const double* invstd,
                              const T* weight, const T* bias, double eps, double slope, bool training, int64_t rows,
                              int64_t channels) {
  const size_t width = static_cast<size_t>(channels);
  std::vector<double> gamma = gammas(weight, eps, channels);
  std::vector<double> beta(width, 0.0), inv_gamma(width);
  for (int64_t c = 0; c < channels; ++c) {
    size_t u = static_cast<size_t>(c);
    if (bias) beta[u] = static_cast<double>(bias[c]);
    inv_gamma[u] = 1.0 / gamma[u];
  }
  const double inv_slope = 1.0 / slope;

  // sums[c] = sum dz, sums[C + c] = sum xhat dz
  std::vector<double> sums(2 * width, 0.0);
  if (dweight || dbias || (training && dx)) {
    const double* betap = beta.data();
    const double* igp = inv_gamma.data();
    channel_sums_cpu<2>(sums.data(), rows, channels, [&, slope, inv_slope](int64_t r, double* p) {
      const T* yr = y + r * channels;
      const T* dyr = dy + r * channels;
      for (int64_t c = 0; c < channels; ++c) {
        double yv = static_cast<double>(yr[c]);
        double dz = static_cast<double>(dyr[c]) * select_positive(yv, 1.0, slope);
        double z = yv * select_positive(yv, 1.0, inv_slope);
        p[c] += dz;
        p[channels + c] += (z - betap[c]) * igp[c] * dz;
      }
    });
  }
  for (int64_t c = 0; c < channels; ++c) {
    size_t u = static_cast<size_t>(c);
    if (dbias) dbias[c] = static_cast<T>(sums[u]);
    if (dweight) dweight[c] = common::inplace_abn_dweight(weight[c], sums[width + u]);
  }
  if (!dx) return;

  // dx = k (dz - a - xhat b): k = gamma invstd, a = mean(dz), b = mean(xhat dz); eval has a = b = 0.
  std::vector<T> k(width), a(width, T(0)), b(width, T(0)), beta_t(width), inv_gamma_t(width);
  const double inv_rows = rows > 0 ? 1.0 / static_cast<double>(rows) : 0.0;
  for (int64_t c = 0; c < channels; ++c) {
    size_t u = static_cast<size_t>(c);
    common::InplaceAbnBackwardCoefficients<T> co = common::inplace_abn_backward_coefficients<T>(
        sums[u], sums[width + u], invstd[c], gamma[u], beta[u], training, inv_rows);
    k[u] = co.k;
    a[u] = co.a;
    b[u] = co.b;
    beta_t[u] = co.beta;
    inv_gamma_t[u] = co.inv_gamma;
  }
  const T* kp = k.data();
  const T* ap = a.data();
  const T* bp = b.data();
  const T* betap = beta_t.data();
  const T* igp = inv_gamma_t.data();
  const T slope_t = static_cast<T>(slope), inv_slope_t = static_cast<T>(inv_slope);
  parallel_for(0, rows, row_grain(channels), [&, slope_t, inv_slope_t](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const T* yr = y + r * channels;
      const T* dyr = dy + r * channels;
      T* dxr = dx + r * channels;
      for (int64_t c = 0; c < channels; ++c) {
        T yv = yr[c];
        T dz = dyr[c] * select_positive(yv, T(1), slope_t);
        T xhat = (yv * select_positive(yv, T(1), inv_slope_t) - betap[c]) * igp[c];
        dxr[c] = (dz - ap[c] - xhat * bp[c]) * kp[c];
      }
    }
  });
}

#define STRATA_INSTANTIATE(T)                                                                                 \
  template void inplace_abn_forward_cpu<T>(T*, const T*, const double*, const double*, const T*, const T*,   \
                                           double, double, int64_t, int64_t);                                \
  template void inplace_abn_backward_cpu<T>(T*, T*, T*, const T*, const T*, const double*, const T*,         \
                                            const T*, double, double, bool, int64_t, int64_t);
STRATA_INSTANTIATE(float)
STRATA_INSTANTIATE(double)
#undef STRATA_INSTANTIATE

}  // namespace strata::kernels::cpu
