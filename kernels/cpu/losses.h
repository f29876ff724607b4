// Loss CPU kernels (T = float or double; label type L = uint8_t, int32_t or int64_t), with the names,
// arguments and contract of kernels/cuda/losses.h, the backend last (kernels/cpu/backend.h), so an op
// calls both from one body:
//
// - Labelled losses read x: (P, C), P rows ("pixels") of C >= 1 contiguous class scores, and
//   labels: (P). A pixel whose label equals ignore_index contributes 0 to the loss and its gradient;
//   a label that is neither ignore_index nor in [0, C) is invalid: it is treated as ignored (never
//   used as an index) and reported in the label statistics `stats` (kernels/common/labels.h), which
//   the forward always writes, in the same pass that reads the labels.
// - Elementwise losses read n values per input.
// - Forward kernels write the per-element losses to `loss` when it is not null and, when `reduced`
//   is not null, the scalar loss: the sum of the per-element losses (accumulated in double over
//   fixed chunks, combined in chunk order: the same bits for any thread count) times the factor of
//   `reduction` (kernels/common/losses.h), rounded to T once.
// - Backward kernels scale element i's derivative by upstream.weight(i) (kernels/common/losses.h):
//   the per-element upstream gradient of reduction 'none', or the reduced loss's upstream gradient
//   read from memory times the reduction factor (for a mean over valid pixels, from the forward's
//   stats). Invalid labels get a zero gradient, like ignored ones.
#pragma once

#include <cstdint>

#include "kernels/common/losses.h"
#include "kernels/cpu/backend.h"

namespace strata::kernels::cpu {

using common::LossReduction;
using common::LossUpstream;

// Cross-entropy from logits: loss[p] = logsumexp(x[p, :]) - x[p, label[p]]. With lse not null it
// also stores each pixel's logsumexp as its two parts, lse: (P, 2) = (max_c x[p, c],
// log sum_c exp(x[p, c] - max)) (0 for ignored pixels), from which the backward rebuilds the softmax
// in one pass and as accurately as the forward.
// backward: dx[p, c] = w_p (softmax(x[p, :])_c - [c == label[p]]), 0 on ignored pixels.
//   x, dx: (P, C); labels, loss: (P); stats: (3); reduced: ()
template <class T, class L>
void cross_entropy(T* loss, T* lse, T* reduced, int64_t* stats, const T* x, const L* labels, int64_t pixels,
                   int64_t channels, int64_t ignore_index, const LossReduction& reduction, const Backend& backend);
template <class T, class L>
void cross_entropy_backward(T* dx, const LossUpstream<T>& upstream, const T* x, const T* lse, const L* labels,
                            int64_t pixels, int64_t channels, int64_t ignore_index, const Backend& backend);

// Negative log-likelihood from log-probabilities: loss[p] = -log_probs[p, label[p]].
// backward: dlog_probs[p, c] = -w_p [c == label[p]].
template <class T, class L>
void nll(T* loss, T* reduced, int64_t* stats, const T* log_probs, const L* labels, int64_t pixels, int64_t channels,
         int64_t ignore_index, const LossReduction& reduction, const Backend& backend);
template <class T, class L>
void nll_backward(T* dlog_probs, const LossUpstream<T>& upstream, const L* labels, int64_t pixels, int64_t channels,
                  int64_t ignore_index, const Backend& backend);

// Binary cross-entropy with logits: loss_i = max(x_i, 0) - x_i t_i + log(1 + exp(-|x_i|)).
// backward: dx_i = w_i (sigmoid(x_i) - t_i), dt_i = -w_i x_i; either output may be null.
template <class T>
void bce_with_logits(T* loss, T* reduced, const T* x, const T* targets, int64_t n, const LossReduction& reduction,
                     const Backend& backend);
template <class T>
void bce_with_logits_backward(T* dx, T* dtargets, const LossUpstream<T>& upstream, const T* x, const T* targets,
                              int64_t n, const Backend& backend);

// Squared error: loss_i = (a_i - b_i)^2; backward da_i = 2 w_i (a_i - b_i), db_i = -da_i; either
// output may be null.
template <class T>
void mse(T* loss, T* reduced, const T* a, const T* b, int64_t n, const LossReduction& reduction,
         const Backend& backend);
template <class T>
void mse_backward(T* da, T* db, const LossUpstream<T>& upstream, const T* a, const T* b, int64_t n,
                  const Backend& backend);

}  // namespace strata::kernels::cpu
