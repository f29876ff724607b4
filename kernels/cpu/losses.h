// Loss CPU kernels (T = float or double; label type L = uint8_t, int32_t or int64_t).
//
// Per-pixel losses read x: (P, C), P rows ("pixels") of C >= 1 contiguous class scores, and
// labels: (P). A pixel whose label equals ignore_index contributes 0 to the loss and its gradient;
// every other label must lie in [0, C) (callers check with first_invalid_label_cpu first).
// Elementwise losses read n values per input.
//
// Forward kernels write the per-element losses to `loss` when it is not null and return their sum
// accumulated in double over fixed chunks (the same bits for any thread count).
// Backward kernels scale element i's derivative by w_i = scale * (dloss ? dloss[i] : 1): dloss is
// the upstream gradient of reduction 'none', scale the upstream gradient of a reduced loss times
// its 1/count factor.
#pragma once

#include <cstdint>

namespace strata::kernels::cpu {

struct LabelledLossSum {
  double sum = 0;     // sum of the per-pixel losses
  int64_t valid = 0;  // pixels whose label is not ignore_index
};

// The first p with labels[p] != ignore_index and labels[p] outside [0, C), or -1 if none.
template <class L>
int64_t first_invalid_label_cpu(const L* labels, int64_t pixels, int64_t channels, int64_t ignore_index);

// Cross-entropy from logits: loss[p] = logsumexp(x[p, :]) - x[p, label[p]]. With lse not null it
// also stores each pixel's logsumexp as its two parts, lse: (P, 2) = (max_c x[p, c],
// log sum_c exp(x[p, c] - max)) (0 for ignored pixels), from which the backward rebuilds the softmax
// in one pass and as accurately as the forward.
// backward: dx[p, c] = w_p (softmax(x[p, :])_c - [c == label[p]]), 0 on ignored pixels.
template <class T, class L>
LabelledLossSum cross_entropy_cpu(T* loss, T* lse, const T* x, const L* labels, int64_t pixels, int64_t channels,
                                  int64_t ignore_index);
template <class T, class L>
void cross_entropy_backward_cpu(T* dx, const T* dloss, T scale, const T* x, const T* lse, const L* labels,
                                int64_t pixels, int64_t channels, int64_t ignore_index);

// Negative log-likelihood from log-probabilities: loss[p] = -log_probs[p, label[p]].
// backward: dlog_probs[p, c] = -w_p [c == label[p]].
template <class T, class L>
LabelledLossSum nll_cpu(T* loss, const T* log_probs, const L* labels, int64_t pixels, int64_t channels,
                        int64_t ignore_index);
template <class T, class L>
void nll_backward_cpu(T* dlog_probs, const T* dloss, T scale, const L* labels, int64_t pixels, int64_t channels,
                      int64_t ignore_index);

// Binary cross-entropy with logits: loss_i = max(x_i, 0) - x_i t_i + log(1 + exp(-|x_i|)).
// backward: dx_i = w_i (sigmoid(x_i) - t_i), dt_i = -w_i x_i; either output may be null.
template <class T>
double bce_with_logits_cpu(T* loss, const T* x, const T* targets, int64_t n);
template <class T>
void bce_with_logits_backward_cpu(T* dx, T* dtargets, const T* dloss, T scale, const T* x, const T* targets, int64_t n);

// Squared error: loss_i = (a_i - b_i)^2; backward da_i = 2 w_i (a_i - b_i), db_i = -da_i; either
// output may be null.
template <class T>
double mse_cpu(T* loss, const T* a, const T* b, int64_t n);
template <class T>
void mse_backward_cpu(T* da, T* db, const T* dloss, T scale, const T* a, const T* b, int64_t n);

}  // namespace strata::kernels::cpu
