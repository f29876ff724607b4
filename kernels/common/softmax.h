// Per-pixel softmax-family math over C contiguous channel values (one NHWC pixel), written once and
// called by the CPU kernels and the CUDA kernels (host and device). Definitions as PyTorch documents
// them for torch.softmax / log_softmax / logsumexp / F.cross_entropy / torch.argmax:
//
//   m           = max_{c in [b,e)} x_c                             (the shift that keeps exp finite)
//   lse_[b,e)   = m + log sum_{c in [b,e)} exp(x_c - m)
//   softmax_c   = exp(x_c - lse),  log_softmax_c = x_c - lse       (lse over all C channels,
//                 evaluated as (x_c - m) - log sum exp(x - m), as PyTorch does, for accuracy)
//   CE(x, y)    = lse - x_y                                        (= -log_softmax_y)
//   dCE/dx_c    = softmax_c - [c == y]
//   d lse_[b,e) / dx_c = exp(x_c - lse_[b,e)) for c in [b,e), 0 outside
//   softmax backward:     dx_c = y_c (dy_c - sum_k dy_k y_k)
//   log_softmax backward: dx_c = dy_c - exp(y_c) sum_k dy_k
//   argmax      = the first channel holding the maximum; NaN counts as larger than any number (as
//                 torch.argmax, which propagates NaN through max).
//
// T is the storage type of the values, Acc the type the math runs in (T itself for f32/f64 on the
// CPU; f32 for bf16/f16 on CUDA). Every range must be non-empty (b < e); callers validate.
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/common/host_device.h"

namespace strata::kernels::common {

template <class Acc, class T>
STRATA_HOST_DEVICE inline Acc channel_max(const T* x, int64_t begin, int64_t end) {
  Acc m = static_cast<Acc>(x[begin]);
  for (int64_t c = begin + 1; c < end; ++c) {
    Acc v = static_cast<Acc>(x[c]);
    m = v > m ? v : m;
  }
  return m;
}

// logsumexp as its two parts, max + log_sum: subtracting the parts one at a time keeps
// x_c - lse accurate where max + log_sum would be rounded to the precision of a large max.
template <class Acc>
struct LogSumExp {
  Acc max;
  Acc log_sum;  // log sum_c exp(x_c - max)
  STRATA_HOST_DEVICE Acc value() const { return max + log_sum; }
};

template <class Acc, class T>
STRATA_HOST_DEVICE inline LogSumExp<Acc> logsumexp_parts(const T* x, int64_t begin, int64_t end) {
  Acc m = channel_max<Acc>(x, begin, end);
  Acc s = 0;
  for (int64_t c = begin; c < end; ++c) s += std::exp(static_cast<Acc>(x[c]) - m);
  return {m, std::log(s)};
}

// log sum_{c in [begin, end)} exp(x_c).
template <class Acc, class T>
STRATA_HOST_DEVICE inline Acc logsumexp_range(const T* x, int64_t begin, int64_t end) {
  return logsumexp_parts<Acc>(x, begin, end).value();
}

// y: (C) <- log_softmax(x: (C)) = (x - max) - log_sum; y may alias x.
template <class Acc, class T>
STRATA_HOST_DEVICE inline void log_softmax_pixel(T* y, const T* x, int64_t channels) {
  LogSumExp<Acc> lse = logsumexp_parts<Acc>(x, 0, channels);
  for (int64_t c = 0; c < channels; ++c) y[c] = static_cast<T>((static_cast<Acc>(x[c]) - lse.max) - lse.log_sum);
}

// y: (C) <- softmax(x: (C)); the exponentials are written once and normalised in place.
template <class Acc, class T>
STRATA_HOST_DEVICE inline void softmax_pixel(T* y, const T* x, int64_t channels) {
  Acc m = channel_max<Acc>(x, 0, channels);
  Acc s = 0;
  for (int64_t c = 0; c < channels; ++c) {
    Acc e = std::exp(static_cast<Acc>(x[c]) - m);
    y[c] = static_cast<T>(e);
    s += e;
  }
  Acc inv = Acc(1) / s;
  for (int64_t c = 0; c < channels; ++c) y[c] = static_cast<T>(static_cast<Acc>(y[c]) * inv);
}

// dx_c = y_c (dy_c - sum_k dy_k y_k), from the forward output y.
template <class Acc, class T>
STRATA_HOST_DEVICE inline void softmax_backward_pixel(T* dx, const T* dy, const T* y, int64_t channels) {
  Acc dot = 0;
  for (int64_t c = 0; c < channels; ++c) dot += static_cast<Acc>(dy[c]) * static_cast<Acc>(y[c]);
  for (int64_t c = 0; c < channels; ++c) {
    dx[c] = static_cast<T>(static_cast<Acc>(y[c]) * (static_cast<Acc>(dy[c]) - dot));
  }
}

// dx_c = dy_c - exp(y_c) sum_k dy_k, from the forward output y = log_softmax(x).
template <class Acc, class T>
STRATA_HOST_DEVICE inline void log_softmax_backward_pixel(T* dx, const T* dy, const T* y, int64_t channels) {
  Acc total = 0;
  for (int64_t c = 0; c < channels; ++c) total += static_cast<Acc>(dy[c]);
  for (int64_t c = 0; c < channels; ++c) {
    dx[c] = static_cast<T>(static_cast<Acc>(dy[c]) - std::exp(static_cast<Acc>(y[c])) * total);
  }
}

// dx: (C) <- dlse * d lse_[begin,end) / dx, zero outside the range; lse is the forward value.
template <class Acc, class T>
STRATA_HOST_DEVICE inline void logsumexp_backward_pixel(T* dx, Acc dlse, const T* x, Acc lse, int64_t channels,
                                                        int64_t begin, int64_t end) {
  for (int64_t c = 0; c < begin; ++c) dx[c] = T(0);
  for (int64_t c = begin; c < end; ++c) dx[c] = static_cast<T>(dlse * std::exp(static_cast<Acc>(x[c]) - lse));
  for (int64_t c = end; c < channels; ++c) dx[c] = T(0);
}

// One pixel's cross-entropy (max - x_label) + log_sum for a valid label in [0, C); also returns the
// logsumexp parts, from which the backward rebuilds the softmax without another max/sum pass.
template <class Acc, class T>
STRATA_HOST_DEVICE inline Acc cross_entropy_pixel(const T* x, int64_t channels, int64_t label, LogSumExp<Acc>& lse) {
  lse = logsumexp_parts<Acc>(x, 0, channels);
  return (lse.max - static_cast<Acc>(x[label])) + lse.log_sum;
}

// dx_c = weight (softmax_c - [c == label]) with softmax_c = exp((x_c - max) - log_sum).
template <class Acc, class T>
STRATA_HOST_DEVICE inline void cross_entropy_backward_pixel(T* dx, const T* x, int64_t channels, int64_t label,
                                                            LogSumExp<Acc> lse, Acc weight) {
  for (int64_t c = 0; c < channels; ++c) {
    Acc p = std::exp((static_cast<Acc>(x[c]) - lse.max) - lse.log_sum);
    dx[c] = static_cast<T>(weight * (c == label ? p - Acc(1) : p));
  }
}

// The first index of the largest value among C >= 1 channels; the first NaN wins over numbers.
template <class Acc, class T>
STRATA_HOST_DEVICE inline int64_t channel_argmax(const T* x, int64_t channels) {
  int64_t best = 0;
  Acc m = static_cast<Acc>(x[0]);
  if (std::isnan(m)) return 0;
  for (int64_t c = 1; c < channels; ++c) {
    Acc v = static_cast<Acc>(x[c]);
    if (std::isnan(v)) return c;
    if (v > m) {
      m = v;
      best = c;
    }
  }
  return best;
}

}  // namespace strata::kernels::common
