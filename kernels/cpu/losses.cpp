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
// chunk order, so a loss has the same bits on 1 or 64 threads. Labels are validated in the pass that
// reads them (kernels/common/labels.h).
#include "kernels/cpu/losses.h"

#include <cmath>
#include <cstddef>
#include <vector>

#include "kernels/common/labels.h"
#include "kernels/common/losses.h"
#include "kernels/common/softmax.h"
#include "kernels/cpu/parallel.h"

namespace strata::kernels::cpu {

namespace cm = strata::kernels::common;

namespace {

// Items per chunk for loops that evaluate an exp or log per value.
constexpr int64_t kTranscendentalGrain = int64_t{1} << 14;

int64_t pixel_grain(int64_t values_per_pixel, int64_t budget) { return budget / values_per_pixel + 1; }

// One chunk's part of a loss: the sum of its per-element losses and the tally of its labels.
struct LossPartial {
  double sum = 0;
  cm::LabelTally labels;
};

// Runs f(lo, hi) -> LossPartial over the fixed chunks of [0, n) and combines them in order.
template <class F>
LossPartial sum_chunks(int64_t n, int64_t grain, F&& f) {
  int64_t chunks = (n + grain - 1) / grain;
  std::vector<LossPartial> partial(static_cast<size_t>(chunks > 0 ? chunks : 1));
  parallel_for(0, n, grain, [&](int64_t lo, int64_t hi) { partial[static_cast<size_t>(lo / grain)] = f(lo, hi); });
  LossPartial total;
  for (const LossPartial& p : partial) {
    total.sum += p.sum;
    total.labels.merge(p.labels);
  }
  return total;
}

// The forward's outputs from the combined partial: the scaled scalar loss and the label statistics.
template <class T, class L>
void write_totals(T* reduced, int64_t* stats, const LossPartial& total, const LossReduction& reduction,
                  const L* labels) {
  if (reduced) *reduced = static_cast<T>(total.sum * cm::reduction_factor(reduction, total.labels.valid));
  if (stats) cm::write_label_stats(stats, total.labels, labels);
}

// The forward of an elementwise loss: loss[i] = value(a[i], b[i]) and the reduced scalar.
template <class T, class Value>
void elementwise_loss(T* loss, T* reduced, const T* a, const T* b, int64_t n, int64_t grain,
                      const LossReduction& reduction, Value value) {
  LossPartial total = sum_chunks(n, grain, [&](int64_t lo, int64_t hi) {
    LossPartial s;
    for (int64_t i = lo; i < hi; ++i) {
      T v = value(a[i], b[i]);
      if (loss) loss[i] = v;
      s.sum += v;
    }
    return s;
  });
  write_totals(reduced, nullptr, total, reduction, static_cast<const uint8_t*>(nullptr));
}

}  // namespace

template <class T, class L>
void cross_entropy(T* loss, T* lse, T* reduced, int64_t* stats, const T* x, const L* labels, int64_t pixels,
                   int64_t channels, int64_t ignore_index, const LossReduction& reduction, const Backend&) {
  LossPartial total = sum_chunks(pixels, pixel_grain(channels, kTranscendentalGrain), [&](int64_t lo, int64_t hi) {
    LossPartial s;
    for (int64_t p = lo; p < hi; ++p) {
      int64_t y = static_cast<int64_t>(labels[p]);
      T value = 0;
      cm::LogSumExp<T> parts{0, 0};
      if (s.labels.count(p, y, channels, ignore_index)) {
        value = cm::cross_entropy_pixel<T>(x + p * channels, channels, y, parts);
        s.sum += value;
      }
      if (loss) loss[p] = value;
      if (lse) {
        lse[2 * p] = parts.max;
        lse[2 * p + 1] = parts.log_sum;
      }
    }
    return s;
  });
  write_totals(reduced, stats, total, reduction, labels);
}

template <class T, class L>
void cross_entropy_backward(T* dx, const LossUpstream<T>& upstream, const T* x, const T* lse, const L* labels,
                            int64_t pixels, int64_t channels, int64_t ignore_index, const Backend&) {
  parallel_for(0, pixels, pixel_grain(channels, kTranscendentalGrain), [&](int64_t lo, int64_t hi) {
    for (int64_t p = lo; p < hi; ++p) {
      int64_t y = static_cast<int64_t>(labels[p]);
      T* row = dx + p * channels;
      if (!cm::label_is_class(y, channels, ignore_index)) {
        for (int64_t c = 0; c < channels; ++c) row[c] = T(0);
        continue;
      }
      cm::LogSumExp<T> parts{lse[2 * p], lse[2 * p + 1]};
      cm::cross_entropy_backward_pixel<T>(row, x + p * channels, channels, y, parts, upstream.weight(p));
    }
  });
}

template <class T, class L>
void nll(T* loss, T* reduced, int64_t* stats, const T* log_probs, const L* labels, int64_t pixels, int64_t channels,
         int64_t ignore_index, const LossReduction& reduction, const Backend&) {
  LossPartial total = sum_chunks(pixels, kElementwiseGrain, [&](int64_t lo, int64_t hi) {
    LossPartial s;
    for (int64_t p = lo; p < hi; ++p) {
      int64_t y = static_cast<int64_t>(labels[p]);
      T value = 0;
      if (s.labels.count(p, y, channels, ignore_index)) {
        value = -log_probs[p * channels + y];
        s.sum += value;
      }
      if (loss) loss[p] = value;
    }
    return s;
  });
  write_totals(reduced, stats, total, reduction, labels);
}

template <class T, class L>
void nll_backward(T* dlog_probs, const LossUpstream<T>& upstream, const L* labels, int64_t pixels, int64_t channels,
                  int64_t ignore_index, const Backend&) {
  parallel_for(0, pixels, pixel_grain(channels, kElementwiseGrain), [&](int64_t lo, int64_t hi) {
    for (int64_t p = lo; p < hi; ++p) {
      T* row = dlog_probs + p * channels;
      for (int64_t c = 0; c < channels; ++c) row[c] = T(0);
      int64_t y = static_cast<int64_t>(labels[p]);
      if (cm::label_is_class(y, channels, ignore_index)) row[y] = -upstream.weight(p);
    }
  });
}

template <class T>
void bce_with_logits(T* loss, T* reduced, const T* x, const T* targets, int64_t n, const LossReduction& reduction,
                     const Backend&) {
  elementwise_loss(loss, reduced, x, targets, n, kTranscendentalGrain, reduction, cm::BceWithLogitsValue{});
}

template <class T>
void bce_with_logits_backward(T* dx, T* dtargets, const LossUpstream<T>& upstream, const T* x, const T* targets,
                              int64_t n, const Backend&) {
  parallel_for(0, n, kTranscendentalGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      T weight = upstream.weight(i);
      if (dx) dx[i] = weight * (cm::sigmoid(x[i]) - targets[i]);
      if (dtargets) dtargets[i] = -weight * x[i];
    }
  });
}

template <class T>
void mse(T* loss, T* reduced, const T* a, const T* b, int64_t n, const LossReduction& reduction, const Backend&) {
  elementwise_loss(loss, reduced, a, b, n, kElementwiseGrain, reduction, cm::MseValue{});
}

template <class T>
void mse_backward(T* da, T* db, const LossUpstream<T>& upstream, const T* a, const T* b, int64_t n, const Backend&) {
  parallel_for(0, n, kElementwiseGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      T g = T(2) * upstream.weight(i) * (a[i] - b[i]);
      if (da) da[i] = g;
      if (db) db[i] = -g;
    }
  });
}

#define STRATA_INSTANTIATE_LABELLED(T, L)                                                                        \
  template void cross_entropy<T, L>(T*, T*, T*, int64_t*, const T*, const L*, int64_t, int64_t, int64_t,         \
                                    const LossReduction&, const Backend&);                                       \
  template void cross_entropy_backward<T, L>(T*, const LossUpstream<T>&, const T*, const T*, const L*, int64_t,  \
                                             int64_t, int64_t, const Backend&);                                  \
  template void nll<T, L>(T*, T*, int64_t*, const T*, const L*, int64_t, int64_t, int64_t, const LossReduction&, \
                          const Backend&);                                                                       \
  template void nll_backward<T, L>(T*, const LossUpstream<T>&, const L*, int64_t, int64_t, int64_t, const Backend&);
#define STRATA_INSTANTIATE(T)                                                                                  \
  STRATA_INSTANTIATE_LABELLED(T, uint8_t)                                                                      \
  STRATA_INSTANTIATE_LABELLED(T, int32_t)                                                                      \
  STRATA_INSTANTIATE_LABELLED(T, int64_t)                                                                      \
  template void bce_with_logits<T>(T*, T*, const T*, const T*, int64_t, const LossReduction&, const Backend&); \
  template void bce_with_logits_backward<T>(T*, T*, const LossUpstream<T>&, const T*, const T*, int64_t,       \
                                            const Backend&);                                                   \
  template void mse<T>(T*, T*, const T*, const T*, int64_t, const LossReduction&, const Backend&);             \
  template void mse_backward<T>(T*, T*, const LossUpstream<T>&, const T*, const T*, int64_t, const Backend&);
STRATA_INSTANTIATE(float)
STRATA_INSTANTIATE(double)
#undef STRATA_INSTANTIATE
#undef STRATA_INSTANTIATE_LABELLED

}  // namespace strata::kernels::cpu
