// Loss kernels, as PyTorch 1.13 defines them (torch.nn.functional documentation):
//   cross_entropy(x, y)   = -log softmax(x)_y = logsumexp(x) - x_y           F.cross_entropy
//   nll(lp, y)            = -lp_y                                             F.nll_loss
//   bce_with_logits(x, t) = -[t log sigmoid(x) + (1 - t) log(1 - sigmoid(x))]  F.binary_cross_entropy_with_logits
//                         = max(x, 0) - x t + log(1 + exp(-|x|))              (the stable form)
//   mse(a, b)             = (a - b)^2                                         F.mse_loss
// The per-pixel softmax math is kernels/common/softmax.h, the per-element math
// kernels/common/losses.h. Cross-entropy is fused: the forward never materialises a log-softmax, and
// the backward rebuilds softmax_c = exp((x_c - max) - log_sum) from the logits and the two
// logsumexp parts saved per pixel, in a single pass.
//
// Sums are taken per fixed chunk (boundaries depend only on the sizes) in double and combined in
// chunk order, so a loss has the same bits on 1 or 64 threads.
#include "kernels/cpu/losses.h"

#include <cmath>
#include <cstddef>
#include <vector>

#include "kernels/common/losses.h"
#include "kernels/common/softmax.h"
#include "kernels/cpu/parallel.h"

namespace strata::kernels::cpu {

namespace cm = strata::kernels::common;

namespace {

// Items per chunk for loops that evaluate an exp or log per value.
constexpr int64_t kTranscendentalGrain = int64_t{1} << 14;

int64_t pixel_grain(int64_t values_per_pixel, int64_t budget) { return budget / values_per_pixel + 1; }

// Runs f(lo, hi) -> LabelledLossSum over the fixed chunks of [0, n) and combines them in order.
template <class F>
LabelledLossSum sum_chunks(int64_t n, int64_t grain, F&& f) {
  int64_t chunks = (n + grain - 1) / grain;
  std::vector<LabelledLossSum> partial(static_cast<size_t>(chunks > 0 ? chunks : 1));
  parallel_for(0, n, grain, [&](int64_t lo, int64_t hi) { partial[static_cast<size_t>(lo / grain)] = f(lo, hi); });
  LabelledLossSum total;
  for (const LabelledLossSum& p : partial) {
    total.sum += p.sum;
    total.valid += p.valid;
  }
  return total;
}

}  // namespace

template <class L>
int64_t first_invalid_label_cpu(const L* labels, int64_t pixels, int64_t channels, int64_t ignore_index) {
  constexpr int64_t kGrain = kElementwiseGrain;
  int64_t chunks = (pixels + kGrain - 1) / kGrain;
  std::vector<int64_t> first(static_cast<size_t>(chunks > 0 ? chunks : 1), -1);
  parallel_for(0, pixels, kGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t p = lo; p < hi; ++p) {
      if (cm::label_is_invalid(static_cast<int64_t>(labels[p]), channels, ignore_index)) {
        first[static_cast<size_t>(lo / kGrain)] = p;
        return;
      }
    }
  });
  for (int64_t p : first) {
    if (p >= 0) return p;
  }
  return -1;
}

template <class T, class L>
LabelledLossSum cross_entropy_cpu(T* loss, T* lse, const T* x, const L* labels, int64_t pixels, int64_t channels,
                                  int64_t ignore_index) {
  int64_t grain = pixel_grain(channels, kTranscendentalGrain);
  return sum_chunks(pixels, grain, [&](int64_t lo, int64_t hi) {
    LabelledLossSum s;
    for (int64_t p = lo; p < hi; ++p) {
      int64_t y = static_cast<int64_t>(labels[p]);
      T value = 0;
      cm::LogSumExp<T> parts{0, 0};
      if (y != ignore_index) {
        value = cm::cross_entropy_pixel<T>(x + p * channels, channels, y, parts);
        s.sum += value;
        ++s.valid;
      }
      if (loss) loss[p] = value;
      if (lse) {
        lse[2 * p] = parts.max;
        lse[2 * p + 1] = parts.log_sum;
      }
    }
    return s;
  });
}

template <class T, class L>
void cross_entropy_backward_cpu(T* dx, const T* dloss, T scale, const T* x, const T* lse, const L* labels,
                                int64_t pixels, int64_t channels, int64_t ignore_index) {
  parallel_for(0, pixels, pixel_grain(channels, kTranscendentalGrain), [&](int64_t lo, int64_t hi) {
    for (int64_t p = lo; p < hi; ++p) {
      int64_t y = static_cast<int64_t>(labels[p]);
      T* row = dx + p * channels;
      if (y == ignore_index) {
        for (int64_t c = 0; c < channels; ++c) row[c] = T(0);
        continue;
      }
      T weight = dloss ? scale * dloss[p] : scale;
      cm::LogSumExp<T> parts{lse[2 * p], lse[2 * p + 1]};
      cm::cross_entropy_backward_pixel<T>(row, x + p * channels, channels, y, parts, weight);
    }
  });
}

template <class T, class L>
LabelledLossSum nll_cpu(T* loss, const T* log_probs, const L* labels, int64_t pixels, int64_t channels,
                        int64_t ignore_index) {
  return sum_chunks(pixels, kElementwiseGrain, [&](int64_t lo, int64_t hi) {
    LabelledLossSum s;
    for (int64_t p = lo; p < hi; ++p) {
      int64_t y = static_cast<int64_t>(labels[p]);
      T value = 0;
      if (y != ignore_index) {
        value = -log_probs[p * channels + y];
        s.sum += value;
        ++s.valid;
      }
      if (loss) loss[p] = value;
    }
    return s;
  });
}

template <class T, class L>
void nll_backward_cpu(T* dlog_probs, const T* dloss, T scale, const L* labels, int64_t pixels, int64_t channels,
                      int64_t ignore_index) {
  parallel_for(0, pixels, pixel_grain(channels, kElementwiseGrain), [&](int64_t lo, int64_t hi) {
    for (int64_t p = lo; p < hi; ++p) {
      T* row = dlog_probs + p * channels;
      for (int64_t c = 0; c < channels; ++c) row[c] = T(0);
      int64_t y = static_cast<int64_t>(labels[p]);
      if (y != ignore_index) row[y] = -(dloss ? scale * dloss[p] : scale);
    }
  });
}

template <class T>
double bce_with_logits_cpu(T* loss, const T* x, const T* targets, int64_t n) {
  return sum_chunks(n, kTranscendentalGrain,
                    [&](int64_t lo, int64_t hi) {
                      LabelledLossSum s;
                      for (int64_t i = lo; i < hi; ++i) {
                        T value = cm::bce_with_logits_value(x[i], targets[i]);
                        if (loss) loss[i] = value;
                        s.sum += value;
                      }
                      return s;
                    })
      .sum;
}

template <class T>
void bce_with_logits_backward_cpu(T* dx, T* dtargets, const T* dloss, T scale, const T* x, const T* targets,
                                  int64_t n) {
  parallel_for(0, n, kTranscendentalGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      T weight = dloss ? scale * dloss[i] : scale;
      if (dx) dx[i] = weight * (cm::sigmoid(x[i]) - targets[i]);
      if (dtargets) dtargets[i] = -weight * x[i];
    }
  });
}

template <class T>
double mse_cpu(T* loss, const T* a, const T* b, int64_t n) {
  return sum_chunks(n, kElementwiseGrain,
                    [&](int64_t lo, int64_t hi) {
                      LabelledLossSum s;
                      for (int64_t i = lo; i < hi; ++i) {
                        T value = cm::mse_value(a[i], b[i]);
                        if (loss) loss[i] = value;
                        s.sum += value;
                      }
                      return s;
                    })
      .sum;
}

template <class T>
void mse_backward_cpu(T* da, T* db, const T* dloss, T scale, const T* a, const T* b, int64_t n) {
  parallel_for(0, n, kElementwiseGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      T weight = dloss ? scale * dloss[i] : scale;
      T g = T(2) * weight * (a[i] - b[i]);
      if (da) da[i] = g;
      if (db) db[i] = -g;
    }
  });
}

#define STRATA_INSTANTIATE_LABELLED(T, L)                                                                         \
  template LabelledLossSum cross_entropy_cpu<T, L>(T*, T*, const T*, const L*, int64_t, int64_t, int64_t);        \
  template void cross_entropy_backward_cpu<T, L>(T*, const T*, T, const T*, const T*, const L*, int64_t, int64_t, \
                                                 int64_t);                                                        \
  template LabelledLossSum nll_cpu<T, L>(T*, const T*, const L*, int64_t, int64_t, int64_t);                      \
  template void nll_backward_cpu<T, L>(T*, const T*, T, const L*, int64_t, int64_t, int64_t);
#define STRATA_INSTANTIATE(T)                                                                      \
  STRATA_INSTANTIATE_LABELLED(T, uint8_t)                                                          \
  STRATA_INSTANTIATE_LABELLED(T, int32_t)                                                          \
  STRATA_INSTANTIATE_LABELLED(T, int64_t)                                                          \
  template double bce_with_logits_cpu<T>(T*, const T*, const T*, int64_t);                         \
  template void bce_with_logits_backward_cpu<T>(T*, T*, const T*, T, const T*, const T*, int64_t); \
  template double mse_cpu<T>(T*, const T*, const T*, int64_t);                                     \
  template void mse_backward_cpu<T>(T*, T*, const T*, T, const T*, const T*, int64_t);
STRATA_INSTANTIATE(float)
STRATA_INSTANTIATE(double)
#undef STRATA_INSTANTIATE
#undef STRATA_INSTANTIATE_LABELLED

template int64_t first_invalid_label_cpu<uint8_t>(const uint8_t*, int64_t, int64_t, int64_t);
template int64_t first_invalid_label_cpu<int32_t>(const int32_t*, int64_t, int64_t, int64_t);
template int64_t first_invalid_label_cpu<int64_t>(const int64_t*, int64_t, int64_t, int64_t);

}  // namespace strata::kernels::cpu
